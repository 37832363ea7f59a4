// bench/boot/pcap.ts on a capture written here: a TFTP read (RRQ, OACK, DATA/ACK on the server's
// new port) and two HTTP GETs on one kept-open connection, captured with a short snap length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPackets, transfers } from '../../bench/boot/pcap.ts';

const SERVER = '10.91.0.1';
const CLIENT = '10.91.0.150';
const ip = (a: string): Buffer => Buffer.from(a.split('.').map(Number));

function frame(proto: 'udp' | 'tcp', src: string, sport: number, dst: string, dport: number, payload: Buffer, seq = 0): Buffer {
  const l4 = proto === 'udp' ? Buffer.alloc(8) : Buffer.alloc(20);
  l4.writeUInt16BE(sport, 0);
  l4.writeUInt16BE(dport, 2);
  if (proto === 'udp') l4.writeUInt16BE(8 + payload.length, 4);
  else {
    l4[12] = 5 << 4;
    l4.writeUInt32BE(seq >>> 0, 4);
  }
  const iph = Buffer.alloc(20);
  iph[0] = 0x45;
  iph.writeUInt16BE(20 + l4.length + payload.length, 2);
  iph[9] = proto === 'udp' ? 17 : 6;
  ip(src).copy(iph, 12);
  ip(dst).copy(iph, 16);
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  return Buffer.concat([eth, iph, l4, payload]);
}

function pcap(frames: Array<[number, Buffer]>, snap = 256): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt32LE(snap, 16);
  head.writeUInt32LE(1, 20);
  return Buffer.concat([head, ...frames.map(([ms, f]) => {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(Math.floor(ms / 1000), 0);
    rec.writeUInt32LE((ms % 1000) * 1000, 4);
    const kept = f.subarray(0, snap);
    rec.writeUInt32LE(kept.length, 8);
    rec.writeUInt32LE(f.length, 12);
    return Buffer.concat([rec, kept]);
  })]);
}

const tftp = (op: number, rest: Buffer): Buffer => Buffer.concat([Buffer.from([0, op]), rest]);
const block = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);

test('TFTP and HTTP transfers: path, time from request to last new packet, bytes on the wire (retransmissions count neither)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pcap-test-'));
  try {
    const f: Array<[number, Buffer]> = [
      [1000, frame('udp', CLIENT, 2000, SERVER, 69, tftp(1, Buffer.from('/linuxpe/initrd.img\x00octet\x00blksize\x001024\x00')))],
      [1001, frame('udp', SERVER, 40000, CLIENT, 2000, tftp(6, Buffer.from('blksize\x001024\x00')))],
      [1002, frame('udp', CLIENT, 2000, SERVER, 40000, tftp(4, block(0)))],
      [1003, frame('udp', SERVER, 40000, CLIENT, 2000, tftp(3, Buffer.concat([block(1), Buffer.alloc(1024, 1)])))],
      [1004, frame('udp', CLIENT, 2000, SERVER, 40000, tftp(4, block(1)))],
      [1005, frame('udp', SERVER, 40000, CLIENT, 2000, tftp(3, Buffer.concat([block(2), Buffer.alloc(10, 1)])))],
      [1006, frame('udp', SERVER, 40000, CLIENT, 2000, tftp(3, Buffer.concat([block(2), Buffer.alloc(10, 1)])))],
      [1010, frame('udp', CLIENT, 2000, SERVER, 40000, tftp(4, block(2)))],
      [1500, frame('udp', SERVER, 40000, CLIENT, 2000, tftp(3, Buffer.concat([block(2), Buffer.alloc(10, 1)])))],
      [1501, frame('udp', CLIENT, 2000, SERVER, 40000, tftp(4, block(2)))],
      // HTTP: two requests on one connection; an empty ACK from the client is not a request. The
      // server's sequence numbers wrap past 2^32 in the first response; its last segment of the
      // second is sent again (never acknowledged): neither bytes nor time count.
      [2000, frame('tcp', CLIENT, 5000, SERVER, 8490, Buffer.from('GET /netboot/x/vmlinuz HTTP/1.1\r\nHost: a\r\n\r\n'))],
      [2001, frame('tcp', SERVER, 8490, CLIENT, 5000, Buffer.alloc(3000, 2), 2 ** 32 - 1000)],
      [2002, frame('tcp', CLIENT, 5000, SERVER, 8490, Buffer.alloc(0))],
      [2003, frame('tcp', SERVER, 8490, CLIENT, 5000, Buffer.alloc(1000, 2), 2000)],
      [2100, frame('tcp', CLIENT, 5000, SERVER, 8490, Buffer.from('GET /netboot/x/initrd%2Eimg HTTP/1.1\r\n\r\n'))],
      [2103, frame('tcp', SERVER, 8490, CLIENT, 5000, Buffer.alloc(400, 2), 3000)],
      [2105, frame('tcp', SERVER, 8490, CLIENT, 5000, Buffer.alloc(100, 2), 3400)],
      [2400, frame('tcp', SERVER, 8490, CLIENT, 5000, Buffer.alloc(100, 2), 3400)],
      [2900, frame('tcp', SERVER, 8490, CLIENT, 5000, Buffer.alloc(100, 2), 3400)],
    ];
    writeFileSync(join(dir, 'c.pcap'), pcap(f));
    const got = transfers(readPackets(join(dir, 'c.pcap')), SERVER, 8490);
    assert.deepEqual(got.map((t) => [t.protocol, t.path, t.end - t.start, t.bytes]), [
      ['tftp', 'linuxpe/initrd.img', 10, 1034],
      ['http', 'netboot/x/vmlinuz', 3, 4000],
      ['http', 'netboot/x/initrd.img', 5, 500],
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
