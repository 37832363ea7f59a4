import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../../platform/runtime/errors.ts';
import { ackBlock, decode, encode, encodingLength, writeDataHeader, type TftpPacket } from '../../protocols/tftp/tftp-codec.ts';
import { netasciiLength, toNetascii } from '../../protocols/tftp/netascii.ts';
import { fuzzSeed, prng } from '../helpers/fuzz.ts';

/** Annotated bytes: hex pieces with comments, joined. */
function hex(...pieces: string[]): Buffer {
  return Buffer.from(pieces.join('').replace(/\s+/g, ''), 'hex');
}
const str = (s: string): string => Buffer.from(s + '\0', 'latin1').toString('hex');

const FIXTURES: { name: string; bytes: Buffer; packet: TftpPacket }[] = [
  {
    name: 'RRQ as iPXE sends it: blksize 1432 and tsize',
    bytes: hex('0001', str('undionly.kpxe'), str('octet'), str('blksize'), str('1432'), str('tsize'), str('0')),
    packet: { op: 'RRQ', filename: 'undionly.kpxe', mode: 'octet', options: [{ name: 'blksize', value: '1432' }, { name: 'tsize', value: '0' }] },
  },
  {
    name: 'RRQ as EDK2 sends it: tsize then windowsize',
    bytes: hex('0001', str('snponly.efi'), str('octet'), str('tsize'), str('0'), str('blksize'), str('1468'), str('windowsize'), str('4')),
    packet: {
      op: 'RRQ',
      filename: 'snponly.efi',
      mode: 'octet',
      options: [{ name: 'tsize', value: '0' }, { name: 'blksize', value: '1468' }, { name: 'windowsize', value: '4' }],
    },
  },
  {
    name: 'RRQ with a Windows path, upper-case mode',
    bytes: hex('0001', str('\\Boot\\BCD'), str('OCTET')),
    packet: { op: 'RRQ', filename: '\\Boot\\BCD', mode: 'OCTET', options: [] },
  },
  { name: 'WRQ', bytes: hex('0002', str('up.bin'), str('netascii')), packet: { op: 'WRQ', filename: 'up.bin', mode: 'netascii', options: [] } },
  { name: 'DATA block 1, 3 bytes', bytes: hex('0003', '0001', 'aabbcc'), packet: { op: 'DATA', block: 1, data: Buffer.from([0xaa, 0xbb, 0xcc]) } },
  { name: 'DATA block 0 (after rollover), empty', bytes: hex('0003', '0000'), packet: { op: 'DATA', block: 0, data: Buffer.alloc(0) } },
  { name: 'ACK 65535', bytes: hex('0004', 'ffff'), packet: { op: 'ACK', block: 65535 } },
  { name: 'ERROR 8 from EDK2 after its tsize probe', bytes: hex('0005', '0008', str('Option negotiation failed')), packet: { op: 'ERROR', code: 8, message: 'Option negotiation failed' } },
  { name: 'OACK', bytes: hex('0006', str('blksize'), str('1432'), str('tsize'), str('1048576')), packet: { op: 'OACK', options: [{ name: 'blksize', value: '1432' }, { name: 'tsize', value: '1048576' }] } },
];

for (const f of FIXTURES) {
  test(`fixture: ${f.name}: decode, encode, decode(encode)`, () => {
    assert.deepEqual(decode(f.bytes), f.packet);
    assert.deepEqual(encode(f.packet), f.bytes);
    assert.equal(encodingLength(f.packet), f.bytes.length);
    assert.deepEqual(decode(encode(f.packet)), f.packet);
  });
}

test('lenient where real stacks differ: NUL padding after options, ERROR without final NUL, long ACK', () => {
  assert.deepEqual(decode(hex('0001', str('a'), str('octet'), '0000')), { op: 'RRQ', filename: 'a', mode: 'octet', options: [] });
  assert.deepEqual(decode(hex('0005', '0001', Buffer.from('nope').toString('hex'))), { op: 'ERROR', code: 1, message: 'nope' });
  assert.deepEqual(decode(hex('0004', '0007', '0000')), { op: 'ACK', block: 7 });
});

