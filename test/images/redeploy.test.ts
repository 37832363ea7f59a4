// Compare in place, on loop devices, with hashing on worker threads and inline: a target chunk
// whose bytes do not hash to the image's digest is rewritten, whether the image's chunk holds
// data or is all zeros (its zero digest is not taken for a match of non-zero bytes); everything
// else is skipped (a zero chunk is written without being fetched); a batch fetched with a bad chunk in it has that chunk fetched again; a chunk the image holds twice is fetched once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDisk } from '../../images/block-device.ts';
import { captureDisk } from '../../images/capture.ts';
import { MemoryChunkStore, type ChunkSource } from '../../images/chunk-store.ts';
import { deployImage } from '../../images/deploy.ts';
import { allChunks, type DiskImage } from '../../images/disk-image.ts';
import { digestHex } from '../../images/hash-pool.ts';
import { gptDisk, makeTree, MiB, sparseFile, withLoop, type GptDisk } from './disks.ts';

let dir: string;
let src: GptDisk;
let image: DiskImage;
const store = new MemoryChunkStore();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imaging-redeploy-'));
  makeTree(join(dir, 'tree'), 10, 600 * 1024 + 5);
  src = gptDisk(join(dir, 'src.img'), 64 * MiB, join(dir, 'tree'));
  image = await withLoop(src.path, async (dev) => {
    const disk = await openDisk(dev, 'r');
    try {
      return (await captureDisk(disk, { sink: store, madeBy: 'capture', probeOs: false })).image;
    } finally {
      await disk.close();
    }
  });
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** Digests of the target's used data, captured the same way. */
async function capturedDigests(path: string): Promise<string[]> {
  return withLoop(path, async (dev) => {
    const disk = await openDisk(dev, 'r');
    try {
      return allChunks((await captureDisk(disk, { sink: new MemoryChunkStore(), madeBy: 'capture', probeOs: false, hashThreads: 0 })).image).map((c) => c.digest);
    } finally {
      await disk.close();
    }
  });
}

function poke(path: string, at: number, value: number): void {
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0] === value ? value ^ 0x01 : value;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

for (const hashThreads of [2, 0]) {
  test(`hashThreads ${hashThreads}: a wrong byte in a data chunk and in a zero chunk of the target: exactly those two are rewritten`, async () => {
    const root = image.partitions.find((p) => p.fs === 'ext4')!;
    const zeroChunk = root.chunks.find((c) => c.digest === digestHex(Buffer.alloc(c.length)));
    const dataChunk = root.chunks.find((c) => c.length === image.chunkBytes && c.digest !== digestHex(Buffer.alloc(c.length)) && c.offset > MiB);
    assert.ok(zeroChunk !== undefined && dataChunk !== undefined, 'the image has a zero chunk and a full data chunk');
    const out = sparseFile(join(dir, `out-${hashThreads}.img`), 64 * MiB);
    const deploy = () => withLoop(out, async (dev) => {
      const disk = await openDisk(dev, 'r+');
      try {
        return await deployImage(disk, image, { source: store, hashThreads });
      } finally {
        await disk.close();
      }
    });
    const first = await deploy();
    assert.ok(first.chunksWritten > 0);
    // A chunk's first byte is always a used byte (chunks run from the first to the last used byte of their window).
    poke(out, root.startBytes + dataChunk.offset + 0, 0x5a);
    poke(out, root.startBytes + zeroChunk.offset + 0, 0xff);
    const again = await deploy();
    assert.equal(again.chunksWritten, 2);
    assert.equal(again.bytesWritten, dataChunk.length + zeroChunk.length);
    assert.equal(again.bytesTransferred, dataChunk.length, 'the zero chunk is written from zeros, not fetched');
    assert.equal(again.chunksSkipped, allChunks(image).length - image.head.chunks.length - 2);
    assert.deepEqual(await capturedDigests(out), allChunks(image).map((c) => c.digest));
    const third = await deploy();
    assert.deepEqual([third.chunksWritten, third.bytesWritten, third.bytesTransferred], [0, 0, 0]);
  });
}

test('a batch fetched with one bad chunk in it: that chunk is fetched again, verified, and the disk is right', async () => {
  let tampered = 0;
  const source: ChunkSource = {
    get: (d) => store.get(d),
    async getMany(digests) {
      const m = new Map<string, Buffer>();
      for (const d of digests) {
        const b = await store.get(d);
        if (b === null) continue;
        if (tampered === 0 && b.length > 1024) {
          b[100] = b[100]! ^ 0xff;
          tampered++;
        }
        m.set(d, b);
      }
      return m;
    },
  };
  const out = sparseFile(join(dir, 'out-batch.img'), 64 * MiB);
  const r = await withLoop(out, async (dev) => {
    const disk = await openDisk(dev, 'r+');
    try {
      return await deployImage(disk, image, { source, hashThreads: 2 });
    } finally {
      await disk.close();
    }
  });
  assert.equal(tampered, 1);
  assert.equal(r.chunksRefetched, 1);
  assert.deepEqual(await capturedDigests(out), allChunks(image).map((c) => c.digest));
});

test('a chunk the image holds twice is fetched once: the second place gets the bytes read back from the first, verified', async () => {
  // The ESP's one chunk (written first: partitions go in order, each with its own batches) also
  // stands for a full data chunk of the ext4.
  const esp = image.partitions.find((p) => p.fs?.startsWith('fat'))!;
  const root = image.partitions.find((p) => p.fs === 'ext4')!;
  const a = esp.chunks.find((c) => c.digest !== digestHex(Buffer.alloc(c.length)))!;
  const b = root.chunks.filter((c) => c.length >= a.length && c.offset > MiB && root.used.some((e) => e.start <= c.offset && c.offset + c.length <= e.start + e.length))[3]!;
  assert.ok(a !== undefined && b !== undefined);
  const twice: DiskImage = { ...image, partitions: image.partitions.map((p) => (p !== root ? p : { ...p, chunks: p.chunks.map((c) => (c === b ? { offset: b.offset, length: a.length, digest: a.digest } : c)) })) };
  const asked: string[] = [];
  const source: ChunkSource = {
    get: (d) => {
      asked.push(d);
      return store.get(d);
    },
  };
  const out = sparseFile(join(dir, 'out-twice.img'), 64 * MiB);
  const r = await withLoop(out, async (dev) => {
    const disk = await openDisk(dev, 'r+');
    try {
      return await deployImage(disk, twice, { source, hashThreads: 2 });
    } finally {
      await disk.close();
    }
  });
  assert.equal(asked.filter((d) => d === a.digest).length, 1, 'fetched once');
  assert.equal(new Set(asked).size, asked.length, 'no chunk fetched twice');
  const held = (await store.get(a.digest))!;
  const fd = openSync(out, 'r');
  try {
    for (const at of [esp.startBytes + a.offset, root.startBytes + b.offset]) {
      const got = Buffer.alloc(a.length);
      readSync(fd, got, 0, a.length, at);
      assert.ok(got.equals(held), `the bytes at ${at}`);
    }
  } finally {
    closeSync(fd);
  }
  assert.equal(r.bytesTransferred, asked.reduce((n, d) => n + store.chunks.get(d)!.length, 0));
});
