// Publishing: a source folder becomes an immutable version. Every file is copied into a staging
// folder while it is chunked and hashed (one read of the source), fsynced, and only then is the
// manifest complete; the caller moves the ref after that, so no version is ever announced
// before all of it is on disk here.
import { join } from 'node:path';
import { ChunkHasher } from './chunk-hasher.ts';
import { chunkFile } from './file-chunks.ts';
import { finishTree, mkdirs, walkTree } from './fs-tree.ts';
import { HASH_NAME } from './digest.ts';
import { encodeManifest, type EncodedManifest, type Manifest, type ManifestFile, type PackageKind } from './manifest.ts';

export interface PublishProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface BuiltVersion {
  readonly manifest: Manifest;
  readonly encoded: EncodedManifest;
  readonly digest: string;
  /** Time spent reading, chunking, hashing and copying (without the final fsync of folders). */
  readonly hashMs: number;
}

export async function buildVersion(
  source: string,
  staging: string,
  meta: { package: string; kind: PackageKind; owner: string; createdAt: string },
  progress: PublishProgress,
): Promise<BuiltVersion> {
  const tree = await walkTree(source);
  progress.filesTotal = tree.files.length;
  progress.bytesTotal = tree.files.reduce((n, f) => n + f.size, 0);
  await mkdirs(staging, tree.dirs);
  const started = performance.now();
  const files: ManifestFile[] = [];
  const hasher = new ChunkHasher();
  try {
    for (const f of tree.files) {
      const { size, chunks } = await chunkFile(join(source, f.path), join(staging, f.path), (n) => (progress.bytesDone += n), hasher);
      files.push({ path: f.path, size, mode: f.mode, chunks });
      progress.filesDone++;
    }
  } finally {
    await hasher.close();
  }
  const hashMs = performance.now() - started;
  await finishTree(staging, tree.dirs, files);
  const manifest: Manifest = { format: 1, hash: HASH_NAME, ...meta, dirs: tree.dirs.map((d) => ({ path: d.path, mode: d.mode })), files };
  const encoded = encodeManifest(manifest);
  return { manifest, encoded, digest: encoded.digest, hashMs };
}
