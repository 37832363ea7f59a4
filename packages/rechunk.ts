// A file's new chunk list from its previous one and the byte ranges that may have changed: only
// the chunks touching a changed range are cut and hashed again, from the previous boundary
// before it, until a new cut falls on a previous boundary past it. A cut depends only on the
// bytes since the last cut (chunker.ts), so starting at a previous boundary and stopping on one
// gives exactly the list a full chunking of the file would give; nothing else is read.
import type { FileHandle } from 'node:fs/promises';
import { Chunker, MAX_CHUNK } from './chunker.ts';
import { sha256Hex } from './digest.ts';
import type { ChunkRef } from './manifest.ts';
import { isZero } from './placement.ts';

export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export interface Rechunked {
  readonly chunks: ChunkRef[];
  /** Bytes read and hashed again. */
  readonly bytesRead: number;
}

const READ = 256 * 1024;

// A file written into free space of a filesystem image shifts the cuts of the rest of that run
// of zeros (cut every 256 KiB from a new start), so the cutting goes on to the end of the run:
// its chunks are all zeros, hashed once per size.
const zeroDigests = new Map<number, string>();

function digestOf(bytes: Buffer): string {
  if (!isZero(bytes)) return sha256Hex(bytes);
  let d = zeroDigests.get(bytes.length);
  if (d === undefined) {
    d = sha256Hex(bytes);
    if (zeroDigests.size < 64) zeroDigests.set(bytes.length, d);
  }
  return d;
} // one chunk at most: a change costs about the chunks it touches

/** Sorted, merged ranges within [0, size). */
export function mergeRanges(ranges: readonly ByteRange[], size: number): ByteRange[] {
  const sorted = ranges.map((r) => ({ start: Math.max(0, r.start), end: Math.min(size, r.end) })).filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last !== undefined && r.start <= last.end) out[out.length - 1] = { start: last.start, end: Math.max(last.end, r.end) };
    else out.push(r);
  }
  return out;
}

/**
 * The chunks of the file open as `fh` (`size` bytes now), given its previous chunks and where
 * it may differ from the bytes they were cut from. A change of size counts as a change from
 * the previous last chunk on (its end was the end of the file, not a cut).
 */
export async function rechunk(fh: FileHandle, size: number, old: readonly ChunkRef[], changed: readonly ByteRange[], zeros: readonly ByteRange[] = []): Promise<Rechunked> {
  const holes = mergeRanges(zeros, size);
  /** The end of the known run of zeros holding `at`, or `at` if none. */
  const zerosUntil = (at: number): number => {
    for (const h of holes) if (h.start <= at && at < h.end) return h.end;
    return at;
  };
  const starts: number[] = [];
  const indexAt = new Map<number, number>();
  let oldSize = 0;
  for (const c of old) {
    indexAt.set(oldSize, starts.length);
    starts.push(oldSize);
    oldSize += c.size;
  }
  const extra: ByteRange[] = [];
  if (oldSize !== size) extra.push({ start: Math.min(size, old.length > 0 ? starts.at(-1)! : 0), end: Math.max(size, oldSize) });
  const ranges = mergeRanges([...changed, ...extra], Math.max(size, oldSize));
  const out: ChunkRef[] = [];
  let bytesRead = 0;
  let r = 0; // next changed range not yet passed
  const passed = (at: number): void => {
    while (r < ranges.length && ranges[r]!.end <= at) r++;
  };

  /**
   * Cuts from `s` (a boundary in both); returns where it met a previous boundary again, or -1 at
   * the end of the file. In a run of zeros known from the extents (a hole), a chunk that starts
   * at a cut is 256 KiB of zeros (the gear hash of zeros never meets a mask: a cut is forced at
   * the maximum), so those chunks are listed without reading them.
   */
  const cutFrom = async (s: number): Promise<number> => {
    let chunker = new Chunker();
    let pos = s;
    let pieces: Buffer[] = [];
    let zeroDigest: string | null = null;
    /** At a cut: skips whole zero chunks; returns where it met a previous boundary, or -1. */
    const skipZeros = (): number => {
      const end = zerosUntil(pos);
      while (end - pos >= MAX_CHUNK) {
        zeroDigest ??= digestOf(Buffer.alloc(MAX_CHUNK));
        out.push({ digest: zeroDigest, size: MAX_CHUNK });
        pos += MAX_CHUNK;
        passed(pos);
        if (indexAt.has(pos) && (r >= ranges.length || ranges[r]!.start >= pos)) return pos;
      }
      return -1;
    };
    const first = skipZeros();
    if (first >= 0) return first;
    while (pos < size) {
      const buf = Buffer.allocUnsafe(Math.min(READ, size - pos));
      const { bytesRead: n } = await fh.read(buf, 0, buf.length, pos);
      if (n === 0) throw new Error(`file shorter than ${size} bytes while read`);
      const data = buf.subarray(0, n);
      bytesRead += n;
      let prev = 0;
      for (const cut of chunker.push(data)) {
        pieces.push(data.subarray(prev, cut));
        const bytes = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
        out.push({ digest: digestOf(bytes), size: bytes.length });
        pieces = [];
        prev = cut;
        const at = pos + cut;
        passed(at);
        // Back in step: a previous boundary, with no changed byte between here and the next range.
        if (indexAt.has(at) && (r >= ranges.length || ranges[r]!.start >= at)) return at;
        if (zerosUntil(at) - at >= MAX_CHUNK) {
          // A run of zeros: list its chunks unread, then go on reading after them.
          pos = at;
          const met = skipZeros();
          if (met >= 0) return met;
          chunker = new Chunker();
          prev = -1;
          break;
        }
      }
      if (prev < 0) continue;
      pieces.push(data.subarray(prev));
      pos += n;
    }
    chunker.end();
    const rest = Buffer.concat(pieces);
    if (rest.length > 0) out.push({ digest: sha256Hex(rest), size: rest.length });
    return -1;
  };

  if (old.length === 0) {
    if (size > 0) await cutFrom(0);
    return { chunks: out, bytesRead };
  }
  let i = 0;
  while (i < old.length) {
    const s = starts[i]!;
    if (s >= size) break; // the file shrank: the changed range covers these
    passed(s);
    const touched = r < ranges.length && ranges[r]!.start < s + old[i]!.size;
    if (!touched) {
      out.push(old[i]!);
      i++;
      continue;
    }
    const at = await cutFrom(s);
    if (at < 0) break;
    i = indexAt.get(at)!;
  }
  return { chunks: out, bytesRead };
}