const BAD: [string, Buffer, string][] = [
  ['empty datagram', Buffer.alloc(0), 'tftp: packet too short (0 bytes)'],
  ['one byte', Buffer.from([0]), 'tftp: packet too short (1 bytes)'],
  ['unknown opcode', hex('0009', '0000'), 'tftp: unknown opcode 9'],
  ['opcode 0', hex('0000'), 'tftp: unknown opcode 0'],
  ['RRQ without terminator', hex('0001', Buffer.from('abc').toString('hex')), 'tftp: RRQ: string at byte 2 is not NUL-terminated'],
  ['RRQ without mode', hex('0001', str('abc')), 'tftp: RRQ: needs a file name and a mode'],
  ['RRQ with empty file name', hex('0001', '00', str('octet')), 'tftp: RRQ: empty file name'],
  ['RRQ with empty mode', hex('0001', str('a'), '00'), 'tftp: RRQ: empty mode'],
  ['RRQ option without value', hex('0001', str('a'), str('octet'), str('blksize')), 'tftp: RRQ: option "blksize" has no value'],
  ['RRQ with empty option name', hex('0001', str('a'), str('octet'), '00', str('x'), str('y'), str('z')), 'tftp: RRQ: empty option name'],
  ['DATA of 3 bytes', hex('0003', '00'), 'tftp: DATA too short (3 bytes)'],
  ['ACK of 3 bytes', hex('0004', '00'), 'tftp: ACK too short (3 bytes)'],
  ['ERROR of 2 bytes', hex('0005'), 'tftp: ERROR too short (2 bytes)'],
  ['OACK with dangling string', hex('0006', Buffer.from('blksize').toString('hex')), 'tftp: OACK: string at byte 2 is not NUL-terminated'],
];

for (const [name, bytes, message] of BAD) {
  test(`malformed: ${name} -> ProtocolError with a pinned message`, () => {
    assert.throws(() => decode(bytes), (err: unknown) => err instanceof ProtocolError && err.message === message && err.code === 'TFTP_MALFORMED');
  });
}

test('hot-path helpers agree with the codec', () => {
  assert.equal(ackBlock(hex('0004', '1234')), 0x1234);
  assert.equal(ackBlock(hex('0004', '12')), -1);
  assert.equal(ackBlock(hex('0003', '1234')), -1);
  assert.equal(ackBlock(hex('0104', '1234')), -1);
  const buf = Buffer.alloc(6, 0xee);
  writeDataHeader(buf, 65535);
  assert.deepEqual(decode(buf), { op: 'DATA', block: 65535, data: Buffer.from([0xee, 0xee]) });
});

test('netascii: LF -> CR LF, CR -> CR NUL, other bytes unchanged', () => {
  const src = Buffer.from('a\nb\r\nc\rd\0', 'latin1');
  const out = toNetascii(src);
  assert.equal(out.toString('latin1'), 'a\r\nb\r\0\r\nc\r\0d\0');
  assert.equal(netasciiLength(src), out.length);
  assert.equal(toNetascii(Buffer.alloc(0)).length, 0);
});

const SEED = fuzzSeed();

test(`fuzz: 100,000 random and mutated datagrams decode or throw ProtocolError (seed ${SEED}; FUZZ_SEED replays)`, () => {
  const rand = prng(SEED);
  const randomBytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
  const seeds = FIXTURES.map((f) => f.bytes);
  let decoded = 0;
  for (let i = 0; i < 100_000; i++) {
    let buf: Buffer;
    if (i % 2 === 0) {
      // Random: mostly short, with plausible opcodes half the time.
      buf = randomBytes(Math.floor(rand() * (i % 10 === 0 ? 1500 : 40)));
      if (buf.length >= 2 && i % 4 === 0) buf.writeUInt16BE(1 + (i % 7), 0);
    } else {
      const seed = seeds[i % seeds.length] as Buffer;
      buf = Buffer.from(seed);
      const flips = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < flips && buf.length > 0; k++) {
        const at = Math.floor(rand() * buf.length);
        const r = rand();
        buf[at] = r < 0.3 ? 0 : r < 0.5 ? 0xff : Math.floor(rand() * 256);
      }
      if (rand() < 0.3) buf = buf.subarray(0, Math.floor(rand() * buf.length));
    }
    try {
      const p = decode(buf);
      decoded++;
      // Whatever decodes re-encodes to something that decodes to the same packet.
      assert.deepEqual(decode(encode(p)), p);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw new Error(`non-protocol error for ${buf.toString('hex')}: ${String(err)}`);
    }
  }
  assert.ok(decoded > 1000, `some mutated packets should still decode (${decoded})`);
});
