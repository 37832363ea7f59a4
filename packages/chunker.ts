// Content-defined chunking, FastCDC style (Xia et al., "FastCDC", USENIX ATC 2016): a gear hash
// rolled byte by byte, cut-point skipping below the minimum size, and normalized chunking (a
// harder mask before the average size, an easier one after it) so sizes cluster near 64 KiB.
// A cut depends only on the bytes of the current chunk, so an edit moves at most the chunks it
// touches and the next one or two; the rest of the file chunks exactly as before.
//
// The gear table and masks are part of the package format: every server must cut identically.
// Pure and streaming: push() any buffer sizes, get back where chunks end; no I/O, no hashing.
// The byte loop itself is WebAssembly (gear-scan.ts). A native scan (C, AVX-512) was tried and
// removed: it was about half as fast on the machines measured (bench/RESULTS.md, "Native paths").
import { createHash } from 'node:crypto';
import { GearScanner, wasmScan, type GearScan } from './gear-scan.ts';
import { loadNativeChunking, type NativeChunking } from './native-chunking.ts';

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
// before the average, 18 bits (cutting 4x harder); after it, 14 (4x easier).
const MASK_S = 0xffffc000 | 0;
const MASK_L = 0xfffc0000 | 0;

/** A scanner over a memory of its own with room for `dataBytes` of blocks read straight into it. */
export function newScanner(dataBytes: number): GearScanner {
  return new GearScanner(GEAR, dataBytes);
}

// Loaded once per process on first use: a native library is a process-wide fact, not state.
let native: NativeChunking | null = null;

/** The native chunk hashing if built (else why not), for the hash workers. */
export function nativeChunking(): NativeChunking {
  return (native ??= loadNativeChunking());
}

/** Which scan and chunk hashing this process uses, and why not the native ones: for the logs. */
export function chunkingDescription(): string {
  const n = nativeChunking();
  if (!n.ok) return `WebAssembly scan and node:crypto (${n.reason})`;
  return `WebAssembly scan, native SHA-256 ${n.lanes ? 'in AVX-512 lanes' : 'one chunk at a time (OpenSSL)'}`;
}

// Scratch for chunkers given no scan: data is copied in and scanned inside one
// synchronous push(), so every such chunker can share it (and not each reserve a memory of its own).
let scratchScan: GearScan | null = null;

/** The scan for data anywhere: wasm through its scratch memory. */
export function defaultScan(): GearScan {
  return (scratchScan ??= wasmScan(newScanner(0)));
}

/** Finds chunk boundaries in a stream. Call push() for each piece of data in order, then end(). */
export class Chunker {
  /** Bytes of the current (unfinished) chunk seen so far. */
  private pos = 0;
  private hash = 0;
  private readonly scan: GearScan;

  constructor(scan?: GearScan) {
    this.scan = scan ?? defaultScan();
  }

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
      const small = pos < AVG_CHUNK;
      const end = Math.min(len, i + (small ? AVG_CHUNK : MAX_CHUNK) - pos);
      const r = this.scan(data, i, end, h, small ? MASK_S : MASK_L);
      const start = i;
      let cut = -1;
      if (r < 0) {
        h = (-1 - r) | 0;
        i = end;
      } else {
        i = cut = r;
      }
      pos += i - start;
      if (cut < 0 && pos === MAX_CHUNK) cut = i;
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
