// 100,000+ random and mutated packets: the decoder (and every typed accessor, and the PXE request
// reader) returns a value or throws ProtocolError, never anything else; whatever decodes
// re-encodes to a packet that decodes to the same thing. Seeded, so a failure reproduces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { decode, encode } from '../../protocols/dhcp/dhcp-codec.ts';
import { readPxeRequest } from '../../boot/pxe-request.ts';
import { readRelay } from '../../boot/relay.ts';
import { ProtocolError } from '../../platform/runtime/errors.ts';
import { describePacket } from './describe-packet.ts';
import { readPcapUdp } from './pcap.ts';
import { fuzzSeed } from '../helpers/fuzz.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const SEEDS = ['bios-ipxe-dnsmasq', 'efi-native-dnsmasq', 'efi-ipxe-dnsmasq', 'relay-bios-netboot'].flatMap((n) => readPcapUdp(join(FIXTURES, `${n}.pcap`)).map((d) => d.payload));

/** xorshift32: small, seeded, good enough to pick bytes. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function mutate(next: () => number): Buffer {
  const seed = SEEDS[next() % SEEDS.length]!;
  const b = Buffer.from(seed);
  const edits = 1 + (next() % 8);
  for (let i = 0; i < edits; i++) {
    const at = 236 + (next() % (b.length - 236)); // mostly the option area, where the parsing is
    switch (next() % 5) {
      case 0: b[at] = next() & 0xff; break; // any byte
      case 1: b[at] = [0, 1, 2, 3, 4, 16, 17, 52, 255][next() % 9]!; break; // lengths that matter
      case 2: b[next() % b.length] = next() & 0xff; break; // header too
      case 3: return b.subarray(0, next() % b.length); // truncated
      case 4: b[at] = [43, 52, 53, 54, 55, 57, 60, 61, 77, 82, 93, 94, 97, 175][next() % 14]!; break; // known codes
    }
  }
  return b;
}

function random(next: () => number): Buffer {
  const length = next() % 700;
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = next() & 0xff;
  if (length >= 240 && next() % 2 === 0) {
    b[0] = 1 + (next() % 2);
    b[2] = next() % 17;
    b.writeUInt32BE(0x63825363, 236);
  }
  return b;
}

const SEED = fuzzSeed();

test(`random and mutated packets: decode returns a packet or throws ProtocolError (seed ${SEED}; FUZZ_SEED replays)`, () => {
  const next = rng(SEED);
  const total = 120_000;
  let decoded = 0;
  let rejected = 0;
  for (let i = 0; i < total; i++) {
    const bytes = i % 4 === 0 ? random(next) : mutate(next);
    try {
      const p = decode(bytes);
      const described = describePacket(p); // every typed accessor
      readPxeRequest(p, i % 2 === 0 ? 'dhcp' : 'proxy');
      readRelay(p);
      decoded++;
      const again = decode(encode(p));
      assert.deepEqual(describePacket(again).options, described.options, `round trip of packet ${i}`);
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      if (!(err instanceof ProtocolError)) assert.fail(`packet ${i} (${bytes.toString('hex')}) threw ${String(err)}`);
      rejected++;
    }
  }
  assert.equal(decoded + rejected, total);
  // Both paths are exercised, or the test proves nothing.
  assert.ok(decoded > 10_000 && rejected > 10_000, `decoded ${decoded}, rejected ${rejected}`);
});
