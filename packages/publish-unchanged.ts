// Publishing the same content again makes no new version: the source is compared with the
// package's current version first, by content (dirs and their modes; files, their modes, sizes
// and chunks), never by who published it or when (`owner`, `createdAt`). The comparison reads the
// source and writes nothing: the tree's shape first (a different path, size or mode is a change
// known without reading a byte), then each file's chunks, stopping at the first difference. Only
// content of the very same shape is read twice when it did change (once here, once to copy it).
import { join } from 'node:path';
import { ChunkHasher } from './chunk-hasher.ts';
import { chunkFile } from './file-chunks.ts';
import { walkTree, type Tree } from './fs-tree.ts';
import type { Manifest, ManifestFile } from './manifest.ts';
import type { PublishProgress } from './publish.ts';

/** The same content: dirs with modes, files with modes, sizes and chunks. */
export function sameContent(a: Pick<Manifest, 'dirs' | 'files'>, b: Pick<Manifest, 'dirs' | 'files'>): boolean {
  if (a.dirs.length !== b.dirs.length || a.files.length !== b.files.length) return false;
  const dirs = new Map(b.dirs.map((d) => [d.path, d.mode]));
  if (!a.dirs.every((d) => dirs.get(d.path) === d.mode)) return false;
  const files = new Map(b.files.map((f) => [f.path, f]));
  return a.files.every((f) => {
    const g = files.get(f.path);
    return g !== undefined && g.mode === f.mode && g.size === f.size && sameChunks(f.chunks, g.chunks);
  });
}

function sameChunks(a: ManifestFile['chunks'], b: ManifestFile['chunks']): boolean {
  return a.length === b.length && a.every((c, i) => c.digest === b[i]!.digest && c.size === b[i]!.size);
}

/** The tree has the version's dirs and files, with the same modes and sizes. */
function sameShape(tree: Tree, current: Manifest): boolean {
  if (tree.dirs.length !== current.dirs.length || tree.files.length !== current.files.length) return false;
  const dirs = new Map(current.dirs.map((d) => [d.path, d.mode]));
  if (!tree.dirs.every((d) => dirs.get(d.path) === d.mode)) return false;
  const files = new Map(current.files.map((f) => [f.path, f]));
  return tree.files.every((f) => files.get(f.path)?.size === f.size && files.get(f.path)?.mode === f.mode);
}

/**
 * Whether `source` holds exactly the content of `current` (reads, never writes). Progress counts
 * the bytes read; the caller resets it before a publish that follows a `false`.
 */
export async function matchesVersion(source: string, current: Manifest, progress: PublishProgress): Promise<boolean> {
  const tree = await walkTree(source);
  if (!sameShape(tree, current)) return false;
  progress.filesTotal = tree.files.length;
  progress.bytesTotal = tree.files.reduce((n, f) => n + f.size, 0);
  const wanted = new Map(current.files.map((f) => [f.path, f]));
  const hasher = new ChunkHasher();
  try {
    for (const f of tree.files) {
      const { size, chunks } = await chunkFile(join(source, f.path), null, (n) => (progress.bytesDone += n), hasher);
      const w = wanted.get(f.path)!;
      if (size !== w.size || !sameChunks(chunks, w.chunks)) return false;
      progress.filesDone++;
    }
  } finally {
    await hasher.close();
  }
  return true;
}
