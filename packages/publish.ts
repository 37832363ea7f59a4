// Publishing: a source folder becomes an immutable version. Every file is copied into a staging
// folder while it is chunked and hashed (one read of the source), fsynced, and only then is the
// manifest complete; a large file of an image package is hashed, then only its segments not
// already held are written (segments.ts, segment-write.ts); the caller moves the ref after that, so no version is ever announced
// before all of it is on disk here.
import { join } from 'node:path';
import { ChunkHasher } from './chunk-hasher.ts';
import { chunkFile } from './file-chunks.ts';
import { finishTree, mkdirs, walkTree } from './fs-tree.ts';
import { HASH_NAME } from './digest.ts';
import { encodeManifest, type EncodedManifest, type Manifest, type ManifestFile, type PackageKind } from './manifest.ts';
import { differingRanges, fileExtents, holes } from './extent-diff.ts';
import { open } from 'node:fs/promises';
import type { ChunkRef } from './manifest.ts';
import { rechunk } from './rechunk.ts';
import { writeSegments } from './segment-write.ts';
import type { Snapshots } from './snapshots.ts';
import { DEFAULT_SEGMENT_RULE, isSegmented, segmentsDirOf, type SegmentRule } from './segments.ts';

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
  /** Large image files cut only where their extents changed, or read whole. */
  readonly modes: { extents: number; whole: number };
  readonly bytesHashed: number;
  /** Segments of large image files already held (not written) and written new. */
  readonly segmentsHeld: number;
  readonly segmentsWritten: number;
  readonly segmentBytesWritten: number;
}

export async function buildVersion(
  source: string,
  staging: string,
  meta: { package: string; kind: PackageKind; owner: string; createdAt: string },
  progress: PublishProgress,
  rule: SegmentRule = DEFAULT_SEGMENT_RULE,
  snapshots: Snapshots | null = null,
): Promise<BuiltVersion> {
  const tree = await walkTree(source);
  progress.filesTotal = tree.files.length;
  progress.bytesTotal = tree.files.reduce((n, f) => n + f.size, 0);
  await mkdirs(staging, tree.dirs);
  const started = performance.now();
  const files: ManifestFile[] = [];
  const hasher = new ChunkHasher();
  const seg = { segmentsHeld: 0, segmentsWritten: 0, segmentBytesWritten: 0, bytesHashed: 0, modes: { extents: 0, whole: 0 } };
  try {
    for (const f of tree.files) {
      const src = join(source, f.path);
      if (isSegmented(rule, meta.kind, f)) {
        // Read from a reflinked snapshot where the filesystem can make one (nothing changes
        // under the read); cut and hashed only where it may differ from the snapshot of the
        // previous version, else whole; then only the segments not held are read and written.
        const snap = snapshots === null ? null : await snapshots.take(src, f.path);
        const from = snap ?? src;
        const { size, chunks, mode } = await chunkSnapshot(from, snap !== null, f.path, snapshots, hasher, progress);
        seg.modes[mode]++;
        const w = await writeSegments(from, f.path, chunks, segmentsDirOf(staging), hasher);
        seg.segmentsHeld += w.held;
        seg.segmentsWritten += w.written;
        seg.segmentBytesWritten += w.bytesWritten;
        files.push({ path: f.path, size, mode: f.mode, chunks });
      } else {
        const { size, chunks } = await chunkFile(src, join(staging, f.path), (n) => (progress.bytesDone += n), hasher);
        files.push({ path: f.path, size, mode: f.mode, chunks });
      }
      progress.filesDone++;
    }
  } finally {
    await hasher.close();
  }
  const hashMs = performance.now() - started;
  await finishTree(staging, tree.dirs, files.filter((f) => !isSegmented(rule, meta.kind, f)));
  const manifest: Manifest = { format: 1, hash: HASH_NAME, ...meta, dirs: tree.dirs.map((d) => ({ path: d.path, mode: d.mode })), files };
  const encoded = encodeManifest(manifest);
  return { manifest, encoded, digest: encoded.digest, hashMs, ...seg };

  async function chunkSnapshot(from: string, snapped: boolean, path: string, snaps: Snapshots | null, h: ChunkHasher, p: PublishProgress): Promise<{ size: number; chunks: ChunkRef[]; mode: 'extents' | 'whole' }> {
    const prevFile = snaps?.previous?.manifest.files.find((x) => x.path === path);
    // Only two snapshots are compared: neither is ever written, so blocks they share hold the
    // same bytes (a live file on ext4 keeps its blocks when written in place).
    const old = prevFile === undefined || snaps === null || !snapped ? null : await snaps.previousSnapshot(path);
    if (old !== null) {
      const [a, b] = await Promise.all([fileExtents(old), fileExtents(from)]);
      const fh = a !== null && b !== null ? await open(from, 'r') : null;
      if (fh !== null) {
        try {
          const size = (await fh.stat()).size;
          const r = await rechunk(fh, size, prevFile!.chunks, differingRanges(a!, b!, Math.max(size, prevFile!.size)), holes(b!, size));
          p.bytesDone += size;
          seg.bytesHashed += r.bytesRead;
          return { size, chunks: r.chunks, mode: 'extents' };
        } finally {
          await fh.close();
        }
      }
    }
    const { size, chunks } = await chunkFile(from, null, (n) => (p.bytesDone += n), h);
    seg.bytesHashed += size;
    return { size, chunks, mode: 'whole' };
  }
}
