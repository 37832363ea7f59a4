// Reads runs of adjacent chunks from a disk in order, each with one read into one of a few reused
// shared buffers, and hashes their chunks in the hash pool while the next runs are read. Reads go
// one at a time and in order (the disk sees a forward stream); hashing of earlier runs proceeds
// on the workers meanwhile, so reading and hashing overlap and hashing uses every core. Used by
// deploy (is the chunk already on the target?) and capture (what is each chunk's digest?).
import type { Disk } from './block-device.ts';
import type { HashPool, Span } from './hash-pool.ts';

export interface ReadRun {
  /** Disk offset of the run's first byte. */
  readonly at: number;
  readonly length: number;
  /** Its chunks, offsets relative to `at`. */
  readonly spans: readonly Span[];
  /** Applied to the run's bytes before they are hashed (zeroing the unused bytes). */
  readonly prepare?: (bytes: Buffer) => void;
}

export interface HashedRun {
  /** The run's bytes (after `prepare`), valid until release(). */
  readonly bytes: Buffer;
  /** SHA-256 (hex) of each span, in order. */
  readonly digests: readonly string[];
  /** Hands the buffer back for a later run: call once done with `bytes`. */
  release(): void;
}

/** Runs read ahead of the one asked for (and buffers held): enough to keep every worker busy. */
export const DEFAULT_READ_AHEAD = 4;

export class RunReader {
  private readonly free: Buffer[] = [];
  private readonly waiting: ((b: Buffer) => void)[] = [];
  private readonly started: Promise<HashedRun>[] = [];
  private readChain: Promise<unknown> = Promise.resolve();
  /** Bytes read from the disk. */
  bytesRead = 0;

  constructor(private readonly disk: Disk, private readonly pool: HashPool, private readonly runs: readonly ReadRun[], private readonly depth = DEFAULT_READ_AHEAD) {
    const size = runs.reduce((m, r) => Math.max(m, r.length), 0);
    for (let i = 0; i < Math.min(depth, runs.length); i++) this.free.push(Buffer.from(new SharedArrayBuffer(size)));
  }

  /** Run i, read and hashed. Ask in order (0, 1, 2, ...), releasing each before asking past the read-ahead. */
  get(i: number): Promise<HashedRun> {
    for (let j = this.started.length; j < Math.min(this.runs.length, i + this.depth); j++) {
      const p = this.start(this.runs[j]!);
      p.catch(() => {}); // observed when asked for
      this.started.push(p);
    }
    const p = this.started[i];
    if (p === undefined) throw new RangeError(`no run ${i}`);
    return p;
  }

  private acquire(): Promise<Buffer> {
    const b = this.free.pop();
    return b !== undefined ? Promise.resolve(b) : new Promise((resolve) => this.waiting.push(resolve));
  }

  private giveBack(b: Buffer): void {
    const next = this.waiting.shift();
    if (next !== undefined) next(b);
    else this.free.push(b);
  }

  private async start(run: ReadRun): Promise<HashedRun> {
    const slot = await this.acquire();
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.giveBack(slot);
    };
    try {
      const bytes = slot.subarray(0, run.length);
      // Buffers are handed out in the order runs start, so reads queue in run order.
      const read = this.readChain.catch(() => {}).then(async () => {
        if (this.disk.readInto !== undefined) await this.disk.readInto(run.at, bytes);
        else (await this.disk.read(run.at, run.length)).copy(bytes);
        this.bytesRead += run.length;
      });
      this.readChain = read;
      await read;
      run.prepare?.(bytes);
      const digests = await this.pool.hashSpans(bytes, run.spans);
      return { bytes, digests, release };
    } catch (err) {
      release();
      throw err;
    }
  }
}
