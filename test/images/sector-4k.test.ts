// Disks with 4096-byte logical sectors (4Kn), on loop devices made with `losetup --sector-size
// 4096`: a GPT disk (FAT ESP + ext4 root ending at the last usable LBA) and an MBR disk with
// NTFS (4096-byte MFT records) are captured, exported onto blank 4K disks (same table, same
// files, e2fsck clean, ntfscat reads back) and onto larger ones (backup GPT at the last 4K LBA,
// last partition and file system grown), and the host's own tools (sfdisk, sgdisk -v, fdisk -l,
// partx, blkid) read the results on the 4K device. A 512-byte image onto a 4K disk, and the
// reverse, is refused before anything is written. Raw 4K image files go through the package
// store (`netboot image import|export`) with their sector size guessed or given. Erase on 4K.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDisk } from '../../images/block-device.ts';
import { captureDisk } from '../../images/capture.ts';
import { MemoryChunkStore } from '../../images/chunk-store.ts';
import { deployImage, SectorSizeError } from '../../images/deploy.ts';
import { minimumDiskBytes, type DiskImage } from '../../images/disk-image.ts';
import { eraseDisk } from '../../images/erase.ts';
import { exportImageFile, importImageFile } from '../../images/image-file.ts';
import { guessSectorBytes } from '../../images/sector-size.ts';
import { fsUsage } from '../../images/used-blocks.ts';
import { PackageStore } from '../../packages/package-store.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { backupGptBytes, decodeGptHeader, encodeGpt } from '../../protocols/disk/gpt.ts';
import { decodePartitionTable, headBytesNeeded } from '../../protocols/disk/partition-table.ts';
import { detach, e2fsckClean, extCat, gptDisk, makeTree, MiB, sha, sh, sparseFile, withLoop } from './disks.ts';
import { attach4k, gptDisk4k, mbrNtfsDisk4k, withLoop4k, type Parts4k } from './disks-4k.ts';

let dir: string;
let src: Parts4k;
let hashes: Map<string, string>;
let image: DiskImage;
const store = new MemoryChunkStore();
const SIZE = 96 * MiB;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imaging-4k-'));
  hashes = makeTree(join(dir, 'tree'), 10, 300 * 1024 + 77);
  src = gptDisk4k(join(dir, 'src.img'), SIZE, join(dir, 'tree'));
  image = await withLoop4k(src.path, (dev) => capture(dev));
});

after(() => rmSync(dir, { recursive: true, force: true }));

async function capture(dev: string, sink = store): Promise<DiskImage> {
  const disk = await openDisk(dev, 'r');
  try {
    assert.equal(disk.sectorBytes, 4096);
    return (await captureDisk(disk, { sink, madeBy: 'capture', partitionDevice: () => null })).image;
  } finally {
    await disk.close();
  }
}

async function deploy(dev: string, img: DiskImage, opts: Partial<Parameters<typeof deployImage>[2]> = {}) {
  const disk = await openDisk(dev, 'r+');
  try {
    return await deployImage(disk, img, { source: store, ...opts });
  } finally {
    await disk.close();
  }
}

/** sfdisk's dump of a 4K disk file, read through a 4K loop device, with the device name taken out. */
function dump4k(path: string): string {
  const dev = attach4k(path);
  try {
    return sh('sfdisk', ['-d', dev]).replaceAll(dev, 'DEV');
  } finally {
    detach(dev);
  }
}

function checkFiles(path: string, img: DiskImage): void {
  const root = img.partitions[1]!.startBytes;
  assert.match(e2fsckClean(path, root), /clean|files/);
  for (const [name, h] of hashes) assert.equal(sha(extCat(path, root, name)), h, name);
  assert.equal(sh('mtype', ['-i', `${path}@@${img.partitions[0]!.startBytes}`, '::/EFI/BOOT/marker.txt']), 'netboot imaging marker\n');
}

/** The host's tools on a 4K loop device over `path`: sgdisk -v (GPT), sfdisk -V, fdisk -l, partx, blkid. */
function hostToolsAgree(path: string, partitions: number): void {
  const dev = attach4k(path);
  try {
    if (partitions === 2) assert.match(sh('sgdisk', ['-v', dev]), /No problems found/);
    sh('sfdisk', ['-V', dev]); // exits non-zero on a problem
    assert.match(sh('fdisk', ['-l', dev]), /Sector size \(logical\/physical\): 4096 bytes/);
    const px = sh('partx', ['-g', '-o', 'NR,START,SECTORS', dev]).trim().split('\n');
    assert.equal(px.length, partitions, px.join('\n'));
    const t = JSON.parse(sh('sfdisk', ['-J', dev])).partitiontable as { partitions: { start: number }[] };
    const types = t.partitions.map((p) => sh('blkid', ['-p', '-o', 'value', '-s', 'TYPE', '-O', String(p.start * 4096), dev]).trim());
    assert.deepEqual(types, partitions === 2 ? ['vfat', 'ext4'] : ['ntfs']);
  } finally {
    detach(dev);
  }
}

