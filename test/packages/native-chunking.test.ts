// The native gear scan must cut byte for byte where the WebAssembly scan does, and the native
// batch SHA-256 give node:crypto's digests: manifests are compared across servers, and a server
// without the addon (the fallbacks) must agree with one that has it. The addon is built here if
// missing, so this never passes by skipping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { AVG_CHUNK, Chunker, GEAR, MAX_CHUNK, MIN_CHUNK, nativeChunking, newScanner } from '../../packages/chunker.ts';
import { wasmScan, type GearScan } from '../../packages/gear-scan.ts';
import { ensureAddonBuilt } from '../helpers/native-build.ts';

ensureAddonBuilt('chunking', 'chunking.node');
process.env.NETBOOT_NATIVE_FAULTS = '1'; // the test-only switches below (native/common/nb_common.h)
const support = nativeChunking();
if (!support.ok) throw new Error(support.reason);
const addon = createRequire(import.meta.url)(support.path) as {
  sha256Chunks(mem: Uint8Array, pieces: Uint32Array, out: Uint8Array): void;
  scanScalar(gear: Int32Array, data: Uint8Array, from: number, to: number, h: number, mask: number): number;
  sha256Engine(force?: string): string;
  sha256Lanes(): boolean;
  injectFault(name: string, after: number, times?: number): void;
};
const wasm = wasmScan(newScanner(0));
// The scan the addon picks for this CPU (AVX-512 where it has it), and its scalar code.
const table = Int32Array.from(GEAR);
const natives: Array<[string, GearScan]> = [
  [support.avx512Scan ? 'native (AVX-512)' : 'native', support.scan],
  ['native scalar', (data, from, to, h, mask) => addon.scanScalar(table, data, from, to, h, mask)],
];

/** xorshift32: reproducible data and choices. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

function randomBytes(n: number, next: () => number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

/** Random, text-like, constant runs of every kind, short periods, and mixes of them. */
function sample(n: number, next: () => number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; ) {
    const len = Math.min(n - off, 1 + (next() % (MAX_CHUNK * 2)));
    const kind = next() % 5;
    const b = next() & 0xff;
    for (let i = 0; i < len; i++) {
      out[off + i] = kind === 0 ? next() & 0xff : kind === 1 ? b : kind === 2 ? (i * 7 + b) % 251 : kind === 3 ? 'option = value\n'.charCodeAt(i % 15) : (i >> 3) & 0xff;
    }
    off += len;
  }
  return out;
}

/** Chunk ends with `scan`, the data pushed in pieces of random sizes. */
function cuts(scan: GearScan, data: Uint8Array, next: () => number): number[] {
  const c = new Chunker(scan);
  const ends: number[] = [];
  for (let off = 0; off < data.length; ) {
    const n = Math.min(data.length - off, 1 + (next() % (3 * MAX_CHUNK)));
    for (const cut of c.push(data.subarray(off, off + n))) ends.push(off + cut);
    off += n;
  }
  ends.push(-c.end()); // the size of the unfinished last chunk, told apart by its sign
  return ends;
}

test('the native scans return what the wasm scan does for every range, start hash and mask', () => {
  for (const [label, nativeScan] of natives) {
    const next = rng(1234);
    const data = sample(4 * 1024 * 1024, next);
    const masks = [0xffffc000 | 0, 0xfffc0000 | 0, 0x80000000 | 0, 0xf | 0, -1, 0];
    for (let k = 0; k < 20_000; k++) {
      const from = next() % data.length;
      // Mostly short ranges (the edges of the 8- and 32-byte rounds: 0 to 69 bytes), some as long as one scan call.
      const len = k % 4 === 0 ? next() % (MAX_CHUNK - MIN_CHUNK + 1) : next() % 70;
      const to = Math.min(data.length, from + len);
      const h = next() | 0;
      const mask = masks[k % masks.length]!;
      assert.equal(nativeScan(data, from, to, h, mask), wasm(data, from, to, h, mask), `${label}: from ${from} to ${to} h ${h} mask ${mask}`);
    }
  }
});

test('native and wasm chunkers cut identically over many random buffers, pushed in random pieces', () => {
  for (const [label, nativeScan] of natives) {
    const next = rng(99);
    for (let k = 0; k < 150; k++) {
      const data = sample(next() % (3 * 1024 * 1024), next);
      const seed = next();
      assert.deepEqual(cuts(nativeScan, data, rng(seed)), cuts(wasm, data, rng(seed)), `${label}: buffer ${k} of ${data.length} bytes`);
    }
  }
});

