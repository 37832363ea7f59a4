// Reads the UDP datagrams out of a libpcap file (Ethernet link type, IPv4), for the codec's
// fixtures of real captures. Test-only: it trusts the file, which tcpdump wrote.
import { readFileSync } from 'node:fs';

export interface Datagram {
  readonly srcAddress: string;
  readonly srcPort: number;
  readonly dstAddress: string;
  readonly dstPort: number;
  readonly payload: Buffer;
}

export function readPcapUdp(path: string): Datagram[] {
  const file = readFileSync(path);
  const magic = file.readUInt32LE(0);
  if (magic !== 0xa1b2c3d4) throw new Error(`${path}: not a little-endian pcap file`);
  if (file.readUInt32LE(20) !== 1) throw new Error(`${path}: link type is not Ethernet`);
  const out: Datagram[] = [];
  let at = 24;
  while (at + 16 <= file.length) {
    const captured = file.readUInt32LE(at + 8);
    const frame = file.subarray(at + 16, at + 16 + captured);
    at += 16 + captured;
    if (frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    const ihl = (ip[0]! & 0x0f) * 4;
    if (ip[9] !== 17) continue;
    const udp = ip.subarray(ihl);
    const udpLength = udp.readUInt16BE(4);
    out.push({
      srcAddress: [...ip.subarray(12, 16)].join('.'),
      dstAddress: [...ip.subarray(16, 20)].join('.'),
      srcPort: udp.readUInt16BE(0),
      dstPort: udp.readUInt16BE(2),
      payload: Buffer.from(udp.subarray(8, udpLength)),
    });
  }
  return out;
}
