import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AVG_CHUNK, Chunker, GEAR, MAX_CHUNK, MIN_CHUNK, chunkSizes, newScanner } from '../../packages/chunker.ts';
import { DATA_AT, wasmScan } from '../../packages/gear-scan.ts';

/** Deterministic pseudo-random bytes (xorshift32), so boundaries are reproducible. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function digests(data: Uint8Array): string[] {
  const out: string[] = [];
  let off = 0;
  for (const s of chunkSizes(data)) {
    out.push(createHash('sha256').update(data.subarray(off, off + s)).digest('hex'));
    off += s;
  }
  return out;
}

test('chunks cover the input exactly, within the size bounds, averaging near 64 KiB', () => {
  const data = bytes(16 * 1024 * 1024, 7);
  const sizes = chunkSizes(data);
  assert.equal(sizes.reduce((a, b) => a + b, 0), data.length);
  for (const s of sizes.slice(0, -1)) assert.ok(s >= MIN_CHUNK && s <= MAX_CHUNK, `chunk of ${s} bytes`);
  const avg = data.length / sizes.length;
  assert.ok(avg > AVG_CHUNK * 0.75 && avg < AVG_CHUNK * 1.5, `average ${avg}`);
});

test('the boundaries are part of the format: a fixed input always cuts the same way', () => {
  // If this changes, every server would cut differently from the last release and lose dedup.
  assert.deepEqual(chunkSizes(bytes(1024 * 1024, 42)), [57183, 69474, 88890, 59906, 70724, 85867, 68970, 69062, 76947, 56707, 75229, 74821, 29626, 82872, 82298]);
});

test('feeding the stream in arbitrary pieces gives the same boundaries as one buffer', () => {
  const data = bytes(3 * 1024 * 1024 + 123, 9);
  const whole = chunkSizes(data);
  for (const piece of [1, 7, 4096, 65536, 300_001]) {
    const c = new Chunker();
    const ends: number[] = [];
    for (let off = 0; off < data.length; off += piece) {
      for (const cut of c.push(data.subarray(off, Math.min(off + piece, data.length)))) ends.push(off + cut);
    }
    const rest = c.end();
    const sizes = ends.map((e, i) => e - (i === 0 ? 0 : ends[i - 1]!));
    if (rest > 0) sizes.push(rest);
    assert.deepEqual(sizes, whole, `piece size ${piece}`);
  }
});

test('an edit in place or an insertion changes only the chunks around it', () => {
  const data = bytes(8 * 1024 * 1024, 3);
  const before = new Set(digests(data));
  const edited = Uint8Array.from(data);
  for (let i = 0; i < 100; i++) edited[4_000_000 + i] = edited[4_000_000 + i]! ^ 0xff;
  const changedInPlace = digests(edited).filter((d) => !before.has(d));
  assert.ok(changedInPlace.length >= 1 && changedInPlace.length <= 2, `${changedInPlace.length} chunks changed by an in-place edit`);
  const inserted = new Uint8Array(data.length + 1000);
  inserted.set(data.subarray(0, 2_000_000));
  inserted.set(bytes(1000, 11), 2_000_000);
  inserted.set(data.subarray(2_000_000), 2_001_000);
  const changedByInsert = digests(inserted).filter((d) => !before.has(d));
  assert.ok(changedByInsert.length >= 1 && changedByInsert.length <= 3, `${changedByInsert.length} chunks changed by an insertion`);
});

test('data with no cut point is cut at the maximum size', () => {
  const sizes = chunkSizes(new Uint8Array(MAX_CHUNK * 3 + 5));
  // Zeros: the gear hash of a constant run is periodic; whatever it does, bounds hold.
  for (const s of sizes.slice(0, -1)) assert.ok(s >= MIN_CHUNK && s <= MAX_CHUNK);
  assert.equal(sizes.reduce((a, b) => a + b, 0), MAX_CHUNK * 3 + 5);
});

/** The cut rule written out byte by byte, as the README states it: what the fast scan must match. */
function referenceSizes(data: Uint8Array): number[] {
  const sizes: number[] = [];
  let start = 0;
  while (start < data.length) {
    let h = 0;
    let end = Math.min(data.length, start + MAX_CHUNK);
    for (let i = start + MIN_CHUNK; i < end; i++) {
      h = ((h << 1) + GEAR[data[i]!]!) | 0;
      const mask = i - start < AVG_CHUNK ? 0xffffc000 : 0xfffc0000;
      if ((h & mask) === 0) {
        end = i + 1;
        break;
      }
    }
    sizes.push(end - start);
    start = end;
  }
  return sizes;
}

test('the scan cuts exactly where the byte-by-byte rule does, on random, text-like and constant data', () => {
  const text = Buffer.from('option value = true # boot kernel module eth0 dhcp\n'.repeat(200_000));
  const mixed = Buffer.concat([bytes(2_000_000, 5), new Uint8Array(700_000), text.subarray(0, 3_000_000), bytes(1_234_567, 6)]);
  for (const [label, data] of [['random', bytes(6_000_000, 1)], ['text', text], ['mixed', mixed]] as const) {
    assert.deepEqual(chunkSizes(data), referenceSizes(data), label);
  }
});

test('data read into the memory of the wasm scanner is scanned in place, with the same boundaries', () => {
  const data = bytes(5 * 1024 * 1024 + 99, 21);
  const scanner = newScanner(2 * 1024 * 1024);
  const chunker = new Chunker(wasmScan(scanner));
  const block = new Uint8Array(scanner.buffer, DATA_AT, 2 * 1024 * 1024);
  const ends: number[] = [];
  for (let off = 0; off < data.length; off += block.length) {
    const piece = data.subarray(off, off + block.length);
    block.set(piece);
    for (const cut of chunker.push(block.subarray(0, piece.length))) ends.push(off + cut);
  }
  const rest = chunker.end();
  const sizes = ends.map((e, i) => e - (i === 0 ? 0 : ends[i - 1]!));
  if (rest > 0) sizes.push(rest);
  assert.deepEqual(sizes, chunkSizes(data));
});