test('4Kn GPT made by sfdisk: header at byte 4096, entries in 4 sectors of 4 KiB; encoded back to the same primary and backup bytes', () => {
  const bytes = readFileSync(src.path);
  const need = headBytesNeeded(bytes.subarray(0, 8192), 4096);
  assert.equal(need, 6 * 4096);
  const t = decodePartitionTable(bytes.subarray(0, need), 4096);
  if (t.kind !== 'gpt') throw new Error('not gpt');
  assert.deepEqual([t.header.entriesLba, t.gpt.lastUsableLba, backupGptBytes(t.gpt, 4096)], [2n, BigInt(SIZE / 4096 - 6), 5 * 4096]);
  const enc = encodeGpt(t.gpt, 4096, BigInt(SIZE / 4096));
  assert.deepEqual(enc.primary, bytes.subarray(4096, 6 * 4096));
  assert.equal(enc.backupOffset, SIZE - 5 * 4096);
  assert.deepEqual(enc.backup, bytes.subarray(SIZE - 5 * 4096));
  // Read as 512-byte sectors, the protective MBR leads to no header at byte 512.
  assert.throws(() => decodePartitionTable(bytes.subarray(0, 8192), 512), /no "EFI PART" signature/);
});

test('4Kn GPT: captured with 4096-byte sectors, partitions at 4 KiB LBAs, used blocks only; the image fits its own disk exactly', () => {
  assert.equal(image.sectorBytes, 4096);
  assert.equal(image.table, 'gpt');
  const inv = image.inventory.disk;
  assert.deepEqual([inv.sectorBytes, inv.table, inv.sizeBytes], [4096, 'gpt', SIZE]);
  assert.deepEqual(image.partitions.map((p) => [p.number, p.startBytes, p.sizeBytes]), src.parts.map((p, i) => [i + 1, p.start, p.bytes]));
  assert.deepEqual(image.partitions.map((p) => [p.fs?.replace(/\d+$/, ''), p.label, p.whole]), [['fat', 'ESP', false], ['ext', 'root', false]]);
  assert.equal(image.partitions[1]!.fs, 'ext4');
  assert.ok(image.partitions[1]!.usedBytes < image.partitions[1]!.sizeBytes / 2, 'ext4 used blocks only');
  assert.deepEqual(image.inventory.os, { family: 'linux', name: 'Debian GNU/Linux', version: '12', edition: null });
  // The root ends at the last usable LBA: the backup GPT takes 5 sectors of 4 KiB (not 33).
  assert.equal(image.partitions[1]!.startBytes + image.partitions[1]!.sizeBytes, SIZE - 5 * 4096);
  assert.equal(minimumDiskBytes(image), SIZE);
});

test('4Kn GPT: capture then export onto a blank 4K disk gives the same table and files; host tools agree; a second deploy writes nothing', async () => {
  const out = sparseFile(join(dir, 'out.img'), SIZE);
  await withLoop4k(out, async (dev) => {
    const r = await deploy(dev, image);
    assert.equal(r.grown, null);
    const again = await deploy(dev, image);
    assert.deepEqual([again.bytesWritten, again.bytesTransferred, again.chunksWritten], [0, 0, 0]);
  });
  assert.equal(dump4k(out), dump4k(src.path));
  assert.match(dump4k(out), /sector-size: 4096/);
  // The backup header is the last 4K LBA and points back at LBA 1.
  const tail = readFileSync(out).subarray(SIZE - 4096);
  const h = decodeGptHeader(tail);
  assert.deepEqual([h.currentLba, h.backupLba, h.entriesLba], [BigInt(SIZE / 4096 - 1), 1n, BigInt(SIZE / 4096 - 5)]);
  hostToolsAgree(out, 2);
  checkFiles(out, image);
});

