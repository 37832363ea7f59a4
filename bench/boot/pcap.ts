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
  /** The payload as captured (a short snap length keeps only its start). */
  readonly payload: Buffer;
  /** The payload's length on the wire. */
  readonly size: number;
  /** TCP: the sequence number of the payload's first byte (0 for UDP). */
  readonly seq: number;
}

/** Reads a capture; a snap length as short as 256 bytes is enough (`tcpdump -s 256`). */
export function readPackets(path: string): Packet[] {
  const file = readFileSync(path);
  if (file.length < 24 || file.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${path}: not a little-endian microsecond pcap file`);
  const out: Packet[] = [];
  for (let at = 24; at + 16 <= file.length; ) {
    const t = file.readUInt32LE(at) * 1000 + file.readUInt32LE(at + 4) / 1000;
    const len = file.readUInt32LE(at + 8);
    const wire = file.readUInt32LE(at + 12);
    const frame = file.subarray(at + 16, at + 16 + len);
    at += 16 + len;
    if (frame.length < 34 || frame.readUInt16BE(12) !== 0x0800) continue;
    // An offloaded segment seen before it is split may say 0: its length on the wire then.
    const ipLen = frame.readUInt16BE(16) || wire - 14;
    const ip = frame.subarray(14);
    const ihl = (ip[0]! & 0x0f) * 4;
    const l4 = ip.subarray(ihl);
    if (l4.length < (ip[9] === 6 ? 20 : 8)) continue;
    const base = { t, src: [...ip.subarray(12, 16)].join('.'), dst: [...ip.subarray(16, 20)].join('.'), sport: l4.readUInt16BE(0), dport: l4.readUInt16BE(2) };
    if (ip[9] === 17) {
      const size = l4.readUInt16BE(4) - 8;
      out.push({ ...base, proto: 'udp', payload: l4.subarray(8, 8 + size), size, seq: 0 });
    } else if (ip[9] === 6) {
      const doff = (l4[12]! >> 4) * 4;
      out.push({ ...base, proto: 'tcp', payload: l4.subarray(doff), size: ipLen - ihl - doff, seq: l4.readUInt32BE(4) });
    }
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
  /** The transfer's last new packet (TFTP: the client's first ACK of the last block; HTTP: the server's first sending of the response's last byte), ms since the epoch; retransmissions do not count. */
  readonly end: number;
  /** Payload bytes the server sent for it, as captured (TFTP: DATA bytes without headers, each block once; HTTP: response bytes with headers). A capture that dropped packets says less. */
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
      // Retransmitted blocks count once; block numbers wrap after 65535.
      const blocks = new Set<number>();
      const acked = new Set<number>();
      let wraps = 0;
      let last = 0;
      for (const q of packets.slice(i + 1)) {
        if (q.proto !== 'udp' || q.payload.length < 2) continue;
        const mine = q.src === server && q.sport === tid && q.dst === p.src && q.dport === p.sport;
        const theirs = q.src === p.src && q.sport === p.sport && q.dst === server && q.dport === tid;
        if (!mine && !theirs) continue;
        if (q.payload.length < 4) continue;
        const op = q.payload.readUInt16BE(0);
        const n = q.payload.readUInt16BE(2);
        if (mine && op === 3) {
          if (n < last - 32768) wraps++;
          last = n;
          if (!blocks.has(wraps * 65536 + n)) {
            bytes += q.size - 4;
            end = q.t;
          }
          blocks.add(wraps * 65536 + n);
        } else if (theirs && op === 4 && n === last && !acked.has(wraps * 65536 + n)) {
          // The client's first ACK of the newest block; repeated ones answer retransmissions.
          acked.add(wraps * 65536 + n);
          end = q.t;
        }
        // An ERROR ends it (and a repeated RRQ from the same port starts a new transfer).
        if (q.payload.readUInt16BE(0) === 5) break;
      }
      out.push({ protocol: 'tftp', path: name, client: p.src, start: p.t, end, bytes });
    } else if (p.proto === 'tcp' && p.dst === server && p.dport === httpPort && /^(GET|HEAD) /.test(p.payload.subarray(0, 5).toString('latin1'))) {
      const target = /^(?:GET|HEAD) (\S+)/.exec(p.payload.subarray(0, 2048).toString('latin1'))![1]!;
      let end = p.t;
      let bytes = 0;
      // Only new bytes count: a retransmission (iPXE may stop acknowledging once it has the whole
      // file and boots) neither adds bytes nor moves the end.
      let sent: number | null = null;
      for (const q of packets.slice(i + 1)) {
        if (q.proto !== 'tcp' || q.size <= 0) continue;
        if (q.src === p.src && q.sport === p.sport && q.dst === server && q.dport === httpPort) break; // the next request
        if (q.src === server && q.sport === httpPort && q.dst === p.src && q.dport === p.sport) {
          const top = q.seq + q.size;
          const from = sent === null ? q.seq : sent;
          // Sequence numbers wrap at 2^32: compare by the signed difference.
          if (sent === null || ((top - sent) | 0) > 0) {
            bytes += Math.min((top - from) | 0, q.size);
            sent = top >>> 0;
            end = q.t;
          }
        }
      }
      out.push({ protocol: 'http', path: decodeURIComponent(target.replace(/^\/+/, '')), client: p.src, start: p.t, end, bytes });
    }
  });
  return out;
}