test('native and wasm cut identically on the edge cases: empty, below the minimum, at the bounds, runs of one byte', () => {
  for (const [label, nativeScan] of natives) {
    const next = rng(7);
    const sizes = [0, 1, 7, 8, 9, MIN_CHUNK - 1, MIN_CHUNK, MIN_CHUNK + 1, AVG_CHUNK - 1, AVG_CHUNK, AVG_CHUNK + 1, MAX_CHUNK - 1, MAX_CHUNK, MAX_CHUNK + 1, 2 * MAX_CHUNK, 5 * MAX_CHUNK + 3];
    for (const n of sizes) {
      const data = randomBytes(n, next);
      assert.deepEqual(cuts(nativeScan, data, () => n + 1), cuts(wasm, data, () => n + 1), `${label}: random, ${n} bytes in one piece`);
      assert.deepEqual(cuts(nativeScan, data, rng(n)), cuts(wasm, data, rng(n)), `${label}: random, ${n} bytes in pieces`);
    }
    for (let b = 0; b < 256; b++) {
      const run = new Uint8Array(MAX_CHUNK * 4 + 11).fill(b);
      const got = cuts(nativeScan, run, rng(b));
      assert.deepEqual(got, cuts(wasm, run, rng(b)), `${label}: a run of byte ${b}`);
    }
  }
});

/** Batches of random chunks (one or two pieces, every padding edge) hashed by the addon and by node:crypto. */
function checkBatches(label: string): void {
  const next = rng(5);
  const mem = sample(8 * 1024 * 1024, next);
  const edges = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, MIN_CHUNK, AVG_CHUNK + 7, MAX_CHUNK];
  // Batch sizes around the lane count (16) and the hand-over to one-by-one hashing, and larger.
  for (const count of [1, 2, 8, 9, 15, 16, 17, 31, 45, 100, 300]) {
    const pieces = new Uint32Array(4 * count);
    const want: string[] = [];
    for (let i = 0; i < count; i++) {
      const len = i < edges.length && count > 100 ? edges[i]! : next() % (i % 3 === 0 ? 200 : MAX_CHUNK + 1);
      const split = next() % 2 === 0 ? len : next() % (len + 1); // bytes in the first piece
      const a = next() % (mem.length - len);
      const b = next() % (mem.length - len);
      pieces.set([a, split, b, len - split], 4 * i);
      want.push(createHash('sha256').update(mem.subarray(a, a + split)).update(mem.subarray(b, b + len - split)).digest('hex'));
    }
    const out = Buffer.alloc(32 * count);
    addon.sha256Chunks(mem, pieces, out);
    const got = Array.from({ length: count }, (_, i) => out.subarray(32 * i, 32 * i + 32).toString('hex'));
    assert.deepEqual(got, want, `${label}: batch of ${count}`);
  }
}

test('native batch SHA-256 gives the digests of node:crypto: chunks in one or two pieces, every padding edge, batches of every size', () => {
  const mem = new Uint8Array(1024);
  checkBatches(`lanes ${addon.sha256Lanes()}, finishing with ${addon.sha256Engine()}`);
  assert.throws(() => addon.sha256Chunks(mem, Uint32Array.of(mem.length - 10, 11, 0, 0), Buffer.alloc(32)), /outside the memory/);
  assert.throws(() => addon.sha256Chunks(mem, Uint32Array.of(0, 1, 0), Buffer.alloc(32)), /4 numbers per chunk/);
});

test('the lanes finish their last messages with either one-block compression (SHA-NI, plain C) and get the same digests', () => {
  const chosen = addon.sha256Engine();
  try {
    for (const engine of ['sha-ni', 'c']) {
      try {
        addon.sha256Engine(engine);
      } catch {
        assert.equal(engine, 'sha-ni', 'plain C is always there');
        continue; // this CPU has no SHA extensions
      }
      assert.equal(addon.sha256Engine(), engine);
      checkBatches(`finishing with ${engine}`);
    }
  } finally {
    addon.sha256Engine(chosen);
  }
});

test('a batch whose allocation fails throws and hashes nothing; the next one works', () => {
  const mem = Buffer.from('abc');
  const out = Buffer.alloc(32);
  addon.injectFault('alloc', 0);
  assert.throws(() => addon.sha256Chunks(mem, Uint32Array.of(0, 3, 0, 0), out), /out of memory/);
  assert.ok(out.equals(Buffer.alloc(32)));
  addon.sha256Chunks(mem, Uint32Array.of(0, 3, 0, 0), out);
  assert.equal(out.toString('hex'), createHash('sha256').update('abc').digest('hex'));
});
