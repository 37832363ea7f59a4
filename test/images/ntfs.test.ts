// NTFS on an MBR disk, on loop devices: captured from its used clusters ($Bitmap), exported to a
// blank disk and read back with ntfs-3g's ntfscat; deployed onto a larger disk, the partition
// and the NTFS grow (ntfsresize) and the files still read back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDisk } from '../../images/block-device.ts';
import { captureDisk } from '../../images/capture.ts';
import { MemoryChunkStore } from '../../images/chunk-store.ts';
import { deployImage } from '../../images/deploy.ts';
import type { DiskImage } from '../../images/disk-image.ts';
import { attach, detach, mbrNtfsDisk, MiB, sha, sh, sparseFile, withLoop } from './disks.ts';

let dir: string;
let image: DiskImage;
const store = new MemoryChunkStore();
const files = new Map<string, Buffer>([['hello.txt', Buffer.from('hello from ntfs\n')], ['big.bin', randomBytes(3 * MiB + 17)]]);
let part: { start: number; bytes: number };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imaging-ntfs-'));
  const d = mbrNtfsDisk(join(dir, 'src.img'), 48 * MiB, files, dir);
  part = d;
  image = await withLoop(d.path, async (dev) => {
    const disk = await openDisk(dev, 'r');
    try {
      return (await captureDisk(disk, { sink: store, madeBy: 'capture', partitionDevice: () => null })).image;
    } finally {
      await disk.close();
    }
  });
});

after(() => rmSync(dir, { recursive: true, force: true }));

function readBack(path: string, start: number, bytes: number): void {
  const dev = attach(path, start, bytes);
  try {
    for (const [name, content] of files) {
      const got = execFileSync('ntfscat', ['-f', dev, name], { maxBuffer: 64 * MiB, timeout: 60_000 });
      assert.equal(sha(got), sha(content), name);
    }
  } finally {
    detach(dev);
  }
}

test('NTFS: the inventory, and only used clusters stored', () => {
  const p = image.partitions[0]!;
  assert.equal(image.table, 'mbr');
  assert.deepEqual([p.fs, p.label, p.type, p.whole], ['ntfs', 'WIN', '07', false]);
  assert.match(p.fsUuid ?? '', /^[0-9A-F]{16}$/);
  assert.ok(p.usedBytes > 3 * MiB && p.usedBytes < 12 * MiB, `used ${p.usedBytes} of ${p.sizeBytes}`);
});

test('NTFS: capture then export onto a blank disk reads back with ntfscat', async () => {
  const out = sparseFile(join(dir, 'out.img'), 48 * MiB);
  await withLoop(out, async (dev) => {
    const disk = await openDisk(dev, 'r+');
    try {
      await deployImage(disk, image, { source: store });
    } finally {
      await disk.close();
    }
  });
  assert.equal(sh('sfdisk', ['-d', out]).replace(/out\.img/g, 'X'), sh('sfdisk', ['-d', join(dir, 'src.img')]).replace(/src\.img/g, 'X'));
  readBack(out, part.start, part.bytes);
});

test('NTFS onto a larger disk: MBR entry and NTFS grown by ntfsresize, files intact', async () => {
  const big = sparseFile(join(dir, 'big.img'), 80 * MiB);
  let grownBytes = 0;
  await withLoop(big, async (dev) => {
    const disk = await openDisk(dev, 'r+');
    const parts: string[] = [];
    try {
      const r = await deployImage(disk, image, {
        source: store,
        rereadTable: async () => {
          const t = JSON.parse(sh('sfdisk', ['-J', dev])).partitiontable.partitions as { start: number; size: number }[];
          parts.push(attach(dev, t[0]!.start * 512, t[0]!.size * 512));
        },
        partitionDevice: () => parts[0] ?? null,
      });
      assert.deepEqual([r.grown?.partition, r.grown?.fs, r.grown?.fsGrown], [1, 'ntfs', true]);
      grownBytes = r.grown!.toBytes;
    } finally {
      for (const p of parts) detach(p);
      await disk.close();
    }
  });
  assert.equal(grownBytes, 79 * MiB);
  const info = await withLoop(big, async (dev) => sh('ntfsinfo', ['-m', '-f', dev]), part.start, grownBytes);
  const vol = Number(/Volume Size in Clusters:\s+(\d+)/.exec(info)![1]) * Number(/Cluster Size:\s+(\d+)/.exec(info)![1]);
  assert.ok(vol > 70 * MiB, `volume ${vol}`);
  readBack(big, part.start, grownBytes);
});