test('4Kn GPT onto a larger 4K disk: backup GPT at its last 4K LBA, root partition and ext4 grown (MiB aligned); host tools agree', async () => {
  const BIG = 160 * MiB;
  const big = sparseFile(join(dir, 'big.img'), BIG);
  const parts: string[] = [];
  await withLoop4k(big, async (dev) => {
    try {
      const r = await deploy(dev, image, {
        rereadTable: async () => {
          const t = JSON.parse(sh('sfdisk', ['-J', dev])).partitiontable.partitions as { start: number; size: number }[];
          parts.push(attach4k(dev, t[1]!.start * 4096, t[1]!.size * 4096));
        },
        partitionDevice: () => parts[0] ?? null,
      });
      assert.equal(r.grown?.partition, 2);
      assert.equal(r.grown?.fsGrown, true);
      assert.equal((image.partitions[1]!.startBytes + r.grown!.toBytes) % MiB, 0, 'the grown end is MiB aligned');
      assert.ok(r.grown!.toBytes > r.grown!.fromBytes + 60 * MiB);
    } finally {
      for (const p of parts) detach(p);
    }
  });
  const h = decodeGptHeader(readFileSync(big).subarray(BIG - 4096));
  assert.equal(h.currentLba, BigInt(BIG / 4096 - 1));
  hostToolsAgree(big, 2);
  const t = JSON.parse(dump4kJson(big)).partitiontable as { lastlba: number; partitions: { size: number }[] };
  assert.equal(t.lastlba, BIG / 4096 - 6);
  const blocks = Number(/Block count:\s+(\d+)/.exec(sh('dumpe2fs', ['-h', `${big}?offset=${image.partitions[1]!.startBytes}`]))![1]);
  assert.equal(blocks * 4096, t.partitions[1]!.size * 4096, 'ext4 fills the grown partition');
  checkFiles(big, image);
});

function dump4kJson(path: string): string {
  const dev = attach4k(path);
  try {
    return sh('sfdisk', ['-J', dev]);
  } finally {
    detach(dev);
  }
}

test('a 512-byte-sector image onto a 4K disk, and a 4K image onto a 512-byte disk: refused with the reason, nothing written', async () => {
  const t512 = gptDisk(join(dir, 'd512.img'), 32 * MiB, join(dir, 'tree'));
  const img512 = await withLoop(t512.path, (dev) => openDisk(dev, 'r').then(async (d) => {
    try {
      return (await captureDisk(d, { sink: store, madeBy: 'capture', probeOs: false })).image;
    } finally {
      await d.close();
    }
  }));
  assert.equal(img512.sectorBytes, 512);
  const pattern = Buffer.alloc(200 * MiB, 0x5a);
  const victim = join(dir, 'victim.img');
  writeFileSync(victim, pattern);
  const refused = (have: number, img: number) => (err: unknown) => {
    assert.ok(err instanceof SectorSizeError);
    assert.equal((err as SectorSizeError).code, 'SECTOR_SIZE');
    assert.match((err as Error).message, new RegExp(`has ${have}-byte logical sectors but the image was made on a disk with ${img}-byte sectors .*: nothing was written$`));
    return true;
  };
  await withLoop4k(victim, async (dev) => assert.rejects(deploy(dev, img512), refused(4096, 512)));
  await withLoop(victim, async (dev) => assert.rejects(deploy(dev, image), refused(512, 4096)));
  assert.ok(readFileSync(victim).equals(pattern), 'not a byte written');
});

test('NTFS on a 4Kn MBR disk: used clusters from 4096-byte MFT records; exported, then grown on a larger 4K disk; ntfscat reads the files', async () => {
  const files = new Map<string, Buffer>([['hello.txt', Buffer.from('hello from 4Kn ntfs\n')], ['big.bin', randomBytes(3 * MiB + 5)]]);
  const n = mbrNtfsDisk4k(join(dir, 'ntfs.img'), 48 * MiB, files, dir);
  const img = await withLoop4k(n.path, (dev) => capture(dev));
  const p = img.partitions[0]!;
  assert.deepEqual([img.table, img.sectorBytes, p.fs, p.label, p.whole, p.startBytes], ['mbr', 4096, 'ntfs', 'WIN', false, MiB]);
  assert.ok(p.usedBytes > 3 * MiB && p.usedBytes < 12 * MiB, `used ${p.usedBytes} of ${p.sizeBytes}`);
  const readBack = (path: string, start: number, bytes: number): void => {
    const dev = attach4k(path, start, bytes);
    try {
      for (const [name, content] of files) assert.equal(sha(execFileSync('ntfscat', ['-f', dev, name], { maxBuffer: 64 * MiB, timeout: 60_000 })), sha(content), name);
    } finally {
      detach(dev);
    }
  };
  const out = sparseFile(join(dir, 'ntfs-out.img'), 48 * MiB);
  await withLoop4k(out, (dev) => deploy(dev, img));
  assert.equal(dump4k(out), dump4k(n.path));
  hostToolsAgree(out, 1);
  readBack(out, p.startBytes, p.sizeBytes);

  const big = sparseFile(join(dir, 'ntfs-big.img'), 80 * MiB);
  const parts: string[] = [];
  let grown = 0;
  await withLoop4k(big, async (dev) => {
    try {
      const r = await deploy(dev, img, {
        rereadTable: async () => {
          const t = JSON.parse(sh('sfdisk', ['-J', dev])).partitiontable.partitions as { start: number; size: number }[];
          parts.push(attach4k(dev, t[0]!.start * 4096, t[0]!.size * 4096));
        },
        partitionDevice: () => parts[0] ?? null,
      });
      assert.equal(r.grown?.fsGrown, true, r.grown?.note);
      grown = r.grown!.toBytes;
    } finally {
      for (const q of parts) detach(q);
    }
  });
  assert.equal(grown, 80 * MiB - MiB, 'the MBR entry reaches the last whole MiB');
  hostToolsAgree(big, 1);
  readBack(big, p.startBytes, grown);
});

