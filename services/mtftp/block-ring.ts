// Where DATA packets come from: a source (an open file, or bytes in memory) and a ring of
// ready-made packets read ahead of the window. Each slot holds one whole DATA packet (header +
// payload) so a send is one Buffer with no copy; one readv fills many slots' payloads at once.
// A slot is refilled only once its block is acknowledged, so the current window is always
// resident for a go-back-N resend.
import { close, readv } from 'node:fs';
import { writeDataHeader } from '../../protocols/tftp/tftp-codec.ts';
import { wireBlock } from '../../protocols/tftp/transfer.ts';

export interface BlockSource {
  readonly size: number;
  /** The open file's descriptor, for reads from the page cache without a thread-pool trip. */
  readonly fd?: number;
  /** Fills `buffers` in order from byte `position`; resolves to the bytes read. */
  readv(buffers: Buffer[], position: number): Promise<number>;
  close(): Promise<void>;
}

/** An open file descriptor (tftp-root.ts opens it synchronously); closed by close(), once. */
export class FileSource implements BlockSource {
  constructor(
    readonly fd: number,
    readonly size: number,
  ) {}

  readv(buffers: Buffer[], position: number): Promise<number> {
    return new Promise((resolve, reject) => readv(this.fd, buffers, position, (err, bytesRead) => (err === null ? resolve(bytesRead) : reject(err))));
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => close(this.fd, (err) => (err === null ? resolve() : reject(err))));
  }
}

export class MemorySource implements BlockSource {
  constructor(private readonly data: Buffer) {}

  get size(): number {
    return this.data.length;
  }

  async readv(buffers: Buffer[], position: number): Promise<number> {
    let at = position;
    for (const b of buffers) {
      if (at >= this.data.length) break;
      at += this.data.copy(b, 0, at, Math.min(at + b.length, this.data.length));
    }
    return at - position;
  }

  async close(): Promise<void> {}
}

/**
 * Reads file bytes at `position` into `count` spans of `length` bytes every `stride` bytes of buf
 * from `offset`, only from the page cache (never waiting for a disk); returns bytes read or
 * -errno. From the native addon (readCached).
 */
export type CachedReader = (fd: number, buf: Buffer, offset: number, stride: number, count: number, length: number, position: number) => number;

/** Bytes read ahead per readv; at most 1024 blocks so the iovec count stays under IOV_MAX. */
export const READ_CHUNK_BYTES = 128 * 1024;
const MAX_IOVECS = 1024;

export class BlockRing {
  readonly capacity: number;
  /** Blocks per read. */
  readonly chunk: number;
  /** Resident blocks: lo..hi (none while hi < lo). */
  lo = 1;
  hi = 0;
  reading = false;
  /** Bytes per slot: one whole DATA packet (header + blockSize). */
  readonly stride: number;
  private buf: Buffer;
  /** Length of the last block's DATA packet, once it is resident (only it can be short). */
  private lastLength = -1;

  constructor(
    private readonly source: BlockSource,
    readonly blockSize: number,
    readonly lastBlock: number,
    windowSize: number,
    /** When given, chunks already in the page cache are read at once, on this thread. */
    private readonly readCached?: CachedReader,
  ) {
    this.stride = blockSize + 4;
    this.chunk = Math.max(1, Math.min(MAX_IOVECS, Math.ceil(READ_CHUNK_BYTES / blockSize), lastBlock));
    // Two halves: one being sent and acknowledged, one being read ahead.
    this.capacity = Math.min(2 * Math.max(windowSize, this.chunk), lastBlock);
    // No per-slot views up front: a native link sends from offsets in the one buffer, and a
    // transfer's set-up is on the way to its first packet (views are made where they are used).
    this.buf = Buffer.allocUnsafe(this.capacity * this.stride);
  }

  has(first: number, last: number): boolean {
    return first >= this.lo && last <= this.hi;
  }

  /** The buffer holding every slot (slot i at i * stride); replaced by detach(). */
  get buffer(): Buffer {
    return this.buf;
  }

  slotOf(n: number): number {
    return (n - 1) % this.capacity;
  }

  /** Length of resident block n's DATA packet (only the last block is short). */
  packetLength(n: number): number {
    return n === this.lastBlock && this.lastLength >= 0 ? this.lastLength : this.stride;
  }

  /** The DATA packet for resident block n (a view of the slot). */
  packet(n: number): Buffer {
    const at = ((n - 1) % this.capacity) * this.stride;
    return this.buf.subarray(at, at + this.packetLength(n));
  }

  /**
   * The socket may still hold references to queued packets (a full send buffer): move to a fresh
   * buffer before overwriting any slot, so a queued datagram is never torn by a read.
   */
  detach(): void {
    const old = this.buf;
    this.buf = Buffer.allocUnsafe(old.length);
    old.copy(this.buf);
  }

  /** Whether a read would make progress: no read running and free slots (blocks < base). */
  wantsRead(base: number): boolean {
    if (this.reading || this.hi >= this.lastBlock) return false;
    const room = base - 1 + this.capacity - this.hi;
    return room >= Math.min(this.chunk, this.lastBlock - this.hi);
  }

  /** Blocks first..last from the page cache, one call per contiguous run of slots; -1 if not all cached. */
  private readFromCache(first: number, last: number, position: number, expected: number): number {
    const fd = this.source.fd;
    if (this.readCached === undefined || fd === undefined) return -1;
    let got = 0;
    for (let n = first; n <= last; ) {
      const slot = (n - 1) % this.capacity;
      const count = Math.min(last - n + 1, this.capacity - slot);
      const want = Math.min(expected - got, count * this.blockSize);
      const r = this.readCached(fd, this.buf, slot * this.stride + 4, this.stride, count, this.blockSize, position + got);
      if (r !== want) return -1; // not cached (or a short read): the thread pool reads it all
      got += r;
      n += count;
    }
    return got;
  }

  /** The payload parts of the slots of blocks first..last, for a read through the thread pool. */
  private payloadViews(first: number, last: number): Buffer[] {
    const views: Buffer[] = [];
    for (let n = first; n <= last; n++) {
      const at = ((n - 1) % this.capacity) * this.stride;
      views.push(this.buf.subarray(at + 4, at + this.stride));
    }
    return views;
  }

  /** Reads the next chunk into slots of acknowledged blocks (caller checked wantsRead). */
  async read(base: number): Promise<void> {
    const first = this.hi + 1;
    const last = Math.min(this.lastBlock, base - 1 + this.capacity, this.hi + this.chunk);
    const position = (first - 1) * this.blockSize;
    const expected = Math.min(this.source.size, last * this.blockSize) - position;
    this.reading = true;
    let got = expected === 0 ? 0 : this.readFromCache(first, last, position, expected);
    try {
      if (got !== expected) got = await this.source.readv(this.payloadViews(first, last), position);
    } finally {
      this.reading = false;
    }
    if (got !== expected) throw new Error(`file changed while being sent: read ${got} of ${expected} bytes at offset ${position}`);
    // Headers are written after the read, into the slots' current buffer (detach may have run).
    const buf = this.buf;
    for (let n = first; n <= last; n++) writeDataHeader(buf, wireBlock(n), ((n - 1) % this.capacity) * this.stride);
    if (last === this.lastBlock) this.lastLength = 4 + (this.source.size - (last - 1) * this.blockSize);
    this.hi = last;
    this.lo = Math.max(this.lo, last - this.capacity + 1);
  }
}
