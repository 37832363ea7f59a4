// SHA-256 of chunks on worker threads, beside the chunking on the calling thread. SHA-256 is
// the larger cost (about 1.3 GB/s per core here) and chunks are independent, so whole chunks are
// spread over several workers. Blocks live in the gear scanner's shared memory: a file is read
// straight into a block, scanned there, and the workers hash the same bytes; nothing is copied
// or transferred between threads.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { MAX_CHUNK, nativeChunking, newScanner } from './chunker.ts';
import { wasmScan } from './gear-scan.ts';
import { DATA_AT, type GearScan, type GearScanner } from './gear-scan.ts';

export const BLOCK_MAX = 4 * 1024 * 1024;

/** A chunk's bytes as [address, length] pairs in the shared memory: one, or two if it spans blocks. */
export type Pieces = number[];

// Plain JS (eval), so the worker needs no TypeScript loader. Each message: a list of chunks,
// answered with their digests in order. With the native addon a list is a Uint32Array of
// [address, length, address, length] per chunk, hashed in one call (sixteen chunks at a time in
// AVX-512 lanes where the CPU has them); without it, Pieces hashed one by one with node:crypto.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const mem = new Uint8Array(workerData.memory);
const native = workerData.addon === null ? null : require(workerData.addon);
parentPort.on('message', (chunks) => {
  const out = [];
  if (native !== null) {
    const n = chunks.length / 4;
    const digests = Buffer.allocUnsafe(32 * n);
    native.sha256Chunks(mem, chunks, digests);
    const hex = digests.toString('hex');
    for (let i = 0; i < n; i++) out.push(hex.slice(64 * i, 64 * i + 64));
  } else {
    for (const p of chunks) {
      const h = createHash('sha256');
      for (let i = 0; i < p.length; i += 2) h.update(mem.subarray(p[i], p[i] + p[i + 1]));
      out.push(h.digest('hex'));
    }
  }
  parentPort.postMessage(out);
});
`;

interface Waiting {
  resolve: (digests: string[]) => void;
  reject: (e: Error) => void;
  bytes: number;
}

class HashWorker {
  readonly waiting: Waiting[] = [];
  queuedBytes = 0;
  private readonly worker: Worker;

  constructor(memory: SharedArrayBuffer, addon: string | null, onFail: (err: Error) => void) {
    this.worker = new Worker(WORKER, { eval: true, workerData: { memory, addon } });
    this.worker.on('message', (digests: string[]) => {
      const w = this.waiting.shift();
      if (w === undefined) return;
      this.queuedBytes -= w.bytes;
      w.resolve(digests);
    });
    this.worker.on('error', onFail);
    this.worker.on('exit', (code) => onFail(new Error(`hash worker exited (${code})`)));
  }

  hash(chunks: Pieces[] | Uint32Array, bytes: number): Promise<string[]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject, bytes });
      this.queuedBytes += bytes;
      this.worker.postMessage(chunks);
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/** [address, length, address, length] per chunk (the second length 0 for a chunk in one piece). */
function flatPieces(chunks: readonly Pieces[]): Uint32Array {
  const out = new Uint32Array(4 * chunks.length);
  chunks.forEach((p, i) => {
    if (p.length !== 2 && p.length !== 4) throw new RangeError(`a chunk in ${p.length / 2} pieces (at most 2)`);
    out.set(p, 4 * i);
  });
  return out;
}

const piecesBytes = (p: Pieces): number => {
  let n = 0;
  for (let i = 1; i < p.length; i += 2) n += p[i]!;
  return n;
};

export class ChunkHasher {
  /** The shared memory the blocks lie in. */
  readonly scanner: GearScanner;
  /** The scan for the Chunker of data read into block(): native, else wasm in place. */
  readonly scan: GearScan;
  private readonly workers: HashWorker[] = [];
  private readonly free: Buffer[] = [];
  private readonly waitingForBlock: Array<(b: Buffer) => void> = [];
  private failed: Error | null = null;

  readonly blockBytes: number;
  /** How chunks are hashed: 'lanes' (native, AVX-512), 'native' (native, one by one), 'node:crypto'. */
  readonly hashing: 'lanes' | 'native' | 'node:crypto';

  /**
   * `blocks` of `blockBytes` in shared memory; `workers` hash threads (default: one per core, at
   * most 4); `native: false` keeps to the WebAssembly scan and node:crypto (comparisons).
   */
  constructor(opts: { blocks?: number; blockBytes?: number; workers?: number; native?: boolean } = {}) {
    const blocks = opts.blocks ?? 8;
    const BLOCK = (this.blockBytes = opts.blockBytes ?? BLOCK_MAX);
    // A chunk then spans at most two blocks, so a chunking stream never holds more than three.
    if (BLOCK < MAX_CHUNK || BLOCK > BLOCK_MAX || blocks < 3) throw new RangeError(`ChunkHasher: ${blocks} blocks of ${BLOCK} bytes (need >= 3 of ${MAX_CHUNK}..${BLOCK_MAX})`);
    const workers = opts.workers ?? Math.max(1, Math.min(4, availableParallelism()));
    this.scanner = newScanner(blocks * BLOCK);
    const native = opts.native === false ? null : nativeChunking();
    this.scan = wasmScan(this.scanner);
    const addon = native?.ok === true ? native.path : null;
    this.hashing = native?.ok !== true ? 'node:crypto' : native.lanes ? 'lanes' : 'native';
    for (let i = 0; i < blocks; i++) this.free.push(Buffer.from(this.scanner.buffer, DATA_AT + i * BLOCK, BLOCK));
    for (let i = 0; i < workers; i++) this.workers.push(new HashWorker(this.scanner.buffer, addon, (err) => this.fail(err)));
  }

  private fail(err: Error): void {
    this.failed ??= err;
    for (const w of this.workers) for (const x of w.waiting.splice(0)) x.reject(err);
  }

  /** A free block of blockBytes in the shared memory (waits for one); give it back with recycle(). */
  block(): Promise<Buffer> {
    const b = this.free.pop();
    if (b !== undefined) return Promise.resolve(b);
    return new Promise((resolve) => this.waitingForBlock.push(resolve));
  }

  recycle(block: Buffer): void {
    const whole = Buffer.from(block.buffer, block.byteOffset, this.blockBytes);
    const next = this.waitingForBlock.shift();
    if (next !== undefined) next(whole);
    else this.free.push(whole);
  }

  /** [address, length] of block[from, to), for hash(). */
  static pieces(block: Buffer, from: number, to: number): Pieces {
    return [block.byteOffset + from, to - from];
  }

  /**
   * SHA-256 of each chunk (hex, in order). Native: the whole list to the least busy worker (the
   * lanes want many chunks per call; the next block's list goes to the other worker). Else
   * spread over the workers in contiguous groups of about equal bytes.
   */
  async hash(chunks: readonly Pieces[]): Promise<string[]> {
    if (this.failed !== null) throw this.failed;
    if (chunks.length === 0) return [];
    const sizes = chunks.map(piecesBytes);
    const total = sizes.reduce((a, b) => a + b, 0);
    const byLoad = [...this.workers].sort((a, b) => a.queuedBytes - b.queuedBytes);
    if (this.hashing !== 'node:crypto') return byLoad[0]!.hash(flatPieces(chunks), total);
    const parts = Math.min(byLoad.length, chunks.length);
    const jobs: Array<Promise<string[]>> = [];
    let from = 0;
    let acc = 0;
    for (let w = 0; w < parts; w++) {
      let to = from;
      const target = (total * (w + 1)) / parts;
      while (to < chunks.length && (w === parts - 1 || acc + sizes[to]! / 2 <= target || to === from)) acc += sizes[to++]!;
      const group = chunks.slice(from, to);
      if (group.length > 0) jobs.push(byLoad[w]!.hash(group, sizes.slice(from, to).reduce((a, b) => a + b, 0)));
      from = to;
    }
    return (await Promise.all(jobs)).flat();
  }

  /** Digests of the chunks of block[0, cuts.at(-1)) that end at `cuts`. */
  hashBlock(block: Buffer, cuts: readonly number[]): Promise<string[]> {
    return this.hash(cuts.map((cut, i) => ChunkHasher.pieces(block, i === 0 ? 0 : cuts[i - 1]!, cut)));
  }

  get workerCount(): number {
    return this.workers.length;
  }

  async close(): Promise<void> {
    for (const w of this.workers) await w.close();
  }
}
