// The native batch SHA-256 must give node:crypto's digests: manifests are compared across
// servers, and a server without the addon (the fallback) must agree with one that has it. The
// addon is built here if missing, so this never passes by skipping. (The native gear scan and its
// tests were removed: the WebAssembly scan was faster; bench/RESULTS.md, "Native paths".)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { AVG_CHUNK, MAX_CHUNK, MIN_CHUNK, nativeChunking } from '../../packages/chunker.ts';
import { ensureAddonBuilt } from '../helpers/native-build.ts';

ensureAddonBuilt('chunking', 'chunking.node');
process.env.NETBOOT_NATIVE_FAULTS = '1'; // the test-only switches below (native/common/nb_common.h)
const support = nativeChunking();
if (!support.ok) throw new Error(support.reason);
const addon = createRequire(import.meta.url)(support.path) as {
  sha256Chunks(mem: Uint8Array, pieces: Uint32Array, out: Uint8Array): void;
  sha256Engine(force?: string): string;
  sha256Lanes(): boolean;
  injectFault(name: string, after: number, times?: number): void;
};
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
