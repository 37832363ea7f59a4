import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkHasher } from '../../packages/chunk-hasher.ts';
import { MAX_CHUNK } from '../../packages/chunker.ts';
import { chunkFile } from '../../packages/file-chunks.ts';

test('chunking on the hash workers over shared blocks gives the same chunks and copy as on one thread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-file-chunks-'));
  // Blocks as small as allowed, and few: chunks span blocks and the reader waits for free ones.
  const hasher = new ChunkHasher({ blocks: 3, blockBytes: MAX_CHUNK, workers: 2 });
  try {
    const text = Buffer.from('record 0000042 name=user42 balance=1234 status=active\n'.repeat(40_000));
    const data = Buffer.concat([randomBytes(1_500_000), Buffer.alloc(3 * MAX_CHUNK + 17), text, randomBytes(777_777)]);
    writeFileSync(join(dir, 'src'), data);
    const single = await chunkFile(join(dir, 'src'), null);
    const parallel = await chunkFile(join(dir, 'src'), join(dir, 'copy'), undefined, hasher);
    assert.deepEqual(parallel, single);
    assert.deepEqual(readFileSync(join(dir, 'copy')), data);
    // And without the native addon (WebAssembly scan, node:crypto in the workers): the same.
    const plain = new ChunkHasher({ blocks: 3, blockBytes: MAX_CHUNK, workers: 2, native: false });
    try {
      assert.equal(plain.hashing, 'node:crypto');
      assert.deepEqual(await chunkFile(join(dir, 'src'), null, undefined, plain), single);
    } finally {
      await plain.close();
    }
    let off = 0;
    for (const c of parallel.chunks) {
      assert.equal(c.digest, createHash('sha256').update(data.subarray(off, off + c.size)).digest('hex'));
      off += c.size;
    }
    assert.equal(off, data.length);
    // The blocks all came back: another file goes through the same hasher.
    writeFileSync(join(dir, 'src2'), text);
    assert.deepEqual(await chunkFile(join(dir, 'src2'), null, undefined, hasher), await chunkFile(join(dir, 'src2'), null));
  } finally {
    await hasher.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a hasher refuses blocks too small to hold a chunk in two', () => {
  assert.throws(() => new ChunkHasher({ blockBytes: MAX_CHUNK - 1 }), /need >= 3 of/);
  assert.throws(() => new ChunkHasher({ blocks: 2 }), /need >= 3 of/);
});
