// Builds the proxyDHCP answer (PXE 2.1 2.2.3, 2.2.5): no address (yiaddr 0), our address in option
// 54 and siaddr, option 60 PXEClient, option 97 echoed, the boot file in `file` and option 67.
// Through a relay: giaddr kept, the broadcast flag set, option 82 echoed last. Pure: the same
// request gives the same reply; the optional cache only saves encoding repeated values.
import { BOOTREPLY, FLAG_BROADCAST, type DhcpPacket } from '../protocols/dhcp/dhcp-codec.ts';
import { DhcpOptions, MESSAGE_TYPE, OPT, PXE_SUB, PxeSubOptions, encodeOption } from '../protocols/dhcp/dhcp-options.ts';
import type { PxeRequest } from './pxe-request.ts';

/** PXE discovery control bit 3: boot the file in this offer, skip boot server discovery. */
export const DISCOVERY_USE_BOOTFILE = 0x08;

// Option values that do not depend on the request, made once (they are never mutated).
const OFFER = encodeOption.u8(MESSAGE_TYPE.OFFER);
const ACK = encodeOption.u8(MESSAGE_TYPE.ACK);
const PXE_CLIENT = encodeOption.text('PXEClient');
/** UEFI HTTP Boot: the offer must carry option 60 beginning `HTTPClient` (edk2 HttpBootDhcp4.c). */
const HTTP_CLIENT = encodeOption.text('HTTPClient');
const DISCOVERY_ONLY = PxeSubOptions.encode([[PXE_SUB.DISCOVERY_CONTROL, encodeOption.u8(DISCOVERY_USE_BOOTFILE)]]);

/**
 * Encoded option values that repeat across requests (our addresses, the boot files of
 * config.bootFiles, boot items), made once each: bounded to the first 64 of each kind, so
 * per-machine script paths do not fill it for good. Owned by whoever answers (the PXE server);
 * a reply is the same with or without it.
 */
export class ReplyOptionCache {
  private readonly addresses = new Map<string, { id: Buffer; text: Buffer }>();
  private readonly files = new Map<string, Buffer>();
  private readonly bootItems = new Map<number, Buffer>();

  address(address: string): { id: Buffer; text: Buffer } {
    let v = this.addresses.get(address);
    if (v === undefined) {
      v = addressOptions(address);
      if (this.addresses.size < 64) this.addresses.set(address, v);
    }
    return v;
  }

  file(file: string): Buffer {
    let v = this.files.get(file);
    if (v === undefined) {
      v = encodeOption.text(file);
      if (this.files.size < 64) this.files.set(file, v);
    }
    return v;
  }

  bootItem(type: number, layer: number): Buffer {
    const key = type * 0x10000 + layer;
    let v = this.bootItems.get(key);
    if (v === undefined) {
      v = bootItemVendor(type, layer);
      if (this.bootItems.size < 64) this.bootItems.set(key, v);
    }
    return v;
  }
}

function addressOptions(address: string): { id: Buffer; text: Buffer } {
  return { id: encodeOption.ipv4(address), text: encodeOption.text(address) };
}

/** Option 43 of a boot server ACK: discovery control and the boot item asked for. */
function bootItemVendor(type: number, layer: number): Buffer {
  return PxeSubOptions.encode([[PXE_SUB.DISCOVERY_CONTROL, encodeOption.u8(DISCOVERY_USE_BOOTFILE)], [PXE_SUB.BOOT_ITEM, encodeOption.bootItem(type, layer)]]);
}

/**
 * `file`: a TFTP path, or for a UEFI HTTP Boot client (pxe.httpClient) the boot program's URL;
 * that reply says `HTTPClient` in option 60 and carries no PXE option 43.
 */
export function buildProxyReply(request: DhcpPacket, pxe: PxeRequest, file: string, serverAddress: string, cache?: ReplyOptionCache): DhcpPacket {
  // A DISCOVER gets an OFFER; a REQUEST (on 67 naming us, or on 4011) and an INFORM get an ACK.
  const type = pxe.messageType === MESSAGE_TYPE.DISCOVER ? OFFER : ACK;
  // A boot server ACK names the boot item it answers (PXE 2.1 2.2.7); EDK2 checks it.
  const vendor = pxe.bootItem === null ? DISCOVERY_ONLY
    : cache === undefined ? bootItemVendor(pxe.bootItem.type, pxe.bootItem.layer) : cache.bootItem(pxe.bootItem.type, pxe.bootItem.layer);
  const address = cache === undefined ? addressOptions(serverAddress) : cache.address(serverAddress);
  const fileValue = cache === undefined ? encodeOption.text(file) : cache.file(file);
  // Two lists rather than a pair per option: this runs for every answer.
  const uuid = request.options.get(OPT.CLIENT_UUID);
  const codes: number[] = uuid === undefined
    ? [OPT.MESSAGE_TYPE, OPT.SERVER_ID, OPT.VENDOR_CLASS, OPT.TFTP_SERVER, OPT.BOOTFILE_NAME, OPT.VENDOR_SPECIFIC]
    : [OPT.MESSAGE_TYPE, OPT.SERVER_ID, OPT.VENDOR_CLASS, OPT.CLIENT_UUID, OPT.TFTP_SERVER, OPT.BOOTFILE_NAME, OPT.VENDOR_SPECIFIC];
  const values = uuid === undefined
    ? [type, address.id, PXE_CLIENT, address.text, fileValue, vendor]
    : [type, address.id, PXE_CLIENT, uuid, address.text, fileValue, vendor];
  if (pxe.httpClient) {
    values[2] = HTTP_CLIENT;
    codes.pop();
    values.pop();
  }
  // RFC 3046 2.2: echoed verbatim in every reply, as the last option. Validated by readRelay.
  const agentInfo = request.options.get(OPT.RELAY_AGENT_INFO);
  if (agentInfo !== undefined) {
    codes.push(OPT.RELAY_AGENT_INFO);
    values.push(agentInfo);
  }
  const relayed = request.giaddr !== '0.0.0.0';
  return {
    op: BOOTREPLY,
    htype: request.htype,
    hlen: request.hlen,
    // RFC 2131 table 3: 0 in server replies (relays do not read it on the way back).
    hops: 0,
    xid: request.xid,
    secs: 0,
    // A relay unicasts a reply without the flag to yiaddr, which a proxy leaves at 0: the client
    // would never hear it (iPXE's DISCOVER does not set the flag). RFC 2131 4.1, RFC 1542 4.1.2.
    flags: relayed ? request.flags | FLAG_BROADCAST : request.flags,
    ciaddr: pxe.port === 'proxy' ? request.ciaddr : '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: serverAddress,
    giaddr: request.giaddr,
    chaddr: request.chaddr,
    sname: '',
    file,
    options: DhcpOptions.of(codes, values),
  };
}
