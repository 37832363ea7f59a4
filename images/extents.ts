// Byte ranges [start, start + length) and the little algebra the imaging code needs: sorted,
// merged lists of used ranges, cut at aligned boundaries. Pure.

export interface Extent {
  readonly start: number;
  readonly length: number;
}

/** Sorts, drops empty ranges, merges overlapping and touching ones. */
export function normalize(extents: readonly Extent[]): Extent[] {
  const sorted = extents.filter((e) => e.length > 0).sort((a, b) => a.start - b.start);
  const out: Extent[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && e.start <= last.start + last.length) {
      const end = Math.max(last.start + last.length, e.start + e.length);
      out[out.length - 1] = { start: last.start, length: end - last.start };
    } else out.push({ start: e.start, length: e.length });
  }
  return out;
}

export function totalLength(extents: readonly Extent[]): number {
  return extents.reduce((n, e) => n + e.length, 0);
}

/** Keeps only what lies inside [0, limit). */
export function clip(extents: readonly Extent[], limit: number): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    if (e.start >= limit) break;
    out.push({ start: e.start, length: Math.min(e.length, limit - e.start) });
  }
  return out;
}

/** Turns a bitmap (bit i, LSB first, = unit first + i) into runs of set bits, in units. */
export function bitmapRuns(bitmap: Uint8Array, bits: number, first: number, into: Extent[]): void {
  let i = 0;
  while (i < bits) {
    const byte = bitmap[i >>> 3]!;
    if ((i & 7) === 0 && i + 8 <= bits && (byte === 0 || byte === 0xff)) {
      if (byte === 0xff) push(into, first + i, 8);
      i += 8;
      continue;
    }
    if (byte & (1 << (i & 7))) push(into, first + i, 1);
    i++;
  }
}

function push(into: Extent[], start: number, length: number): void {
  const last = into[into.length - 1];
  if (last !== undefined && last.start + last.length === start) into[into.length - 1] = { start: last.start, length: last.length + length };
  else into.push({ start, length });
}

/** Scales unit runs to bytes. */
export function scale(runs: readonly Extent[], unitBytes: number, offsetBytes = 0): Extent[] {
  return runs.map((r) => ({ start: offsetBytes + r.start * unitBytes, length: r.length * unitBytes }));
}

/** Where each used range falls in `windowBytes` windows: per window, the span from its first to its last used byte. */
export function windowSpans(used: readonly Extent[], windowBytes: number): Extent[] {
  const out: Extent[] = [];
  for (const e of used) {
    let s = e.start;
    const end = e.start + e.length;
    while (s < end) {
      const wEnd = (Math.floor(s / windowBytes) + 1) * windowBytes;
      const stop = Math.min(end, wEnd);
      const last = out[out.length - 1];
      if (last !== undefined && Math.floor(last.start / windowBytes) === Math.floor(s / windowBytes)) out[out.length - 1] = { start: last.start, length: stop - last.start };
      else out.push({ start: s, length: stop - s });
      s = stop;
    }
  }
  return out;
}

/** Zeroes the bytes of `buf` (which holds [at, at + buf.length)) that no used range covers. */
export function maskUnused(buf: Buffer, at: number, used: readonly Extent[]): void {
  let pos = at;
  const end = at + buf.length;
  let i = firstEndingAfter(used, at);
  while (pos < end) {
    const e = used[i];
    if (e === undefined || e.start >= end) {
      buf.fill(0, pos - at);
      return;
    }
    if (e.start > pos) buf.fill(0, pos - at, e.start - at);
    pos = Math.max(pos, e.start + e.length);
    i++;
  }
}

function firstEndingAfter(used: readonly Extent[], at: number): number {
  let lo = 0;
  let hi = used.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (used[mid]!.start + used[mid]!.length <= at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
