// What the policy needs to know about a PXE request, read from a decoded packet. Pure.
import { BOOTREQUEST, macOf, type DhcpPacket } from '../protocols/dhcp/dhcp-codec.ts';
import { MESSAGE_TYPE, messageTypeName, type DhcpOptions } from '../protocols/dhcp/dhcp-options.ts';
import { archFromVendorClass, pxeCodeOfHttpClient } from './pxe-arch.ts';

/** Which socket a request came in on: the DHCP port (67) or the boot server port (4011). */
export type PxePort = 'dhcp' | 'proxy';

export interface PxeRequest {
  readonly mac: string;
  readonly xid: number;
  readonly messageType: number;
  /** Option 93's first type, else the one in option 60; null if the client names none. */
  readonly archCode: number | null;
  /** Already running iPXE (option 77 `iPXE`, or option 175): gets the next stage. */
  readonly isIpxe: boolean;
  readonly uuid: string | null;
  readonly port: PxePort;
  /** Option 54 when the client sent one (a REQUEST naming the server it chose). */
  readonly serverId: string | null;
  /** UEFI HTTP Boot firmware (option 60 `HTTPClient...`): gets a URL, with option 60 `HTTPClient`. */
  readonly httpClient: boolean;
  /** Option 43 sub-option 71 on a boot server request. */
  readonly bootItem: { readonly type: number; readonly layer: number } | null;
}

export type ReadResult = { readonly request: PxeRequest } | { readonly ignore: string; readonly mac: string | null };

/**
 * Reads a PXE request, or says why the packet is not one to answer. Malformed options throw
 * ProtocolError (the caller drops the packet).
 */
export function readPxeRequest(packet: DhcpPacket, port: PxePort): ReadResult {
  const mac = macOf(packet);
  if (packet.op !== BOOTREQUEST) return { ignore: 'not a BOOTREQUEST', mac };
  const options = packet.options;
  const messageType = options.messageType();
  if (messageType === undefined) return { ignore: 'plain BOOTP (no option 53)', mac };
  const allowed = port === 'dhcp'
    ? messageType === MESSAGE_TYPE.DISCOVER || messageType === MESSAGE_TYPE.REQUEST
    : messageType === MESSAGE_TYPE.REQUEST || messageType === MESSAGE_TYPE.INFORM;
  if (!allowed) return { ignore: `${messageTypeName(messageType)} is not answered on the ${port} port`, mac };
  const pxeClient = options.vendorClassStartsWith('PXEClient');
  const httpClient = !pxeClient && options.vendorClassStartsWith('HTTPClient');
  if (!httpClient && !pxeClient) return { ignore: 'not a PXE client (no option 60 PXEClient)', mac };
  if (mac === null) return { ignore: `hardware type ${packet.htype}/${packet.hlen} is not Ethernet`, mac };
  // Option 60's text is made only when option 93 is missing.
  const sent = options.firstClientArch() ?? archFromVendorClass(options.vendorClass()!);
  const archCode = httpClient && sent !== null ? pxeCodeOfHttpClient(sent) : sent;
  const isIpxe = options.has(175) || (options.has(77) && options.userClasses()!.includes('iPXE'));
  // Option 43 is vendor-defined: it is read as PXE sub-options only now that 60 says PXEClient.
  const bootItem = !httpClient && options.has(43) ? (options.pxeSubOptions()!.bootItem() ?? null) : null;
  return { request: new Request(options, mac, packet.xid, messageType, archCode, isIpxe, port, options.serverId() ?? null, bootItem, httpClient) };
}

/** A class, not a literal with a getter: one shape, and no closure per request. */
class Request implements PxeRequest {
  constructor(
    private readonly options: DhcpOptions,
    readonly mac: string,
    readonly xid: number,
    readonly messageType: number,
    readonly archCode: number | null,
    readonly isIpxe: boolean,
    readonly port: PxePort,
    readonly serverId: string | null,
    readonly bootItem: { readonly type: number; readonly layer: number } | null,
    readonly httpClient: boolean,
  ) {}

  // Read when asked: the reply echoes option 97's bytes, the policy does not need the text.
  get uuid(): string | null {
    return this.options.clientUuid() ?? null;
  }
}
