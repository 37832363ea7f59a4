// Capture and deploy on loop devices (no QEMU): a GPT disk (FAT ESP + ext4 root) captured from
// its loop device and exported back gives the same table and files (e2fsck -fn clean); a disk too
// small is refused with nothing written; a larger one gets its last partition and ext4 grown; a
// tampered chunk is fetched again, then rejected and never written.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDisk } from '../../images/block-device.ts';
import { captureDisk } from '../../images/capture.ts';
import { MemoryChunkStore, type ChunkSource } from '../../images/chunk-store.ts';
import { DiskTooSmallError, deployImage } from '../../images/deploy.ts';
import { decodeDiskImage, encodeDiskImage, type DiskImage } from '../../images/disk-image.ts';
import { eraseDisk } from '../../images/erase.ts';
import { attach, detach, e2fsckClean, extCat, gptDisk, makeTree, MiB, sha, sh, sparseFile, withLoop, type GptDisk } from './disks.ts';

let dir: string;
let src: GptDisk;
let hashes: Map<string, string>;
let image: DiskImage;
const store = new MemoryChunkStore();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imaging-'));
  hashes = makeTree(join(dir, 'tree'), 12, 512 * 1024 + 123);
  src = gptDisk(join(dir, 'src.img'), 64 * MiB, join(dir, 'tree'));
  image = await withLoop(src.path, async (dev) => {
    const disk = await openDisk(dev, 'r');
    try {
      assert.equal(disk.isBlockDevice, true);
      const r = await captureDisk(disk, { sink: store, madeBy: 'capture' });
      assert.equal(r.bytesStored, store.bytesPut);
      return r.image;
    } finally {
      await disk.close();
    }
  });
});

after(() => rmSync(dir, { recursive: true, force: true }));

function checkFiles(path: string, rootStart: number): void {
  assert.match(e2fsckClean(path, rootStart), /clean|files/);
  for (const [name, h] of hashes) assert.equal(sha(extCat(path, rootStart, name)), h, name);
  const marker = sh('mtype', ['-i', `${path}@@${src.espStart}`, '::/EFI/BOOT/marker.txt']);
  assert.equal(marker, 'netboot imaging marker\n');
}

test('the inventory names the table, the file systems, their labels and the OS', () => {
  const inv = image.inventory;
  assert.equal(inv.disk.table, 'gpt');
  assert.equal(inv.disk.sizeBytes, 64 * MiB);
  assert.deepEqual(inv.disk.partitions.map((p) => [p.number, p.fs, p.label]), [[1, 'fat16', 'ESP'], [2, 'ext4', 'root']]);
  assert.deepEqual(inv.os, { family: 'linux', name: 'Debian GNU/Linux', version: '12', edition: null });
  assert.equal(inv.madeBy, 'capture');
  // The description survives its own codec.
  assert.deepEqual(decodeDiskImage(encodeDiskImage(image)), image);
});

test('capture then export onto a blank disk: same partition table, same files, e2fsck clean; a second deploy writes nothing', async () => {
  const out = sparseFile(join(dir, 'out.img'), 64 * MiB);
  await withLoop(out, async (dev) => {
    const disk = await openDisk(dev, 'r+');
    try {
      const r = await deployImage(disk, image, { source: store });
      assert.equal(r.grown, null);
      assert.ok(r.bytesWritten > 0);
      const again = await deployImage(disk, image, { source: store });
      assert.deepEqual([again.bytesWritten, again.bytesTransferred, again.chunksWritten], [0, 0, 0]);
    } finally {
      await disk.close();
    }
  });
  assert.equal(sh('sfdisk', ['-d', out]).replace(/out\.img/g, 'X'), sh('sfdisk', ['-d', src.path]).replace(/src\.img/g, 'X'));
  checkFiles(out, src.rootStart);
});

test('a disk too small fails before anything is written', async () => {
  const small = join(dir, 'small.img');
  const pattern = Buffer.alloc(48 * MiB, 0xa5);
  writeFileSync(small, pattern);
  await withLoop(small, async (dev) => {
    const disk = await openDisk(dev, 'r+');
    try {
      await assert.rejects(deployImage(disk, image, { source: store }), (err: unknown) => {
        assert.ok(err instanceof DiskTooSmallError);
        assert.match((err as Error).message, /holds 50331648 bytes; the image needs at least \d+: nothing was written/);
        return true;
      });
    } finally {
      await disk.close();
    }
  });
  assert.ok(readFileSync(small).equals(pattern));
});

