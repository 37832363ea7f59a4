// Small filesystem helpers for materialised versions: walking a source tree, fsyncing a tree,
// applying modes, switching the `current` link atomically.
import { chmod, lstat, mkdir, open, readdir, rename, rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { NetbootError } from '../platform/runtime/errors.ts';

export interface TreeEntry {
  readonly path: string;
  readonly mode: number;
  readonly size: number;
}

export interface Tree {
  readonly dirs: TreeEntry[];
  readonly files: TreeEntry[];
}

/** Lists a directory tree (relative '/' paths, parents first). Only files and folders are allowed. */
export async function walkTree(root: string): Promise<Tree> {
  const st = await lstat(root);
  if (!st.isDirectory()) throw new NetbootError('PACKAGE_SOURCE', `${root}: not a directory`);
  const dirs: TreeEntry[] = [];
  const files: TreeEntry[] = [];
  const refused: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    const names = (await readdir(rel === '' ? root : join(root, rel))).sort();
    for (const name of names) {
      const p = rel === '' ? name : `${rel}/${name}`;
      const s = await lstat(join(root, p));
      if (s.isDirectory()) {
        dirs.push({ path: p, mode: s.mode & 0o777, size: 0 });
        await visit(p);
      } else if (s.isFile()) {
        files.push({ path: p, mode: s.mode & 0o777, size: s.size });
      } else {
        refused.push(p);
      }
    }
  };
  await visit('');
  if (refused.length > 0) {
    throw new NetbootError('PACKAGE_SOURCE', `${root}: packages hold regular files and folders only; not allowed: ${refused.slice(0, 10).join(', ')}${refused.length > 10 ? ` and ${refused.length - 10} more` : ''}`);
  }
  return { dirs, files };
}

export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Applies final modes (folders last, deepest first, so a read-only folder is never written into) and fsyncs folders. */
export async function finishTree(root: string, dirs: readonly { path: string; mode: number }[], files: readonly { path: string; mode: number }[]): Promise<void> {
  for (const f of files) await chmod(join(root, f.path), f.mode);
  const deepestFirst = [...dirs].sort((a, b) => b.path.split('/').length - a.path.split('/').length);
  for (const d of deepestFirst) {
    await fsyncPath(join(root, d.path));
    await chmod(join(root, d.path), d.mode | 0o700); // we must be able to clean it up later
  }
  await fsyncPath(root);
}

export async function mkdirs(root: string, dirs: readonly { path: string }[]): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const d of dirs) await mkdir(join(root, d.path), { recursive: true, mode: 0o700 });
}

/** Points `link` at `target` atomically: a reader sees the old target or the new, never neither. */
export async function switchLink(link: string, target: string, dir: string): Promise<void> {
  const tmp = `${link}.${process.pid}.${Date.now()}.tmp`;
  await rm(tmp, { force: true });
  await symlink(target, tmp);
  await rename(tmp, link);
  await fsyncPath(dir);
}

export async function removeLink(link: string, dir: string): Promise<void> {
  try {
    await unlink(link);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return;
  }
  await fsyncPath(dir);
}

/** Removes a tree even where modes forbid writing (a version's folders may be read-only). */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch {
    await makeWritable(path);
    await rm(path, { recursive: true, force: true });
  }
}

async function makeWritable(path: string): Promise<void> {
  let s;
  try {
    s = await lstat(path);
  } catch {
    return;
  }
  if (!s.isDirectory()) return;
  await chmod(path, 0o700);
  for (const name of await readdir(path)) await makeWritable(join(path, name));
}
