// Packet captures on loopback for the TFTP benches: tcpdump started and stopped around a
// measurement, and its UDP packets read back (libpcap, Ethernet framing as Linux gives `lo`).
// Timestamps are taken where each packet is handed to the device, so a server's response time
// read from them does not include the client's own scheduling.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface UdpPacket {
  /** Microseconds. */
  readonly t: number;
  readonly sport: number;
  readonly dport: number;
  /** The first two bytes of the payload (a TFTP opcode), and the next two (block or error code). */
  readonly op: number;
  readonly block: number;
}

export function readCapture(path: string): UdpPacket[] {
  const file = readFileSync(path);
  const out: UdpPacket[] = [];
  for (let at = 24; at + 16 <= file.length; ) {
    const t = file.readUInt32LE(at) * 1e6 + file.readUInt32LE(at + 4);
    const caplen = file.readUInt32LE(at + 8);
    const frame = file.subarray(at + 16, at + 16 + caplen);
    at += 16 + caplen;
    if (frame.length < 46 || frame.readUInt16BE(12) !== 0x0800 || frame[23] !== 17) continue;
    const udp = frame.subarray(14 + (frame[14]! & 0x0f) * 4);
    if (udp.length < 12) continue;
    out.push({ t, sport: udp.readUInt16BE(0), dport: udp.readUInt16BE(2), op: udp.readUInt16BE(8), block: udp.readUInt16BE(10) });
  }
  return out;
}

/** tcpdump on `lo` into `file` (first 64 bytes of each UDP packet); stop() ends it and waits. */
export async function startCapture(file: string): Promise<{ stop(): Promise<void> }> {
  const dump = spawn('tcpdump', ['-i', 'lo', '-s', '64', '-B', '65536', '--immediate-mode', '-w', file, 'udp'], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    dump.once('error', reject);
    dump.stderr!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
  });
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 200)); // the last packets out of tcpdump's buffer
      dump.kill('SIGINT');
      await new Promise((r) => dump.once('close', r));
    },
  };
}