test('NTFS with 4096-byte sectors: MFT records are fixed up every 512 bytes (a 32-character label crosses byte 510 of $Volume)', async () => {
  const vol = sparseFile(join(dir, 'label.ntfs'), 16 * MiB);
  const label = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';
  sh('mkntfs', ['-Q', '-q', '-F', '-s', '4096', '-L', label, vol]);
  const bytes = readFileSync(vol);
  const u = await fsUsage(async (o, l) => Buffer.from(bytes.subarray(o, o + l)), bytes.length);
  assert.deepEqual([u.fs, u.label, u.whole, u.note], ['ntfs', label, false, null]);
});

test('raw 4K image files through the package store: sector size guessed (GPT header at 4096, NTFS at LBA x 4096) or given; export writes a 4K disk', async () => {
  const pkgStore = new PackageStore(join(dir, 'data'), 'site-a', createMemoryLogger());
  try {
    const imp = await importImageFile(pkgStore, src.path, 'gpt-4k');
    assert.equal(imp.image.sectorBytes, 4096);
    assert.equal(imp.sectorWhy, '4096-byte sectors (GPT header at byte 4096)');
    const out = join(dir, 'exported.img');
    const exp = await exportImageFile(pkgStore, 'gpt-4k', undefined, out);
    assert.ok(exp.bytesWritten > 0);
    assert.equal(dump4k(out), dump4k(src.path));
    checkFiles(out, imp.image);
    // Told 512 for a 4Kn file: the table does not decode, and nothing is published.
    await assert.rejects(importImageFile(pkgStore, src.path, 'wrong-size', undefined, 512), /gpt|EFI PART/);
    assert.equal(pkgStore.currentDigest('wrong-size') ?? null, null);
    const given = await importImageFile(pkgStore, src.path, 'gpt-4k', undefined, 4096);
    assert.equal(given.sectorWhy, '4096-byte sectors (given)');
    assert.equal(given.bytesStored, 0, 'the same disk again stores nothing new');
    const ntfs = await importImageFile(pkgStore, join(dir, 'ntfs.img'), 'ntfs-4k');
    assert.equal(ntfs.sectorWhy, '4096-byte sectors (MBR: a file system begins at LBA 256 x 4096)');
    assert.equal(ntfs.image.partitions[0]!.whole, false);
  } finally {
    pkgStore.close();
  }
  const read = (path: string) => async (o: number, l: number) => {
    const fd = openSync(path, 'r');
    try {
      const b = Buffer.alloc(l);
      readSync(fd, b, 0, l, o);
      return b;
    } finally {
      closeSync(fd);
    }
  };
  assert.deepEqual(await guessSectorBytes(read(join(dir, 'd512.img')), 32 * MiB), { sectorBytes: 512, why: 'GPT header at byte 512' });
  const m512 = join(dir, 'm512.img');
  sparseFile(m512, 8 * MiB);
  sh('sfdisk', ['-q', m512], 'label: dos\nstart=2048, type=c\n');
  sh('mkfs.vfat', ['--offset', '2048', m512, String(6 * 1024)]);
  assert.deepEqual(await guessSectorBytes(read(m512), 8 * MiB), { sectorBytes: 512, why: 'MBR: a file system begins at LBA 2048 x 512' });
});

test('erase on a 4K disk: zero and discard cover it all', async () => {
  const e = join(dir, 'erase.img');
  for (const method of ['zero', 'discard'] as const) {
    writeFileSync(e, Buffer.alloc(8 * MiB, 0x5a));
    const seen: number[] = [];
    await withLoop4k(e, async (dev) => {
      const disk = await openDisk(dev, 'r+');
      try {
        assert.equal(disk.sectorBytes, 4096);
        await eraseDisk(disk, method, (p) => seen.push(p.bytesDone), 2 * MiB);
      } finally {
        await disk.close();
      }
    });
    assert.deepEqual(seen, [0, 2 * MiB, 4 * MiB, 6 * MiB, 8 * MiB], method);
    assert.ok(readFileSync(e).equals(Buffer.alloc(8 * MiB)), `${method}: all zero`);
  }
});
