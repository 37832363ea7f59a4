// Builds the proxyDHCP answer (PXE 2.1 2.2.3, 2.2.5): no address (yiaddr 0), our address in option
// 54 and siaddr, option 60 PXEClient, option 97 echoed, the boot file in `file` and option 67.
// Pure.
import { BOOTREPLY, type DhcpPacket } from './dhcp-codec.ts';
import { DhcpOptions, MESSAGE_TYPE, OPT, PXE_SUB, PxeSubOptions, encodeOption } from './dhcp-options.ts';
import type { PxeRequest } from './pxe-request.ts';

/** PXE discovery control bit 3: boot the file in this offer, skip boot server discovery. */
export const DISCOVERY_USE_BOOTFILE = 0x08;

export function buildProxyReply(request: DhcpPacket, pxe: PxeRequest, file: string, serverAddress: string): DhcpPacket {
  // A DISCOVER gets an OFFER; a REQUEST (on 67 naming us, or on 4011) and an INFORM get an ACK.
  const type = pxe.messageType === MESSAGE_TYPE.DISCOVER ? MESSAGE_TYPE.OFFER : MESSAGE_TYPE.ACK;
  const sub: [number, Buffer][] = [[PXE_SUB.DISCOVERY_CONTROL, encodeOption.u8(DISCOVERY_USE_BOOTFILE)]];
  // A boot server ACK names the boot item it answers (PXE 2.1 2.2.7); EDK2 checks it.
  if (pxe.bootItem !== null) sub.push([PXE_SUB.BOOT_ITEM, encodeOption.bootItem(pxe.bootItem.type, pxe.bootItem.layer)]);
  const entries: [number, Buffer][] = [
    [OPT.MESSAGE_TYPE, encodeOption.u8(type)],
    [OPT.SERVER_ID, encodeOption.ipv4(serverAddress)],
    [OPT.VENDOR_CLASS, encodeOption.text('PXEClient')],
  ];
  const uuid = request.options.get(OPT.CLIENT_UUID);
  if (uuid !== undefined) entries.push([OPT.CLIENT_UUID, uuid]);
  entries.push(
    [OPT.TFTP_SERVER, encodeOption.text(serverAddress)],
    [OPT.BOOTFILE_NAME, encodeOption.text(file)],
    [OPT.VENDOR_SPECIFIC, PxeSubOptions.encode(sub)],
  );
  return {
    op: BOOTREPLY,
    htype: request.htype,
    hlen: request.hlen,
    hops: 0,
    xid: request.xid,
    secs: 0,
    flags: request.flags,
    ciaddr: pxe.port === 'proxy' ? request.ciaddr : '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: serverAddress,
    giaddr: request.giaddr,
    chaddr: request.chaddr,
    sname: '',
    file,
    options: new DhcpOptions(entries),
  };
}
