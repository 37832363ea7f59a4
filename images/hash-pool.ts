// SHA-256 of chunks, spread over worker threads (node:worker_threads) so that comparing a disk in
// place and capturing it hash on every core, not one. Pure Node: the worker's code is a string run
// with `eval: true`, so it works the same from the sources under tsx and from a one-file esbuild
// bundle (no second file to find at run time, no native addon). Bytes reach the workers without a
// copy when they sit in a SharedArrayBuffer (group-reader.ts reads the disk into such buffers);
// other buffers are copied once into one. With one core, or when workers cannot start, the same
// hashing runs inline.
// An all-zero span is not hashed: its digest is SHA-256 of that many zero bytes, computed once per
// length (the preimage is known, so the digest is exact, not a guess). A blank or discarded target
// and the zero chunks of an image cost a memcmp instead of a hash.
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import { NetbootError } from '../platform/runtime/errors.ts';

export interface Span {
  /** Byte offset within the buffer hashed. */
  readonly start: number;
  readonly length: number;
}

// The worker and the inline path below do the same thing; test/images/hash-pool.test.ts checks
// they agree. Kept plain JavaScript: it is run as written, not compiled.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let zero = Buffer.alloc(65536);
const zeroDigests = new Map();
function digest(b) {
  if (zero.length < b.length) zero = Buffer.alloc(b.length);
  if (b.equals(zero.subarray(0, b.length))) {
    let d = zeroDigests.get(b.length);
    if (d === undefined) { d = createHash('sha256').update(b).digest('hex'); zeroDigests.set(b.length, d); }
    return d;
  }
  return createHash('sha256').update(b).digest('hex');
}
parentPort.on('message', (m) => {
  try {
    const buf = Buffer.from(m.sab, m.offset, m.length);
    const out = new Array(m.spans.length / 2);
    for (let i = 0; i < m.spans.length; i += 2) out[i / 2] = digest(buf.subarray(m.spans[i], m.spans[i] + m.spans[i + 1]));
    parentPort.postMessage({ id: m.id, digests: out });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String((err && err.stack) || err) });
  }
});
`;

let zero = Buffer.alloc(65536);
const zeroDigests = new Map<number, string>();

/** SHA-256 (hex) of `b`, with all-zero input answered from the per-length memo. */
export function digestHex(b: Uint8Array): string {
  if (zero.length < b.length) zero = Buffer.alloc(b.length);
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.equals(zero.subarray(0, buf.length))) return zeroDigest(buf.length);
  return createHash('sha256').update(buf).digest('hex');
}

/** SHA-256 (hex) of `length` zero bytes (memoized). */
export function zeroDigest(length: number): string {
  let d = zeroDigests.get(length);
  if (d === undefined) {
    d = createHash('sha256').update(Buffer.alloc(length)).digest('hex');
    zeroDigests.set(length, d);
  }
  return d;
}

/** The worker threads a machine gets by default: one per core, at most 8; none with one core. */
export function defaultHashThreads(): number {
  const n = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return n <= 1 ? 0 : Math.min(n, 8);
}

/** Below this many bytes a call is hashed inline: a round trip to a worker costs more. */
const INLINE_BYTES = 192 * 1024;

interface Job {
  resolve(d: string[]): void;
  reject(e: Error): void;
}

interface Slot {
  readonly worker: Worker;
  readonly jobs: Map<number, Job>;
  /** Bytes sent and not yet answered: new work goes to the least loaded worker. */
  load: number;
  dead: boolean;
}

export class HashPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private started = false;
  private closed = false;
  /** Why no workers run (null: they do, or none were asked for). */
  fallback: string | null = null;
  /** Bytes hashed by the workers (the rest was hashed inline). */
  bytesOnWorkers = 0;

  /** `threads`: worker threads (0: hash inline); default one per core. Started on first need. */
  constructor(private readonly wanted = defaultHashThreads()) {}

  private start(): void {
    this.started = true;
    for (let i = 0; i < this.wanted; i++) {
      let worker: Worker;
      try {
        worker = new Worker(WORKER_SOURCE, { eval: true, name: 'netboot-hash' });
      } catch (err) {
        this.fallback = `worker threads could not start (${(err as Error).message}): hashing inline`;
        break;
      }
      const slot: Slot = { worker, jobs: new Map(), load: 0, dead: false };
      worker.unref(); // held open only while it has work (see send)
      worker.on('message', (m: { id: number; digests?: string[]; error?: string }) => {
        const job = slot.jobs.get(m.id);
        if (job === undefined) return;
        slot.jobs.delete(m.id);
        if (slot.jobs.size === 0) worker.unref();
        if (m.digests !== undefined) job.resolve(m.digests);
        else job.reject(new NetbootError('HASH_WORKER', `hash worker failed: ${m.error ?? 'no answer'}`));
      });
      const fail = (why: string): void => {
        slot.dead = true;
        for (const job of slot.jobs.values()) job.reject(new NetbootError('HASH_WORKER', `hash worker ${why}`));
        slot.jobs.clear();
      };
      worker.on('error', (err) => fail(`failed: ${err.message}`));
      worker.on('exit', (code) => fail(`exited (${code})`));
      this.slots.push(slot);
    }
  }

  /** Worker threads hashing (0: inline). */
  get threads(): number {
    if (this.closed) return 0;
    return this.started ? this.slots.filter((s) => !s.dead).length : this.wanted;
  }

  /** The SHA-256 (hex) of each span of `buf`, in order. */
  async hashSpans(buf: Buffer, spans: readonly Span[]): Promise<string[]> {
    if (spans.length === 0) return [];
    let total = 0;
    for (const s of spans) total += s.length;
    if (!this.started && !this.closed && total >= INLINE_BYTES) this.start();
    const live = this.closed ? [] : this.slots.filter((s) => !s.dead);
    if (live.length === 0 || total < INLINE_BYTES) return spans.map((s) => digestHex(buf.subarray(s.start, s.start + s.length)));
    let sab: SharedArrayBuffer;
    let offset = buf.byteOffset;
    let length = buf.byteLength;
    let shift = 0;
    if (buf.buffer instanceof SharedArrayBuffer) sab = buf.buffer;
    else {
      // One copy into shared memory (memcpy: a small fraction of hashing the same bytes).
      shift = spans.reduce((m, s) => Math.min(m, s.start), Infinity);
      const hi = spans.reduce((m, s) => Math.max(m, s.start + s.length), 0);
      sab = new SharedArrayBuffer(hi - shift);
      buf.copy(Buffer.from(sab), 0, shift, hi);
      offset = 0;
      length = hi - shift;
    }
    // Contiguous parts of about equal bytes, one per worker.
    const parts: Span[][] = [];
    const per = total / live.length;
    let cur: Span[] = [];
    let curBytes = 0;
    for (const s of spans) {
      cur.push(s);
      curBytes += s.length;
      if (curBytes >= per && parts.length < live.length - 1) {
        parts.push(cur);
        cur = [];
        curBytes = 0;
      }
    }
    if (cur.length > 0) parts.push(cur);
    // A worker that died (it should not) costs speed, not the answer: its part is hashed inline.
    const inline = (part: readonly Span[]) => part.map((s) => digestHex(buf.subarray(s.start, s.start + s.length)));
    const answers = await Promise.all(parts.map((part) => this.send(sab, offset, length, part, shift).catch(() => inline(part))));
    return answers.flat();
  }

  /** The SHA-256 (hex) of each buffer, in order (views into one SharedArrayBuffer on the workers, in place; others inline). */
  async hashBuffers(list: readonly Buffer[]): Promise<string[]> {
    let total = 0;
    for (const b of list) total += b.length;
    if (this.threads === 0 || total < INLINE_BYTES) return list.map((b) => digestHex(b));
    // Views into one SharedArrayBuffer (a response received into shared memory): hashed in place.
    const shared = list[0]?.buffer;
    if (shared instanceof SharedArrayBuffer && list.every((b) => b.buffer === shared)) {
      let lo = Infinity;
      let hi = 0;
      for (const b of list) {
        lo = Math.min(lo, b.byteOffset);
        hi = Math.max(hi, b.byteOffset + b.length);
      }
      return this.hashSpans(Buffer.from(shared, lo, hi - lo), list.map((b) => ({ start: b.byteOffset - lo, length: b.length })));
    }
    // Anything else is hashed here: copying it into fresh shared memory for the workers runs at
    // 0.6-0.7 GB/s (page faults as it fills), slower than SHA-256 itself (about 1.4 GB/s here).
    return list.map((b) => digestHex(b));
  }

  private send(sab: SharedArrayBuffer, offset: number, length: number, spans: readonly Span[], shift: number): Promise<string[]> {
    const live = this.slots.filter((s) => !s.dead);
    if (live.length === 0) return Promise.reject(new NetbootError('HASH_WORKER', 'no hash worker left'));
    const slot = live.reduce((a, b) => (b.load < a.load ? b : a));
    const id = this.nextId++;
    const flat: number[] = [];
    let bytes = 0;
    for (const s of spans) {
      flat.push(s.start - shift, s.length);
      bytes += s.length;
    }
    slot.load += bytes;
    return new Promise<string[]>((resolve, reject) => {
      if (slot.jobs.size === 0) slot.worker.ref();
      slot.jobs.set(id, {
        resolve: (d) => {
          slot.load -= bytes;
          this.bytesOnWorkers += bytes;
          resolve(d);
        },
        reject: (e) => {
          slot.load -= bytes;
          reject(e);
        },
      });
      slot.worker.postMessage({ id, sab, offset, length, spans: flat });
    });
  }

  /**
   * Stops the workers. Not awaited: a worker terminated while it is still starting up may never
   * report its exit (seen with Node 20: the caller was left behind with an empty event loop), and
   * nothing here needs the threads gone, only no more work sent to them (work in flight is hashed
   * inline by its caller).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.slots) {
      s.worker.removeAllListeners('exit');
      s.dead = true;
      for (const job of s.jobs.values()) job.reject(new NetbootError('HASH_WORKER', 'hash pool closed')); // its caller hashes inline
      s.jobs.clear();
      s.worker.unref();
      s.worker.terminate().catch(() => {});
    }
  }
}
