// The DHCP storm's requests: N distinct simulated PXE clients (BIOS firmware), each a broadcast
// DISCOVER to :67 and then a boot server request to SERVER:4011, like iPXE after a menu (from port
// 68, ciaddr set, option 43/71). Built with our codec and written as storm.c's input: records
// [u16 length, big-endian][packet], the DISCOVER then the REQUEST of each client, record k with
// xid xidBase + k.
import { writeFileSync } from 'node:fs';
import { BOOTREQUEST, FLAG_BROADCAST, encode } from '../../protocols/dhcp/dhcp-codec.ts';
import { DhcpOptions, MESSAGE_TYPE, encodeOption } from '../../protocols/dhcp/dhcp-options.ts';

function mac(i: number): Buffer {
  return Buffer.from([0x02, 0x4e, 0x42, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff]);
}

/** The MAC of simulated client i, as the server's clients list names it. */
export function clientMac(i: number): string {
  return [...mac(i)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function packet(i: number, xid: number, type: number, ciaddr: string): Buffer {
  const entries: [number, Buffer][] = [
    [53, encodeOption.u8(type)],
    [57, encodeOption.u16(1472)],
    [93, encodeOption.u16(0)],
    [94, Buffer.from([1, 2, 1])],
    [60, encodeOption.text('PXEClient:Arch:00000:UNDI:002001')],
    [97, Buffer.concat([Buffer.from([0]), Buffer.alloc(10), mac(i)])],
  ];
  if (type === MESSAGE_TYPE.REQUEST) entries.push([43, Buffer.from([71, 4, 0x80, 0x00, 0x00, 0x00, 255])]);
  return encode({
    op: BOOTREQUEST, htype: 1, hlen: 6, hops: 0, xid, secs: 0, flags: FLAG_BROADCAST, ciaddr, yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
    chaddr: Buffer.concat([mac(i), Buffer.alloc(10)]), sname: '', file: '', options: new DhcpOptions(entries),
  });
}

/** Writes clients [first, first + count)'s requests to `file`, xids from `xidBase`; `self` is the REQUEST's ciaddr. */
export function writePackets(file: string, first: number, count: number, xidBase: number, self: string): void {
  const records: Buffer[] = [];
  const add = (p: Buffer): void => void records.push(Buffer.from([p.length >> 8, p.length & 0xff]), p);
  for (let n = 0; n < count; n++) {
    add(packet(first + n, (xidBase + 2 * n) >>> 0, MESSAGE_TYPE.DISCOVER, '0.0.0.0'));
    add(packet(first + n, (xidBase + 2 * n + 1) >>> 0, MESSAGE_TYPE.REQUEST, self));
  }
  writeFileSync(file, Buffer.concat(records));
}
