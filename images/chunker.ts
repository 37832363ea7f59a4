// Content-defined chunking, FastCDC style (Xia et al., "FastCDC", USENIX ATC 2016): a gear hash
// rolled byte by byte, cut-point skipping below the minimum size, and normalized chunking (a
// harder mask before the average size, an easier one after it) so sizes cluster near 64 KiB.
// A cut depends only on the bytes of the current chunk, so an edit moves at most the chunks it
// touches and the next one or two; the rest of the file chunks exactly as before.
//
// The gear table and masks are part of the package format: every server must cut identically.
// Pure and streaming: push() any buffer sizes, get back where chunks end; no I/O, no hashing.
import { createHash } from 'node:crypto';

export const MIN_CHUNK = 16 * 1024;
export const AVG_CHUNK = 64 * 1024;
export const MAX_CHUNK = 256 * 1024;

/** 256 fixed 32-bit values derived from SHA-256, so the table is reproducible from this file. */
export const GEAR: Int32Array = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) table[i] = createHash('sha256').update(`netboot-gear-v1/${i}`).digest().readInt32BE(0);
  return table;
})();

// The gear hash shifts left each byte, so high bits depend on the most bytes (the top bit on the
// last 32): masks take their bits from the top. 16 bits ~ 64 KiB average; +-2 bits normalize:
// before the average, 18 bits (0xffffc000, cutting 4x harder); after it, 14 (0xfffc0000, 4x easier).
// (The masks are literals inside scanS/scanL below.)

/** Finds chunk boundaries in a stream. Call push() for each piece of data in order, then end(). */
export class Chunker {
  /** Bytes of the current (unfinished) chunk seen so far. */
  private pos = 0;
  private hash = 0;

  /**
   * Feeds the next bytes; returns the offsets within `data` just past each chunk that ends in it
   * (the chunk continues from where the previous push left off).
   */
  push(data: Uint8Array): number[] {
    const cuts: number[] = [];
    const len = data.length;
    let i = 0;
    let pos = this.pos;
    let h = this.hash;
    while (i < len) {
      if (pos < MIN_CHUNK) {
        // Cut-point skipping: no boundary can fall below the minimum, so don't hash it.
        const skip = Math.min(MIN_CHUNK - pos, len - i);
        i += skip;
        pos += skip;
        continue;
      }
      let cut = -1;
      if (pos < AVG_CHUNK) {
        const end = Math.min(len, i + (AVG_CHUNK - pos));
        const start = i;
        cut = scanS(data, i, end, h);
        if (cut < 0) {
          h = scanHash;
          i = end;
        } else {
          i = cut;
        }
        pos += i - start;
      } else {
        const end = Math.min(len, i + (MAX_CHUNK - pos));
        const start = i;
        cut = scanL(data, i, end, h);
        if (cut < 0) {
          h = scanHash;
          i = end;
        } else {
          i = cut;
        }
        pos += i - start;
        if (cut < 0 && pos === MAX_CHUNK) cut = i;
      }
      if (cut >= 0) {
        cuts.push(cut);
        pos = 0;
        h = 0;
      }
    }
    this.pos = pos;
    this.hash = h;
    return cuts;
  }

  /** Bytes of the final, unfinished chunk (0 if the stream ended exactly on a boundary). */
  end(): number {
    const rest = this.pos;
    this.pos = 0;
    this.hash = 0;
    return rest;
  }
}

let scanHash = 0;

// Rolls the gear hash over data[from, to) starting from `h`; returns the offset just past the
// first byte where (hash & mask) == 0, or -1 with the final hash left in `scanHash`. One copy per
// mask with the mask a literal, unrolled by four: this loop is the chunker's whole cost.
function scanS(data: Uint8Array, from: number, to: number, h: number): number {
  const gear = GEAR;
  let i = from;
  for (const to4 = to - 3; i < to4; i += 4) {
    h = ((h << 1) + gear[data[i]!]!) | 0;
    if ((h & 0xffffc000) === 0) return i + 1;
    h = ((h << 1) + gear[data[i + 1]!]!) | 0;
    if ((h & 0xffffc000) === 0) return i + 2;
    h = ((h << 1) + gear[data[i + 2]!]!) | 0;
    if ((h & 0xffffc000) === 0) return i + 3;
    h = ((h << 1) + gear[data[i + 3]!]!) | 0;
    if ((h & 0xffffc000) === 0) return i + 4;
  }
  for (; i < to; i++) {
    h = ((h << 1) + gear[data[i]!]!) | 0;
    if ((h & 0xffffc000) === 0) return i + 1;
  }
  scanHash = h;
  return -1;
}

function scanL(data: Uint8Array, from: number, to: number, h: number): number {
  const gear = GEAR;
  let i = from;
  for (const to4 = to - 3; i < to4; i += 4) {
    h = ((h << 1) + gear[data[i]!]!) | 0;
    if ((h & 0xfffc0000) === 0) return i + 1;
    h = ((h << 1) + gear[data[i + 1]!]!) | 0;
    if ((h & 0xfffc0000) === 0) return i + 2;
    h = ((h << 1) + gear[data[i + 2]!]!) | 0;
    if ((h & 0xfffc0000) === 0) return i + 3;
    h = ((h << 1) + gear[data[i + 3]!]!) | 0;
    if ((h & 0xfffc0000) === 0) return i + 4;
  }
  for (; i < to; i++) {
    h = ((h << 1) + gear[data[i]!]!) | 0;
    if ((h & 0xfffc0000) === 0) return i + 1;
  }
  scanHash = h;
  return -1;
}

/** Chunk sizes of a whole buffer (tests and small files). */
export function chunkSizes(data: Uint8Array): number[] {
  const c = new Chunker();
  const sizes: number[] = [];
  let prev = 0;
  for (const cut of c.push(data)) {
    sizes.push(cut - prev);
    prev = cut;
  }
  const rest = c.end();
  if (rest > 0) sizes.push(rest);
  return sizes;
}
