// Used blocks only, and what two nearly equal captures share: a 1 GiB ext4 (sparse file, on a
// loop device) with 100 MiB used stores about 100 MiB; after a 1 % change a second capture stores
// about 1 % new; deploying the second version onto a disk holding the first (with garbage in its
// free space) fetches and writes only the chunks that differ.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDisk } from '../../images/block-device.ts';
import { captureDisk, type CaptureResult } from '../../images/capture.ts';
import { MemoryChunkStore } from '../../images/chunk-store.ts';
import { deployImage } from '../../images/deploy.ts';
import { storedBytes, type DiskImage } from '../../images/disk-image.ts';
import { e2fsckClean, extCat, gptDisk, makeTree, MiB, sha, sh, sparseFile, withLoop, type GptDisk } from './disks.ts';

let dir: string;
let src: GptDisk;
const store = new MemoryChunkStore();
let first: CaptureResult;
let second: CaptureResult;
let newFile: Buffer;

async function capture(path: string): Promise<CaptureResult> {
  return withLoop(path, async (dev) => {
    const disk = await openDisk(dev, 'r');
    try {
      return await captureDisk(disk, { sink: store, madeBy: 'capture', probeOs: false });
    } finally {
      await disk.close();
    }
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imaging-inc-'));
  makeTree(join(dir, 'tree'), 100, MiB);
  src = gptDisk(join(dir, 'src.img'), 1024 * MiB, join(dir, 'tree'), 8);
  first = await capture(src.path);
  // 1 % of the used data changes: a new 1 MiB file, written by debugfs (no mount).
  newFile = randomBytes(MiB);
  writeFileSync(join(dir, 'new.bin'), newFile);
  sh('debugfs', ['-w', '-R', `write ${join(dir, 'new.bin')} /data/new.bin`, `${src.path}?offset=${src.rootStart}`]);
  second = await capture(src.path);
});

after(() => rmSync(dir, { recursive: true, force: true }));

const root = (img: DiskImage) => img.partitions.find((p) => p.fs === 'ext4')!;

test('a 1 GiB ext4 with 100 MiB of files stores about 100 MiB, and reads only that', (t) => {
  const used = root(first.image).usedBytes;
  const spans = storedBytes(first.image);
  t.diagnostic(`used ${used} (with the 32 MiB journal), read ${first.bytesRead}, stored ${first.bytesStored} in ${first.chunksStored} chunks`);
  assert.ok(used > 100 * MiB && used < 100 * MiB + 32 * MiB + 12 * MiB, `used ${used}`);
  assert.equal(first.bytesRead, spans, 'nothing but the used spans (and the head) was read');
  // The journal is allocated but all zeros: one chunk, stored once.
  assert.ok(first.bytesStored >= 100 * MiB && first.bytesStored < 112 * MiB, `stored ${first.bytesStored}`);
});

test('a second capture after a 1 % change stores about 1 % new', (t) => {
  const used = root(second.image).usedBytes;
  t.diagnostic(`second capture: ${second.bytesStored} bytes new in ${second.chunksStored} chunks of ${second.chunksTotal} (${((100 * second.bytesStored) / used).toFixed(2)} % of ${used} used)`);
  assert.ok(second.bytesStored >= MiB, 'the new file is stored');
  // The new megabyte, plus the metadata windows it touched (bitmaps, inode table, directory, descriptors).
  assert.ok(second.bytesStored <= 1.5 * MiB, `stored ${second.bytesStored}`);
});

test('deploying the second version onto a disk holding the first fetches and writes only what differs', async (t) => {
  const target = sparseFile(join(dir, 'target.img'), 1024 * MiB);
  const before = new Set(first.image.partitions.flatMap((p) => p.chunks.map((c) => `${p.number}:${c.offset}:${c.digest}`)));
  const differing = second.image.partitions.flatMap((p) => p.chunks.filter((c) => !before.has(`${p.number}:${c.offset}:${c.digest}`)));
  const differingBytes = differing.reduce((n, c) => n + c.length, 0);
  await withLoop(target, async (dev) => {
    const disk = await openDisk(dev, 'r+');
    try {
      const full = await deployImage(disk, first.image, { source: store });
      t.diagnostic(`full deploy: ${full.bytesTransferred} transferred, ${full.bytesWritten} written`);
      // Garbage in free space inside a stored window: masked away, so it costs nothing.
      const p = root(first.image);
      const gap = p.chunks.map((c) => ({ c, free: p.used.find((u, i) => u.start + u.length >= c.offset && p.used[i + 1] !== undefined && p.used[i + 1]!.start < c.offset + c.length && p.used[i + 1]!.start - (u.start + u.length) >= 4096) })).find((x) => x.free !== undefined);
      if (gap !== undefined) {
        const fd = openSync(target, 'r+');
        writeSync(fd, randomBytes(4096), 0, 4096, p.startBytes + gap.free!.start + gap.free!.length);
        closeSync(fd);
      }
      const re = await deployImage(disk, second.image, { source: store });
      t.diagnostic(`re-deploy: ${re.bytesTransferred} transferred, ${re.bytesWritten} written (${differing.length} chunks, ${differingBytes} bytes differ)`);
      assert.equal(re.bytesTransferred, differingBytes);
      assert.equal(re.bytesWritten, differingBytes);
      assert.ok(re.bytesWritten < full.bytesWritten / 15);
    } finally {
      await disk.close();
    }
  });
  assert.match(e2fsckClean(target, src.rootStart), /files/);
  assert.equal(sha(extCat(target, src.rootStart, 'data/new.bin')), sha(newFile));
});
