// Which protocol carried which boot file, and how long each file took on the wire, from a packet
// capture of the LAN (libpcap, Ethernet, microseconds, as tcpdump writes it): TFTP read requests
// and their transfers (UDP), HTTP GETs and their responses (TCP). For the Secure Boot test's proof
// (kernel and initrds over HTTP, only shim, GRUB and its configurations over TFTP) and bench/boot's
// TFTP-vs-HTTP column (the file-transfer part of a boot, apart from firmware and guest CPU).
import { readFileSync } from 'node:fs';

export interface Packet {
  /** ms since the epoch. */
  readonly t: number;
  readonly proto: 'udp' | 'tcp';
  readonly src: string;
  readonly sport: number;
  readonly dst: string;
  readonly dport: number;
  readonly payload: Buffer;
}

export function readPackets(path: string): Packet[] {
  const file = readFileSync(path);
  if (file.length < 24 || file.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${path}: not a little-endian microsecond pcap file`);
  const out: Packet[] = [];
  for (let at = 24; at + 16 <= file.length; ) {
    const t = file.readUInt32LE(at) * 1000 + file.readUInt32LE(at + 4) / 1000;
    const len = file.readUInt32LE(at + 8);
    const frame = file.subarray(at + 16, at + 16 + len);
    at += 16 + len;
    if (frame.length < 34 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14, 14 + (frame.readUInt16BE(16) || frame.length - 14));
    const l4 = ip.subarray((ip[0]! & 0x0f) * 4);
    const base = { t, src: [...ip.subarray(12, 16)].join('.'), dst: [...ip.subarray(16, 20)].join('.'), sport: l4.readUInt16BE(0), dport: l4.readUInt16BE(2) };
    if (ip[9] === 17) out.push({ ...base, proto: 'udp', payload: l4.subarray(8, l4.readUInt16BE(4)) });
    else if (ip[9] === 6) out.push({ ...base, proto: 'tcp', payload: l4.subarray((l4[12]! >> 4) * 4) });
  }
  return out;
}

/** One file's transfer as the capture saw it. */
export interface Transfer {
  readonly protocol: 'tftp' | 'http';
  /** The path the client asked for (TFTP file name, or the HTTP request target without its leading `/`). */
  readonly path: string;
  readonly client: string;
  /** The request's time, ms since the epoch. */
  readonly start: number;
  /** The last packet of the transfer (TFTP: the client's last ACK; HTTP: the server's last byte of the response), ms since the epoch. */
  readonly end: number;
  /** Payload bytes the server sent for it (TFTP DATA bytes without headers; HTTP response bytes with headers). */
  readonly bytes: number;
}

/**
 * Every TFTP read and HTTP GET toward `server` (HTTP on `httpPort`), in request order. A TFTP
 * transfer runs on the server's new port toward the client's port; it ends at the client's last
 * packet there. An HTTP response ends at the server's last payload on that connection before the
 * client's next request on it (iPXE keeps connections open).
 */
export function transfers(packets: readonly Packet[], server: string, httpPort: number): Transfer[] {
  const out: Transfer[] = [];
  packets.forEach((p, i) => {
    if (p.proto === 'udp' && p.dst === server && p.dport === 69 && p.payload.length > 4 && p.payload.readUInt16BE(0) === 1) {
      const name = p.payload.subarray(2, p.payload.indexOf(0, 2)).toString('latin1').replace(/^\/+/, '');
      // The server's transfer port is the source of its first packet to the client's port.
      const first = packets.slice(i + 1).find((q) => q.proto === 'udp' && q.src === server && q.dst === p.src && q.dport === p.sport && q.sport !== 69);
      if (first === undefined) return;
      const tid = first.sport;
      let end = first.t;
      let bytes = 0;
      for (const q of packets.slice(i + 1)) {
        if (q.proto !== 'udp') continue;
        const mine = q.src === server && q.sport === tid && q.dst === p.src && q.dport === p.sport;
        const theirs = q.src === p.src && q.sport === p.sport && q.dst === server && q.dport === tid;
        if (!mine && !theirs) continue;
        end = q.t;
        if (mine && q.payload.readUInt16BE(0) === 3) bytes += q.payload.length - 4;
        // An ERROR ends it (and a repeated RRQ from the same port starts a new transfer).
        if (q.payload.readUInt16BE(0) === 5) break;
      }
      out.push({ protocol: 'tftp', path: name, client: p.src, start: p.t, end, bytes });
    } else if (p.proto === 'tcp' && p.dst === server && p.dport === httpPort && /^(GET|HEAD) /.test(p.payload.subarray(0, 5).toString('latin1'))) {
      const target = /^(?:GET|HEAD) (\S+)/.exec(p.payload.subarray(0, 2048).toString('latin1'))![1]!;
      let end = p.t;
      let bytes = 0;
      for (const q of packets.slice(i + 1)) {
        if (q.proto !== 'tcp' || q.payload.length === 0) continue;
        if (q.src === p.src && q.sport === p.sport && q.dst === server && q.dport === httpPort) break; // the next request
        if (q.src === server && q.sport === httpPort && q.dst === p.src && q.dport === p.sport) {
          end = q.t;
          bytes += q.payload.length;
        }
      }
      out.push({ protocol: 'http', path: decodeURIComponent(target.replace(/^\/+/, '')), client: p.src, start: p.t, end, bytes });
    }
  });
  return out;
}
