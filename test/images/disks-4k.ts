// Test disks with 4096-byte logical sectors (4Kn), on loop devices made with `losetup
// --sector-size 4096`: the table is written by sfdisk on such a device (so its LBAs count 4 KiB
// sectors), each file system made on a 4K loop device over its partition (mkfs.vfat -S 4096,
// mkntfs -s 4096) or into the file at its byte offset (mkfs.ext4 -b 4096). Loop devices are
// detached in `finally` (and at exit by disks.ts).
import { join } from 'node:path';
import { attach, detach, makeNtfs, sh, sparseFile } from './disks.ts';

export const SECTOR_4K = 4096;

/** A loop device with 4096-byte logical sectors over `file` (or a byte range of it). */
export function attach4k(file: string, offset = 0, sizeBytes = 0): string {
  return attach(file, offset, sizeBytes, SECTOR_4K);
}

export async function withLoop4k<T>(file: string, fn: (dev: string) => Promise<T>, offset = 0, sizeBytes = 0): Promise<T> {
  const dev = attach4k(file, offset, sizeBytes);
  try {
    return await fn(dev);
  } finally {
    detach(dev);
  }
}

export interface Parts4k {
  readonly path: string;
  /** Byte offsets and sizes of the partitions, in table order. */
  readonly parts: readonly { start: number; bytes: number }[];
}

/** Writes the table with sfdisk on a 4K loop device over the file; returns the partitions. */
function partition4k(path: string, script: string): { start: number; bytes: number }[] {
  const dev = attach4k(path);
  try {
    sh('sfdisk', ['-q', '--no-reread', dev], script);
    const t = JSON.parse(sh('sfdisk', ['-J', dev])).partitiontable as { sectorsize?: number; partitions: { start: number; size: number }[] };
    return t.partitions.map((p) => ({ start: p.start * SECTOR_4K, bytes: p.size * SECTOR_4K }));
  } finally {
    detach(dev);
  }
}

/**
 * GPT on 4Kn: an ESP (FAT, 4096-byte sectors, /EFI/BOOT/marker.txt) and an ext4 root (4 KiB
 * blocks) holding `tree`, which ends exactly at the last usable LBA (sectors - 6: the backup
 * header and its 4 entry sectors follow), the tightest fit there is.
 */
export function gptDisk4k(path: string, sizeBytes: number, tree: string, espMiB = 16): Parts4k {
  sparseFile(path, sizeBytes);
  const sectors = sizeBytes / SECTOR_4K;
  const espSectors = (espMiB * 1024 * 1024) / SECTOR_4K;
  const rootStart = 256 + espSectors;
  const rootSectors = sectors - 6 - rootStart + 1;
  const parts = partition4k(path, `label: gpt\nstart=256, size=${espSectors}, type=U, name="EFI system"\nstart=${rootStart}, size=${rootSectors}, type=L, name="root"\n`);
  const [esp, root] = parts as [{ start: number; bytes: number }, { start: number; bytes: number }];
  const dev = attach4k(path, esp.start, esp.bytes);
  try {
    sh('mkfs.vfat', ['-I', '-S', String(SECTOR_4K), '-s', '1', '-n', 'ESP', dev]);
    sh('mmd', ['-i', dev, '::/EFI', '::/EFI/BOOT']);
    sh('mcopy', ['-i', dev, join(tree, 'marker.txt'), '::/EFI/BOOT/marker.txt']);
  } finally {
    detach(dev);
  }
  sh('mkfs.ext4', ['-q', '-F', '-b', '4096', '-L', 'root', '-E', `offset=${root.start}`, '-d', tree, path, `${root.bytes / 1024}k`]);
  return { path, parts };
}

/** MBR on 4Kn: one NTFS partition (4096-byte sectors and MFT records) labelled WIN holding `files`. */
export function mbrNtfsDisk4k(path: string, sizeBytes: number, files: ReadonlyMap<string, Buffer>, scratch: string): Parts4k {
  sparseFile(path, sizeBytes);
  const parts = partition4k(path, 'label: dos\nstart=256, type=7, bootable\n');
  const p = parts[0]!;
  makeNtfs(path, p.start, p.bytes, files, scratch, SECTOR_4K);
  return { path, parts };
}
