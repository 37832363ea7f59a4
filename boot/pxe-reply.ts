// Builds the proxyDHCP answer (PXE 2.1 2.2.3, 2.2.5): no address (yiaddr 0), our address in option
// 54 and siaddr, option 60 PXEClient, option 97 echoed, the boot file in `file` and option 67.
// Through a relay: giaddr kept, the broadcast flag set, option 82 echoed last. Pure.
import { BOOTREPLY, FLAG_BROADCAST, type DhcpPacket } from '../protocols/dhcp/dhcp-codec.ts';
import { DhcpOptions, MESSAGE_TYPE, OPT, PXE_SUB, PxeSubOptions, encodeOption } from '../protocols/dhcp/dhcp-options.ts';
import type { PxeRequest } from './pxe-request.ts';

/** PXE discovery control bit 3: boot the file in this offer, skip boot server discovery. */
export const DISCOVERY_USE_BOOTFILE = 0x08;

// Option values that do not depend on the request, made once (they are never mutated).
const OFFER = encodeOption.u8(MESSAGE_TYPE.OFFER);
const ACK = encodeOption.u8(MESSAGE_TYPE.ACK);
const PXE_CLIENT = encodeOption.text('PXEClient');
const DISCOVERY_ONLY = PxeSubOptions.encode([[PXE_SUB.DISCOVERY_CONTROL, encodeOption.u8(DISCOVERY_USE_BOOTFILE)]]);
// Values that repeat across requests, made once each (bounded: the first 64 of each kind).
const addressCache = new Map<string, { id: Buffer; text: Buffer }>();
const fileCache = new Map<string, Buffer>();
const bootItemCache = new Map<number, Buffer>();

function addressOptions(address: string): { id: Buffer; text: Buffer } {
  let v = addressCache.get(address);
  if (v === undefined) {
    v = { id: encodeOption.ipv4(address), text: encodeOption.text(address) };
    if (addressCache.size < 64) addressCache.set(address, v);
  }
  return v;
}

/** Option 67: the boot files of config.bootFiles repeat; per-machine script paths do not fill the cache for good. */
function fileOption(file: string): Buffer {
  let v = fileCache.get(file);
  if (v === undefined) {
    v = encodeOption.text(file);
    if (fileCache.size < 64) fileCache.set(file, v);
  }
  return v;
}

/** Option 43 of a boot server ACK: discovery control and the boot item asked for. */
function bootItemVendor(type: number, layer: number): Buffer {
  const key = type * 0x10000 + layer;
  let v = bootItemCache.get(key);
  if (v === undefined) {
    v = PxeSubOptions.encode([[PXE_SUB.DISCOVERY_CONTROL, encodeOption.u8(DISCOVERY_USE_BOOTFILE)], [PXE_SUB.BOOT_ITEM, encodeOption.bootItem(type, layer)]]);
    if (bootItemCache.size < 64) bootItemCache.set(key, v);
  }
  return v;
}

export function buildProxyReply(request: DhcpPacket, pxe: PxeRequest, file: string, serverAddress: string): DhcpPacket {
  // A DISCOVER gets an OFFER; a REQUEST (on 67 naming us, or on 4011) and an INFORM get an ACK.
  const type = pxe.messageType === MESSAGE_TYPE.DISCOVER ? OFFER : ACK;
  // A boot server ACK names the boot item it answers (PXE 2.1 2.2.7); EDK2 checks it.
  const vendor = pxe.bootItem === null ? DISCOVERY_ONLY : bootItemVendor(pxe.bootItem.type, pxe.bootItem.layer);
  const address = addressOptions(serverAddress);
  // Two lists rather than a pair per option: this runs for every answer.
  const uuid = request.options.get(OPT.CLIENT_UUID);
  const codes: number[] = uuid === undefined
    ? [OPT.MESSAGE_TYPE, OPT.SERVER_ID, OPT.VENDOR_CLASS, OPT.TFTP_SERVER, OPT.BOOTFILE_NAME, OPT.VENDOR_SPECIFIC]
    : [OPT.MESSAGE_TYPE, OPT.SERVER_ID, OPT.VENDOR_CLASS, OPT.CLIENT_UUID, OPT.TFTP_SERVER, OPT.BOOTFILE_NAME, OPT.VENDOR_SPECIFIC];
  const values = uuid === undefined
    ? [type, address.id, PXE_CLIENT, address.text, fileOption(file), vendor]
    : [type, address.id, PXE_CLIENT, uuid, address.text, fileOption(file), vendor];
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