test('a larger disk gets the last partition and its ext4 grown; files intact, e2fsck clean, sgdisk -v clean', async () => {
  const big = sparseFile(join(dir, 'big.img'), 96 * MiB);
  await withLoop(big, async (dev) => {
    const disk = await openDisk(dev, 'r+');
    const parts: string[] = [];
    try {
      const r = await deployImage(disk, image, {
        source: store,
        rereadTable: async () => {
          const t = JSON.parse(sh('sfdisk', ['-J', dev])).partitiontable.partitions as { start: number; size: number }[];
          parts.push(attach(dev, t[1]!.start * 512, t[1]!.size * 512));
        },
        partitionDevice: () => parts[0] ?? null,
      });
      assert.equal(r.grown?.partition, 2);
      assert.equal(r.grown?.fsGrown, true);
      assert.ok(r.grown!.toBytes > r.grown!.fromBytes + 30 * MiB);
    } finally {
      for (const p of parts) detach(p);
      await disk.close();
    }
  });
  assert.match(sh('sgdisk', ['-v', big]), /No problems found/);
  const blocks = Number(/Block count:\s+(\d+)/.exec(sh('dumpe2fs', ['-h', `${big}?offset=${src.rootStart}`]))![1]);
  const t = JSON.parse(sh('sfdisk', ['-J', big])).partitiontable.partitions as { start: number; size: number }[];
  assert.ok(blocks * 1024 >= t[1]!.size * 512 - 4 * MiB || blocks * 4096 >= t[1]!.size * 512 - 4 * MiB, `ext4 has ${blocks} blocks`);
  checkFiles(big, src.rootStart);
});

test('a tampered chunk is fetched again, then rejected and not written; a chunk bad once is fetched again and used', async () => {
  const victim = image.partitions[1]!.chunks[3]!;
  const bad = Buffer.from(store.chunks.get(victim.digest)!);
  bad[100] = bad[100]! ^ 0xff;
  let calls = 0;
  const tampered: ChunkSource = {
    get: async (d) => {
      if (d !== victim.digest) return store.get(d);
      calls++;
      return Buffer.from(bad);
    },
  };
  const out = sparseFile(join(dir, 'tampered.img'), 64 * MiB);
  await withLoop(out, async (dev) => {
    const disk = await openDisk(dev, 'r+');
    try {
      await assert.rejects(deployImage(disk, image, { source: tampered }), { code: 'CHUNK_CORRUPT', message: new RegExp(`chunk ${victim.digest} \\(partition 2 at byte ${victim.offset}\\) did not match its digest in 3 fetches`) });
      assert.equal(calls, 3);
    } finally {
      await disk.close();
    }
  });
  const written = readFileSync(out).subarray(image.partitions[1]!.startBytes + victim.offset, image.partitions[1]!.startBytes + victim.offset + victim.length);
  assert.ok(written.equals(Buffer.alloc(victim.length)), 'the bad chunk was not written');
  let once = 0;
  const flaky: ChunkSource = { get: async (d) => (d === victim.digest && once++ === 0 ? Buffer.from(bad) : store.get(d)) };
  await withLoop(out, async (dev) => {
    const disk = await openDisk(dev, 'r+');
    try {
      const r = await deployImage(disk, image, { source: flaky });
      assert.equal(r.chunksRefetched, 1);
    } finally {
      await disk.close();
    }
  });
  checkFiles(out, src.rootStart);
});

test('erase: zero and discard cover the whole disk, with progress', async () => {
  const e = join(dir, 'erase.img');
  writeFileSync(e, Buffer.alloc(8 * MiB, 0x5a));
  for (const method of ['zero', 'discard'] as const) {
    if (method === 'discard') writeFileSync(e, Buffer.alloc(8 * MiB, 0x5a));
    const seen: number[] = [];
    await withLoop(e, async (dev) => {
      const disk = await openDisk(dev, 'r+');
      try {
        await eraseDisk(disk, method, (p) => seen.push(p.bytesDone), 2 * MiB);
      } finally {
        await disk.close();
      }
    });
    assert.deepEqual(seen, [0, 2 * MiB, 4 * MiB, 6 * MiB, 8 * MiB], method);
    assert.ok(readFileSync(e).equals(Buffer.alloc(8 * MiB)), `${method}: all zero`);
  }
});
