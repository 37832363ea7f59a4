// Large files of disk image packages are stored as segments, not as one file per version: a
// segment is a run of whole chunks (about 512 KiB: cut after a chunk whose digest's last hex digit
// is a multiple of 8, at most 16 chunks), kept once per package in `<id>/segments/<name>`, named
// by the SHA-256 of its chunk list ("<sha256> <size>\n" per chunk). Two versions that differ by a
// few chunks share every other segment: on ext4, which cannot share blocks between files
// (no reflinks), this is what keeps two versions of an 8 GiB image within a few MiB of one.
// A segment under its final name is complete, fsynced and verified (it is written as
// `<name>.part` and renamed only then), so a new version reuses it without reading it again;
// the scrub and every read for serving still hash what they read.
// Only image packages are stored this way (their files are read through the store: chunk
// serving, images/), and only files above a size: preboot and driver files stay plain files,
// which MTFTP and HTTP serve straight from the version folder.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from './digest.ts';
import type { ChunkRef, Manifest, ManifestFile, PackageKind } from './manifest.ts';

/** Files of image packages larger than this are stored as segments. */
export const SEGMENT_MIN_FILE = 256 * 1024 * 1024;
export const SEGMENT_MAX_CHUNKS = 16; // at most 4 MiB: one hash block

export interface Segment {
  /** SHA-256 of the chunk list: the file name in the package's segments folder. */
  readonly name: string;
  /** Where the segment starts in the file. */
  readonly offset: number;
  readonly size: number;
  /** Index of its first chunk in the file's chunk list. */
  readonly first: number;
  readonly chunks: readonly ChunkRef[];
}

/** How this server stores a package's files: which are segmented. */
export interface SegmentRule {
  readonly minFileBytes: number;
}

export const DEFAULT_SEGMENT_RULE: SegmentRule = { minFileBytes: SEGMENT_MIN_FILE };

export function isSegmented(rule: SegmentRule, kind: PackageKind, f: Pick<ManifestFile, 'size'>): boolean {
  return kind === 'image' && f.size > rule.minFileBytes;
}

const cache = new WeakMap<readonly ChunkRef[], Segment[]>();

/** The segments of a chunk list (pure; cached per list). */
export function segmentsOf(chunks: readonly ChunkRef[]): Segment[] {
  const hit = cache.get(chunks);
  if (hit !== undefined) return hit;
  const out: Segment[] = [];
  let first = 0;
  let offset = 0;
  let size = 0;
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i]!;
    size += c.size;
    const last = parseInt(c.digest[63]!, 16);
    if (last % 8 === 0 || i + 1 - first >= SEGMENT_MAX_CHUNKS || i === chunks.length - 1) {
      const list = chunks.slice(first, i + 1);
      out.push({ name: sha256Hex(list.map((x) => `${x.digest} ${x.size}\n`).join('')), offset, size, first, chunks: list });
      offset += size;
      size = 0;
      first = i + 1;
    }
  }
  cache.set(chunks, out);
  return out;
}

/** The segment holding byte `offset` of the file, by binary search. */
export function segmentAt(segments: readonly Segment[], offset: number): Segment | null {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = segments[mid]!;
    if (offset < s.offset) hi = mid - 1;
    else if (offset >= s.offset + s.size) lo = mid + 1;
    else return s;
  }
  return null;
}

/** Every segment name the manifest's segmented files use. */
export function segmentNames(rule: SegmentRule, m: Manifest): Set<string> {
  const names = new Set<string>();
  for (const f of m.files) if (isSegmented(rule, m.kind, f)) for (const s of segmentsOf(f.chunks)) names.add(s.name);
  return names;
}

/** The segments folder of the package a version folder (or staging folder) belongs to. */
export const segmentsDirOf = (versionOrStagingDir: string): string => join(versionOrStagingDir, '..', '..', 'segments');

/**
 * Reads `size` bytes at `offset` of a file of a version: from the file itself, or from the
 * segment holding them (a read never spans segments: callers read whole chunks). null if short.
 */
export async function readFileRange(dir: string, f: ManifestFile, segmented: boolean, offset: number, size: number): Promise<Buffer | null> {
  let path = join(dir, f.path);
  let at = offset;
  if (segmented) {
    const s = segmentAt(segmentsOf(f.chunks), offset);
    if (s === null || offset + size > s.offset + s.size) return null;
    path = join(segmentsDirOf(dir), s.name);
    at = offset - s.offset;
  }
  return readRange(path, at, size);
}

/** `size` bytes at `at` of a file, or null if it is missing or short. */
export async function readRange(path: string, at: number, size: number): Promise<Buffer | null> {
  try {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.allocUnsafe(size);
      const { bytesRead } = await fh.read(buf, 0, size, at);
      return bytesRead === size ? buf : null;
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
}
