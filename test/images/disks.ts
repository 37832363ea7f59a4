// Test disks on loop devices: sparse files partitioned with sfdisk, file systems made without
// mounting (mkfs.ext4 -E offset -d, mkfs.vfat --offset + mcopy, mkntfs on a loop device over the
// partition + ntfscp). Every loop device attached here is detached in `finally`, and any left
// over (a test that died) at process exit; every command has a timeout.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const attached = new Set<string>();
process.on('exit', () => {
  for (const dev of attached) try { execFileSync('losetup', ['-d', dev], { timeout: 10_000 }); } catch { /* already gone */ }
});

export function sh(cmd: string, args: readonly string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 120_000, input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function attach(file: string, offset = 0, sizeBytes = 0, sectorBytes = 0): string {
  const args = ['-f', '--show'];
  if (sectorBytes > 0) args.push('--sector-size', String(sectorBytes));
  if (offset > 0) args.push('-o', String(offset));
  if (sizeBytes > 0) args.push('--sizelimit', String(sizeBytes));
  const dev = sh('losetup', [...args, file]).trim();
  attached.add(dev);
  return dev;
}

export function detach(dev: string): void {
  for (let i = 0; i < 20; i++) {
    try {
      sh('losetup', ['-d', dev]);
      attached.delete(dev);
      return;
    } catch {
      execFileSync('sleep', ['0.1']); // the kernel may still hold it for a moment after close
    }
  }
  throw new Error(`could not detach ${dev}`);
}

export async function withLoop<T>(file: string, fn: (dev: string) => Promise<T>, offset = 0, sizeBytes = 0): Promise<T> {
  const dev = attach(file, offset, sizeBytes);
  try {
    return await fn(dev);
  } finally {
    detach(dev);
  }
}

export function sparseFile(path: string, sizeBytes: number): string {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, sizeBytes);
  closeSync(fd);
  return path;
}

export const MiB = 1024 * 1024;
export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A tree with /etc/os-release and `files` random files of `fileBytes` each (seeded for repeatability). */
export function makeTree(dir: string, files: number, fileBytes: number): Map<string, string> {
  mkdirSync(join(dir, 'etc'), { recursive: true });
  mkdirSync(join(dir, 'data'), { recursive: true });
  writeFileSync(join(dir, 'etc/os-release'), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n');
  const hashes = new Map<string, string>();
  for (let i = 0; i < files; i++) {
    const b = randomBytes(fileBytes);
    writeFileSync(join(dir, `data/f${i}.bin`), b);
    hashes.set(`data/f${i}.bin`, sha(b));
  }
  writeFileSync(join(dir, 'marker.txt'), 'netboot imaging marker\n');
  hashes.set('marker.txt', sha(readFileSync(join(dir, 'marker.txt'))));
  return hashes;
}

export interface GptDisk {
  readonly path: string;
  readonly espStart: number;
  readonly espBytes: number;
  readonly rootStart: number;
  readonly rootBytes: number;
}

/** GPT: an ESP (FAT, with /EFI/BOOT/marker) and an ext4 root holding `tree`, filling the disk. */
export function gptDisk(path: string, sizeBytes: number, tree: string, espMiB = 16): GptDisk {
  sparseFile(path, sizeBytes);
  const espSectors = espMiB * 2048;
  sh('sfdisk', ['-q', path], `label: gpt\nstart=2048, size=${espSectors}, type=U, name="EFI system"\nstart=${2048 + espSectors}, type=L, name="root"\n`);
  const parts = JSON.parse(sh('sfdisk', ['-J', path])).partitiontable.partitions as { start: number; size: number }[];
  const espStart = parts[0]!.start * 512, espBytes = parts[0]!.size * 512;
  const rootStart = parts[1]!.start * 512, rootBytes = parts[1]!.size * 512;
  sh('mkfs.vfat', ['--offset', String(parts[0]!.start), ...(espMiB < 33 ? ['-F', '16', '-s', espMiB < 16 ? '1' : '4'] : ['-F', '32']), '-n', 'ESP', path, String(espBytes / 1024)]);
  sh('mmd', ['-i', `${path}@@${espStart}`, '::/EFI', '::/EFI/BOOT']);
  sh('mcopy', ['-i', `${path}@@${espStart}`, join(tree, 'marker.txt'), '::/EFI/BOOT/marker.txt']);
  sh('mkfs.ext4', ['-q', '-F', '-L', 'root', '-E', `offset=${rootStart}`, '-d', tree, path, `${rootBytes / 1024}k`]);
  return { path, espStart, espBytes, rootStart, rootBytes };
}

/** MBR: one NTFS partition labelled WIN holding `files` (name -> bytes). */
export function mbrNtfsDisk(path: string, sizeBytes: number, files: ReadonlyMap<string, Buffer>, scratch: string): { path: string; start: number; bytes: number } {
  sparseFile(path, sizeBytes);
  sh('sfdisk', ['-q', path], 'label: dos\nstart=2048, type=7, bootable\n');
  const p = JSON.parse(sh('sfdisk', ['-J', path])).partitiontable.partitions[0] as { start: number; size: number };
  makeNtfs(path, p.start * 512, p.size * 512, files, scratch);
  return { path, start: p.start * 512, bytes: p.size * 512 };
}

/** NTFS labelled WIN over the partition at `start` (bytes) of `path`, holding `files`; 4096: 4Kn sectors. */
export function makeNtfs(path: string, start: number, bytes: number, files: ReadonlyMap<string, Buffer>, scratch: string, sectorBytes: 512 | 4096 = 512): void {
  const dev = attach(path, start, bytes, sectorBytes === 512 ? 0 : sectorBytes);
  try {
    sh('mkntfs', ['-Q', '-q', '-F', '-s', String(sectorBytes), '-L', 'WIN', '-p', String(start / sectorBytes), '-H', '255', '-S', '63', dev]);
    let i = 0;
    for (const [name, content] of files) {
      const src = join(scratch, `ntfs-src-${i++}`);
      writeFileSync(src, content);
      sh('ntfscp', ['-f', dev, src, name]);
    }
  } finally {
    detach(dev);
  }
}

/** A file's content inside an ext file system at `offset` of an image file or device. */
export function extCat(path: string, offset: number, file: string): Buffer {
  return execFileSync('debugfs', ['-R', `cat /${file}`, `${path}?offset=${offset}`], { timeout: 60_000, maxBuffer: 512 * MiB, stdio: ['ignore', 'pipe', 'ignore'] });
}

export function e2fsckClean(path: string, offset: number): string {
  return sh('e2fsck', ['-fn', `${path}?offset=${offset}`]);
}
