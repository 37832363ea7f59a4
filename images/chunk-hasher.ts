// SHA-256 of chunks on a worker thread, so that hashing (about 1 GB/s per core) runs beside the
// gear-hash chunking (about 1 GB/s on the main thread) instead of after it: publishing then goes
// at the speed of the slower of the two, not at half of it. Buffers are transferred, not copied.
import { Worker } from 'node:worker_threads';

// Plain JS (eval), so the worker needs no TypeScript loader. Keeps one running hash across
// messages: a chunk may span several read blocks.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let h = createHash('sha256');
parentPort.on('message', (m) => {
  if (m.end) {
    const out = m.pending ? [h.digest('hex')] : [];
    h = createHash('sha256');
    parentPort.postMessage({ digests: out, buf: null });
    return;
  }
  const buf = new Uint8Array(m.buf, 0, m.len);
  const out = [];
  let prev = 0;
  for (const cut of m.cuts) {
    h.update(buf.subarray(prev, cut));
    out.push(h.digest('hex'));
    h = createHash('sha256');
    prev = cut;
  }
  if (prev < m.len) h.update(buf.subarray(prev, m.len));
  parentPort.postMessage({ digests: out, buf: m.buf }, [m.buf]); // the block goes back for reuse
});
`;

export class ChunkHasher {
  private readonly worker = new Worker(WORKER, { eval: true });
  private readonly waiting: Array<{ resolve: (r: { digests: string[]; buf: ArrayBuffer | null }) => void; reject: (e: Error) => void }> = [];
  private readonly free: ArrayBuffer[] = [];
  private failed: Error | null = null;

  constructor() {
    this.worker.on('message', (m: { digests: string[]; buf: ArrayBuffer | null }) => this.waiting.shift()?.resolve(m));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`hash worker exited (${code})`)));
  }

  private fail(err: Error): void {
    this.failed ??= err;
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  private send(msg: unknown, transfer: ArrayBuffer[] = []): Promise<{ digests: string[]; buf: ArrayBuffer | null }> {
    if (this.failed !== null) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.worker.postMessage(msg, transfer);
    });
  }

  /** A block of `size` bytes that owns its memory: recycled from the worker when possible. */
  block(size: number): Buffer {
    const ab = this.free.pop();
    return ab !== undefined && ab.byteLength >= size ? Buffer.from(ab, 0, size) : Buffer.allocUnsafeSlow(size);
  }

  /**
   * Hashes `data` (which must own its whole ArrayBuffer; it is transferred and unusable after)
   * as the continuation of the current chunk; resolves with the digests of the chunks that end at
   * `cuts`, in order.
   */
  async push(data: Buffer, cuts: readonly number[]): Promise<string[]> {
    const r = await this.hashKeeping(data, cuts);
    this.recycle(r.data);
    return r.digests;
  }

  /** As push(), handing the bytes back afterwards (to write them, then recycle()). */
  async hashKeeping(data: Buffer, cuts: readonly number[]): Promise<{ digests: string[]; data: Buffer }> {
    if (data.byteOffset !== 0) throw new Error('ChunkHasher: the buffer must own its memory');
    const len = data.length;
    const r = await this.send({ buf: data.buffer, len, cuts }, [data.buffer as ArrayBuffer]);
    return { digests: r.digests, data: Buffer.from(r.buf!, 0, len) };
  }

  /** Gives a block back for reuse by block(). */
  recycle(data: Buffer): void {
    if (data.byteOffset === 0 && this.free.length < 8) this.free.push(data.buffer as ArrayBuffer);
  }

  /** Ends the stream: the digest of the unfinished chunk, if it has bytes. */
  async end(pending: boolean): Promise<string[]> {
    return (await this.send({ end: true, pending })).digests;
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}
