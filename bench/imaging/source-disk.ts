// The imaging benches' source disk: a GPT disk of `gib` GiB with one ext4 about half full of a
// realistic tree (copies of /usr/share/doc, man, locale and /usr/lib/python3.11, as many as fill
// half the disk, unless `copies` says), built once and kept in `cache` when given (reused by later
// runs: it takes minutes). Returns a working copy in `work` (sparse), the partition's place, and
// the one copy of the tree kept (run.ts's 1 % change reads its file list and contents).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MiB = 1024 * 1024;
export const TREE_DIRS = ['/usr/share/doc', '/usr/share/man', '/usr/share/locale', '/usr/lib/python3.11'];

const sh = (cmd: string, args: string[], input?: string): string => execFileSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 64 * MiB, timeout: 1_800_000 });

export interface SourceDisk {
  /** The working copy (an image file). */
  readonly path: string;
  readonly copies: number;
  /** The tree's first copy (`copy-0`'s parent). */
  readonly tree: string;
  readonly partStart: number;
  readonly partBytes: number;
}

export function sourceDisk(o: { gib: number; copies?: number; cache?: string; work: string }): SourceDisk {
  const copyBytes = TREE_DIRS.reduce((n, d) => n + 1024 * Number(sh('du', ['-sk', d]).split('\t')[0]), 0); // blocks used, as in the file system
  const copies = o.copies ?? Math.max(1, Math.floor((o.gib * 1024 * MiB * 0.5) / copyBytes));
  const cacheDir = o.cache === undefined ? o.work : join(o.cache, `src-${o.gib}g-${copies}`);
  const tree = join(cacheDir, 'tree');
  const pristine = join(cacheDir, 'src.img');
  if (!existsSync(join(cacheDir, 'done'))) {
    mkdirSync(cacheDir, { recursive: true });
    for (let i = 0; i < copies; i++) {
      mkdirSync(join(tree, `copy-${i}`), { recursive: true });
      for (const d of TREE_DIRS) sh('cp', ['-a', d, join(tree, `copy-${i}`)]);
    }
    sh('truncate', ['-s', `${o.gib}G`, pristine]);
    sh('sfdisk', ['-q', pristine], 'label: gpt\nstart=2048, type=L\n');
    const part = JSON.parse(sh('sfdisk', ['-J', pristine])).partitiontable.partitions[0] as { start: number; size: number };
    sh('mkfs.ext4', ['-q', '-F', '-E', `offset=${part.start * 512}`, '-d', tree, pristine, `${(part.size * 512) / 1024}k`]);
    // Every copy is the same: one is kept, for the 1 % change's file list and contents.
    for (let i = 1; i < copies; i++) rmSync(join(tree, `copy-${i}`), { recursive: true, force: true });
    writeFileSync(join(cacheDir, 'done'), '');
  }
  const path = join(o.work, 'src.img');
  if (o.cache !== undefined) sh('cp', ['--sparse=always', pristine, path]);
  else renameSync(pristine, path);
  const part = JSON.parse(sh('sfdisk', ['-J', path])).partitiontable.partitions[0] as { start: number; size: number };
  return { path, copies, tree, partStart: part.start * 512, partBytes: part.size * 512 };
}
