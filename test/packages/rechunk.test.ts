// Re-chunking only around changed ranges gives exactly the chunks of a full chunking, and reads
// only near the changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chunkSizes } from '../../packages/chunker.ts';
import type { ChunkRef } from '../../packages/manifest.ts';
import { mergeRanges, rechunk, type ByteRange } from '../../packages/rechunk.ts';

function full(data: Buffer): ChunkRef[] {
  let off = 0;
  return chunkSizes(data).map((size) => {
    const c = { digest: createHash('sha256').update(data.subarray(off, off + size)).digest('hex'), size };
    off += size;
    return c;
  });
}

/** Runs of all-zero 4 KiB blocks. */
function zeroRuns(b: Buffer): ByteRange[] {
  const out: ByteRange[] = [];
  const zero = Buffer.alloc(4096);
  for (let off = 0; off + 4096 <= b.length; off += 4096) {
    if (!b.subarray(off, off + 4096).equals(zero)) continue;
    const last = out.at(-1);
    if (last !== undefined && last.end === off) out[out.length - 1] = { start: last.start, end: off + 4096 };
    else out.push({ start: off, end: off + 4096 });
  }
  return out;
}

test('mergeRanges sorts, clips and merges', () => {
  assert.deepEqual(mergeRanges([{ start: 50, end: 60 }, { start: -5, end: 10 }, { start: 8, end: 20 }, { start: 95, end: 200 }, { start: 30, end: 30 }], 100), [{ start: 0, end: 20 }, { start: 50, end: 60 }, { start: 95, end: 100 }]);
});

test('rechunk equals a full chunking after random edits, growth and shrinking', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-rechunk-'));
  try {
    let seed = 0;
    for (let round = 0; round < 40; round++) {
      const size = 6_000_000 + ((round * 7919) % 3_000_000);
      const a = Buffer.concat([randomBytes(size >> 1), Buffer.alloc(size >> 2), randomBytes(size - (size >> 1) - (size >> 2))]);
      const old = full(a);
      let b = Buffer.from(a);
      const changed: ByteRange[] = [];
      const edits = 1 + (round % 4);
      for (let k = 0; k < edits; k++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const at = seed % b.length;
        const len = Math.min(b.length - at, 1 + (seed % 150_000));
        randomBytes(len).copy(b, at);
        changed.push({ start: at, end: at + len });
      }
      if (round % 5 === 3) b = Buffer.concat([b, randomBytes(100_000 + round)]);
      if (round % 5 === 4) b = b.subarray(0, b.length - 300_000 - round);
      const file = join(dir, `f${round}`);
      writeFileSync(file, b);
      const fh = await open(file, 'r');
      try {
        // Odd rounds are told where the zeros are (holes, as the extents show them).
        const got = await rechunk(fh, b.length, old, changed, round % 2 === 1 ? zeroRuns(b) : []);
        assert.deepEqual(got.chunks, full(b), `round ${round}`);
        // Read: the changed bytes, and around each change at most the chunk before it, the
        // chunks until the cuts are back in step and one read. A change inside the run of zeros
        // shifts the 256 KiB cuts of the rest of that run, so unless the zeros were told, the
        // cutting reads on to the run's end (cuts in random data after it meet the old ones).
        const zerosAt = { start: size >> 1, end: (size >> 1) + (size >> 2) };
        const inZeros = (c: ByteRange): boolean => c.start < zerosAt.end && c.end > zerosAt.start;
        const zeroCost = round % 2 === 0 && changed.some(inZeros) ? zerosAt.end - zerosAt.start : 0;
        const bound = changed.reduce((n, c) => n + c.end - c.start, 0) + edits * 2 * 1024 * 1024 + zeroCost;
        if (round % 5 < 3) assert.ok(got.bytesRead <= bound, `round ${round}: read ${got.bytesRead} of ${b.length}, bound ${bound}`);
        // Nothing changed: nothing read.
        if (round === 0) assert.equal((await rechunk(fh, b.length, got.chunks, [])).bytesRead, 0);
      } finally {
        await fh.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
