// A packet as plain JSON for golden files and assertions: every header field, every option as
// hex, and the typed accessors' readings. Test-only.
import type { DhcpPacket } from '../../protocols/dhcp/dhcp-codec.ts';
import { macOf } from '../../protocols/dhcp/dhcp-codec.ts';
import { messageTypeName } from '../../protocols/dhcp/dhcp-options.ts';

export function describePacket(p: DhcpPacket): Record<string, unknown> {
  const o = p.options;
  const pxe = o.get(43) !== undefined && o.vendorClass()?.startsWith('PXEClient') ? o.pxeSubOptions() : undefined;
  return {
    op: p.op, htype: p.htype, hlen: p.hlen, hops: p.hops, xid: p.xid.toString(16).padStart(8, '0'), secs: p.secs, flags: p.flags,
    ciaddr: p.ciaddr, yiaddr: p.yiaddr, siaddr: p.siaddr, giaddr: p.giaddr, mac: macOf(p), sname: p.sname, file: p.file,
    options: Object.fromEntries([...o.entries()].map(([code, data]) => [String(code), data.toString('hex')])),
    decoded: {
      messageType: messageTypeName(o.messageType()),
      serverId: o.serverId(),
      parameterRequestList: o.parameterRequestList(),
      maxMessageSize: o.maxMessageSize(),
      vendorClass: o.vendorClass(),
      clientId: o.clientId()?.toString('hex'),
      userClasses: o.userClasses(),
      clientArch: o.clientArch(),
      clientNdi: o.clientNdi(),
      clientUuid: o.clientUuid(),
      ipxeEncapsulated: o.has(175),
      relayAgentInfo: o.relayAgentInfo()?.describe(),
      pxe: pxe === undefined ? undefined : {
        codes: pxe.codes(), discoveryControl: pxe.discoveryControl(), bootItem: pxe.bootItem(), bootServers: pxe.bootServers(), bootMenu: pxe.bootMenu(), menuPrompt: pxe.menuPrompt(),
      },
    },
  };
}
