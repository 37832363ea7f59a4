// Reflinked snapshots of the large files of a package's source, as they were read for its
// current version (`<id>/origin/<digest>/<path>`): where the filesystem shares blocks between
// files (FICLONE: XFS with reflink=1, btrfs), a snapshot costs no data blocks, nothing can change
// under a read of it, and the next publish compares the source's new snapshot with it by their
// extents (extent-diff.ts) to cut and hash again only what changed. Where it cannot (ext4, or
// the source on another filesystem than the data folder), there are no snapshots and large files
// are read whole; the publish log says which (`modes`).
import { constants } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { removeTree } from './fs-tree.ts';
import type { Manifest } from './manifest.ts';

export const originRoot = (root: string, pkg: string): string => join(root, pkg, 'origin');

export class Snapshots {
  /** Whether the last take() could clone (for the log). */
  cloned = 0;
  failed = 0;

  constructor(
    private readonly root: string,
    private readonly pkg: string,
    /** Where this publish's snapshots go (in its staging folder's sibling). */
    readonly dir: string,
    /** The current version, if its snapshots were kept. */
    readonly previous: { digest: string; manifest: Manifest } | null,
  ) {}

  /** A reflinked snapshot of `src` (null where the filesystem cannot make one). */
  async take(src: string, path: string): Promise<string | null> {
    const dest = join(this.dir, path);
    await mkdir(dirname(dest), { recursive: true });
    try {
      await copyFile(src, dest, constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL);
      this.cloned++;
      return dest;
    } catch {
      this.failed++;
      return null;
    }
  }

  async previousSnapshot(path: string): Promise<string | null> {
    if (this.previous === null) return null;
    const p = join(originRoot(this.root, this.pkg), this.previous.digest, path);
    return (await stat(p).catch(() => null))?.isFile() ? p : null;
  }

  /** After the version `digest` is committed: its snapshots become the package's, older ones go. */
  async keep(digest: string): Promise<void> {
    const root = originRoot(this.root, this.pkg);
    if (this.cloned === 0) return this.discard();
    await mkdir(root, { recursive: true });
    const dest = join(root, digest);
    await removeTree(dest);
    await rename(this.dir, dest);
    for (const name of await readdir(root)) if (name !== digest) await removeTree(join(root, name));
  }

  async discard(): Promise<void> {
    await removeTree(this.dir);
  }
}

/** Whether files in `dir` can share blocks (FICLONE): probed once at start, for the log. */
export async function probeReflinks(dir: string): Promise<boolean> {
  await mkdir(dir, { recursive: true });
  const a = join(dir, `.reflink-probe-${process.pid}`);
  const b = `${a}.clone`;
  try {
    await writeFile(a, Buffer.alloc(4096, 1));
    await copyFile(a, b, constants.COPYFILE_FICLONE_FORCE);
    return true;
  } catch {
    return false;
  } finally {
    await rm(a, { force: true });
    await rm(b, { force: true });
  }
}
