// The gear-hash scan loop of the chunker, as a small WebAssembly function over a shared memory:
// the only scan (a native one in C measured about half as fast and was removed: bench/RESULTS.md).
// Why not JavaScript: V8 compiles the same loop with a bounds check on both loads, Smi re-tagging
// of the hash and the index, and type checks re-done every iteration (15-25 instructions per byte
// by callgrind); this function is about 4 per byte, which is what lets publishing reach the speed
// of SHA-256. The memory is shared (a SharedArrayBuffer), so files are read straight into it and
// hash workers read the same bytes: nothing is copied between threads.
//
// Layout: [0, 1024) the gear table (little-endian i32); [SCRATCH_AT, DATA_AT) scratch for data
// that lives elsewhere (copied in to be scanned); [DATA_AT, ...) blocks owned by the caller.

const PAGE = 65536;
export const SCRATCH_AT = PAGE;
/** Enough for one scan call: at most MAX_CHUNK - MIN_CHUNK bytes are scanned per call. */
export const SCRATCH_BYTES = 256 * 1024;
export const DATA_AT = SCRATCH_AT + SCRATCH_BYTES;

const UNROLL = 8;

// --- a minimal WebAssembly encoder: just what this one function needs ---
const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n !== 0 ? b | 0x80 : b);
  } while (n !== 0);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s)];

const I32 = 0x7f;
const op = { get: 0x20, set: 0x21, tee: 0x22, globalSet: 0x24, load: 0x28, load8u: 0x2d, const: 0x41, eqz: 0x45, geU: 0x4f, add: 0x6a, sub: 0x6b, and: 0x71, shl: 0x74, block: 0x02, loop: 0x03, if: 0x04, end: 0x0b, br: 0x0c, brIf: 0x0d, ret: 0x0f, void: 0x40 };
// Parameters of scan(): 0 = i (from), 1 = to, 2 = h, 3 = mask; local 4 = end of the unrolled part.
const [I, TO, H, MASK, END] = [0, 1, 2, 3, 4];

/** h = (h << 1) + gear[mem[i + k]]; if ((h & mask) == 0) return i + k + 1. */
const step = (k: number): number[] => [
  op.get, H, op.const, 1, op.shl,
  op.get, I, op.load8u, 0, ...uleb(k),
  op.const, 2, op.shl, op.load, 2, 0, // gear[] sits at address 0
  op.add, op.tee, H,
  op.get, MASK, op.and, op.eqz,
  op.if, op.void, op.get, I, op.const, ...sleb(k + 1), op.add, op.ret, op.end,
];

/** while (i < limit) { steps; i += n } */
const loop = (limit: number, steps: number[], n: number): number[] => [
  op.block, op.void, op.loop, op.void,
  op.get, I, op.get, limit, op.geU, op.brIf, 1,
  ...steps,
  op.get, I, op.const, ...sleb(n), op.add, op.set, I, op.br, 0,
  op.end, op.end,
];

function scanModule(maxPages: number): Uint8Array<ArrayBuffer> {
  const body = [
    1, 1, I32, // one extra local
    op.get, TO, op.const, UNROLL - 1, op.sub, op.set, END,
    ...loop(END, Array.from({ length: UNROLL }, (_, k) => step(k)).flat(), UNROLL),
    ...loop(TO, step(0), 1),
    op.get, H, op.globalSet, 0, // no cut: leave the hash for the next call
    op.const, ...sleb(-1), op.end,
  ];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, vec([[0x60, 4, I32, I32, I32, I32, 1, I32]])),
    ...section(2, vec([[...name('m'), ...name('mem'), 0x02, 0x03, ...uleb(1), ...uleb(maxPages)]])), // shared memory
    ...section(3, vec([[0]])),
    ...section(6, vec([[I32, 1, op.const, 0, op.end]])), // mutable global: the hash at the end
    ...section(7, vec([[...name('scan'), 0, 0], [...name('hash'), 3, 0]])),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ]);
}

// Compiled once; it accepts any memory up to 4 GiB (addresses are i32).
const MAX_PAGES = 65536;
const MODULE = new WebAssembly.Module(scanModule(MAX_PAGES));

/** A shared memory holding a gear table, scratch and `dataBytes` of caller blocks, and the scan over it. */
export class GearScanner {
  readonly memory: WebAssembly.Memory;
  /** The memory itself: views made over it are scanned in place. */
  readonly buffer: SharedArrayBuffer;
  private readonly scanFn: (from: number, to: number, h: number, mask: number) => number;
  private readonly hashGlobal: WebAssembly.Global;

  constructor(gear: Int32Array, dataBytes: number) {
    const pages = Math.ceil((DATA_AT + dataBytes) / PAGE);
    // A shared memory never moves, so it is reserved at its maximum: keep that exact.
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.buffer = this.memory.buffer as unknown as SharedArrayBuffer;
    const table = new DataView(this.buffer, 0, 1024);
    for (let i = 0; i < 256; i++) table.setInt32(i * 4, gear[i]!, true);
    const exports = new WebAssembly.Instance(MODULE, { m: { mem: this.memory } }).exports;
    this.scanFn = exports.scan as (from: number, to: number, h: number, mask: number) => number;
    this.hashGlobal = exports.hash as WebAssembly.Global;
  }

  /**
   * Rolls the gear hash over memory[from, to) from `h`; returns the address just past the first
   * byte where (hash & mask) == 0, or -1 (the hash is then in `hash`).
   */
  scan(from: number, to: number, h: number, mask: number): number {
    return this.scanFn(from, to, h, mask);
  }

  get hash(): number {
    return this.hashGlobal.value as number;
  }
}

/**
 * Rolls the gear hash over data[from, to) from `h`: the index just past the first byte where
 * (hash & mask) == 0, or, with no cut, -1 - (hash >>> 0) with the hash at `to` (one number, so
 * no object is made per call).
 */
export type GearScan = (data: Uint8Array, from: number, to: number, h: number, mask: number) => number;

/** The wasm scan as a GearScan: in place for data in the scanner's memory, else copied to scratch. */
export function wasmScan(s: GearScanner): GearScan {
  return (data, from, to, h, mask) => {
    let base = data.byteOffset;
    if (data.buffer !== s.buffer) {
      new Uint8Array(s.buffer, SCRATCH_AT, to - from).set(data.subarray(from, to));
      base = SCRATCH_AT - from;
    }
    const cut = s.scan(base + from, base + to, h, mask);
    return cut < 0 ? -1 - (s.hash >>> 0) : cut - base;
  };
}
