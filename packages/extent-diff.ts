// Which byte ranges of a file may differ from another, known without reading them: where both
// map a range to the very same physical blocks (FIEMAP, through `filefrag` from e2fsprogs), the
// bytes are the same. That holds on filesystems that never overwrite a shared block in place
// (reflinks: XFS with reflink=1, btrfs): a snapshot taken with FICLONE keeps the old blocks, and
// every later write to the file goes to new ones. Holes in both read as zeros in both. Anything
// else (a hole in one only, other blocks, extents without a fixed place: delayed allocation,
// unwritten, inline, encoded) counts as changed.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ByteRange } from './rechunk.ts';

export interface Extent {
  readonly logical: number;
  readonly physical: number;
  readonly length: number;
  /** Its physical place is fixed and plain (no unknown, delayed, unwritten, inline or encoded flag). */
  readonly fixed: boolean;
}

const run = promisify(execFile);
const UNFIXED = /unknown_loc|delalloc|unwritten|inline|encoded|not_aligned/;

/** The file's extents in bytes (synced first), or null where FIEMAP cannot be asked. */
export async function fileExtents(path: string): Promise<Extent[] | null> {
  let out: string;
  try {
    out = (await run('filefrag', ['-s', '-v', path], { maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch {
    return null;
  }
  return parseFilefrag(out);
}

/** Parses `filefrag -v` output (units: the "blocks of N bytes" it states). */
export function parseFilefrag(out: string): Extent[] | null {
  const unit = /\(\d+ blocks? of (\d+) bytes\)/.exec(out);
  if (unit === null) return null;
  const bs = Number(unit[1]);
  const extents: Extent[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+(\d+)\.\.\s*(\d+):\s+(\d+):\s*(?:\d+:)?\s*(.*)$/.exec(line);
    if (m === null) continue;
    const flags = m[6] ?? '';
    extents.push({ logical: Number(m[1]) * bs, physical: Number(m[3]) * bs, length: Number(m[5]) * bs, fixed: !UNFIXED.test(flags) });
  }
  if (/FIBMAP|not supported/i.test(out)) return null;
  return extents;
}

function find(extents: readonly Extent[], at: number): Extent | null {
  let lo = 0;
  let hi = extents.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const e = extents[mid]!;
    if (at < e.logical) hi = mid - 1;
    else if (at >= e.logical + e.length) lo = mid + 1;
    else return e;
  }
  return null;
}

/** The ranges of [0, size) where `a` and `b` may hold different bytes. */
export function differingRanges(a: readonly Extent[], b: readonly Extent[], size: number): ByteRange[] {
  const sa = [...a].sort((x, y) => x.logical - y.logical);
  const sb = [...b].sort((x, y) => x.logical - y.logical);
  const points = new Set<number>([0, size]);
  for (const e of [...sa, ...sb]) {
    if (e.logical < size) points.add(e.logical);
    if (e.logical + e.length < size) points.add(e.logical + e.length);
  }
  const cuts = [...points].sort((x, y) => x - y);
  const out: ByteRange[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const p = cuts[i]!;
    const q = cuts[i + 1]!;
    const ea = find(sa, p);
    const eb = find(sb, p);
    const same = (ea === null && eb === null) || (ea !== null && eb !== null && ea.fixed && eb.fixed && ea.physical + (p - ea.logical) === eb.physical + (p - eb.logical));
    if (same) continue;
    const last = out.at(-1);
    if (last !== undefined && last.end === p) out[out.length - 1] = { start: last.start, end: q };
    else out.push({ start: p, end: q });
  }
  return out;
}

/** The holes of a file (ranges no extent maps): they read as zeros. */
export function holes(extents: readonly Extent[], size: number): ByteRange[] {
  const sorted = [...extents].sort((x, y) => x.logical - y.logical);
  const out: ByteRange[] = [];
  let at = 0;
  for (const e of sorted) {
    if (e.logical > at) out.push({ start: at, end: Math.min(e.logical, size) });
    at = Math.max(at, e.logical + e.length);
    if (at >= size) break;
  }
  if (at < size) out.push({ start: at, end: size });
  return out.filter((r) => r.end > r.start);
}
