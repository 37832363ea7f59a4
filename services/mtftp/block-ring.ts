// Where DATA packets come from: a source (an open file, or bytes in memory) and a ring of
// ready-made packets read ahead of the window. Each slot holds one whole DATA packet (header +
// payload) so a send is one Buffer with no copy; one readv fills many slots' payloads at once.
// A slot is refilled only once its block is acknowledged, so the current window is always
// resident for a go-back-N resend.
//
// Memory follows the client (issue 16): a ring under a RingBudget starts with at most
// PRE_ACK_BYTES of slots, enough for the first turn of a usual boot (iPXE's blksize 1432 window 1)
// but nothing like the 8 MB that blksize 65464 windowsize 64 would reserve; only once the client
// has answered does it grow, to a window and a read (the least that makes progress), then by
// each block acknowledged up to two halves. A datagram with a forged source cannot answer: the
// OACK went to the forged address from a port nobody else knows. release() gives the bytes back.
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
/** Slot bytes a budgeted ring holds before the client has answered (at least one block). */
export const PRE_ACK_BYTES = 64 * 1024;

/**
 * Bytes of ring buffers all transfers of a server may hold at once. The first slots of a ring
 * (PRE_ACK_BYTES at most) are always granted, the transfer caps bound them; growth past them is
 * granted only within the limit.
 */
export class RingBudget {
  usedBytes = 0;

  constructor(readonly limitBytes: number) {}

  get spent(): boolean {
    return this.usedBytes >= this.limitBytes;
  }

  get availableBytes(): number {
    return Math.max(0, this.limitBytes - this.usedBytes);
  }

  take(bytes: number, always = false): boolean {
    if (!always && this.usedBytes + bytes > this.limitBytes) return false;
    this.usedBytes += bytes;
    return true;
  }

  give(bytes: number): void {
    this.usedBytes -= bytes;
  }
}

export class BlockRing {
  /** Most slots the ring ever holds: two halves, one being sent and acknowledged, one read ahead. */
  readonly maxCapacity: number;
  /** Blocks per read. */
  readonly chunk: number;
  /** Resident blocks: lo..hi (none while hi < lo). */
  lo = 1;
  hi = 0;
  reading = false;
  /** Bytes per slot: one whole DATA packet (header + blockSize). */
  readonly stride: number;
  /** Slots before the client has answered (budgeted ring), and the least after (a window and a read). */
  readonly firstCapacity: number;
  readonly minCapacity: number;
  private slots: number;
  private buf: Buffer;
  /** Length of the last block's DATA packet, once it is resident (only it can be short). */
  private lastLength = -1;
  /** Bytes taken from the budget (0 without one). */
  private charged = 0;
  private released = false;

  constructor(
    private readonly source: BlockSource,
    readonly blockSize: number,
    readonly lastBlock: number,
    windowSize: number,
    /** When given, chunks already in the page cache are read at once, on this thread. */
    private readonly readCached?: CachedReader,
    /** When given, the ring starts small and grows as the client acknowledges (grow()); else it is whole from the start. */
    private readonly budget?: RingBudget,
  ) {
    this.stride = blockSize + 4;
    this.chunk = Math.max(1, Math.min(MAX_IOVECS, Math.ceil(READ_CHUNK_BYTES / blockSize), lastBlock));
    this.maxCapacity = Math.min(2 * Math.max(windowSize, this.chunk), lastBlock);
    this.minCapacity = Math.min(windowSize + this.chunk, this.maxCapacity);
    this.firstCapacity = Math.min(this.chunk, this.maxCapacity, Math.max(1, Math.floor(PRE_ACK_BYTES / this.stride)));
    this.slots = budget === undefined ? this.maxCapacity : this.firstCapacity;
    if (budget !== undefined) {
      this.charged = this.slots * this.stride;
      budget.take(this.charged, true);
    }
    // No per-slot views up front: a native link sends from offsets in the one buffer, and a
    // transfer's set-up is on the way to its first packet (views are made where they are used).
    this.buf = Buffer.allocUnsafe(this.slots * this.stride);
  }

  /** Slots now (block n lives in slot (n - 1) % capacity); grows up to maxCapacity. */
  get capacity(): number {
    return this.slots;
  }

  /** Buffer bytes this ring holds now. */
  get bytes(): number {
    return this.buf.length;
  }

  /**
   * Grows a budgeted ring to what the client has earned: `answered` (it acknowledged the OACK or
   * a block) brings a window and a read, each block acknowledged below `base` one slot more, up
   * to maxCapacity. Never while a read is filling slots (it is retried at the next read-ahead).
   * False when the ring is below the least that makes progress and the budget cannot cover it.
   */
  grow(base: number, answered: boolean): boolean {
    if (this.budget === undefined || this.released || this.slots >= this.maxCapacity) return true;
    const need = answered ? this.minCapacity : this.firstCapacity;
    const earned = answered ? Math.min(this.maxCapacity, this.minCapacity + base - 1) : need;
    if (earned <= this.slots || this.reading) return true;
    // Whole steps (at least doubling) so an ACK at a time does not mean a copy at a time; else
    // what was earned, else as much of it as the budget has left (never less than the least).
    const fits = Math.min(earned, this.slots + Math.floor(this.budget.availableBytes / this.stride));
    for (const next of [Math.min(this.maxCapacity, Math.max(earned, 2 * this.slots)), earned, fits, need]) {
      if (next <= this.slots || next < need) continue;
      const more = (next - this.slots) * this.stride;
      if (!this.budget.take(more)) continue;
      this.charged += more;
      this.resize(next, base);
      return true;
    }
    return this.slots >= need;
  }

  /** Moves the unacknowledged resident blocks into a buffer of `next` slots. */
  private resize(next: number, base: number): void {
    const old = this.buf;
    const oldSlots = this.slots;
    const stride = this.stride;
    const buf = Buffer.allocUnsafe(next * stride);
    const from = Math.max(this.lo, base);
    for (let n = from; n <= this.hi; n++) {
      const at = ((n - 1) % oldSlots) * stride;
      old.copy(buf, ((n - 1) % next) * stride, at, at + stride);
    }
    this.lo = from;
    this.buf = buf;
    this.slots = next;
  }

  /** The transfer ended: the buffer goes (a link or queued send may still hold it until it is done), the budget gets its bytes back. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget?.give(this.charged);
    this.charged = 0;
    this.buf = Buffer.alloc(0);
    this.lo = 1;
    this.hi = 0;
  }

  has(first: number, last: number): boolean {
    return first >= this.lo && last <= this.hi;
  }

  /** The buffer holding every slot (slot i at i * stride); replaced by detach(). */
  get buffer(): Buffer {
    return this.buf;
  }

  slotOf(n: number): number {
    return (n - 1) % this.slots;
  }

  /** Length of resident block n's DATA packet (only the last block is short). */
  packetLength(n: number): number {
    return n === this.lastBlock && this.lastLength >= 0 ? this.lastLength : this.stride;
  }

  /** The DATA packet for resident block n (a view of the slot). */
  packet(n: number): Buffer {
    const at = ((n - 1) % this.slots) * this.stride;
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
    if (this.reading || this.released || this.hi >= this.lastBlock) return false;
    const room = base - 1 + this.slots - this.hi;
    return room >= Math.min(this.chunk, this.slots, this.lastBlock - this.hi);
  }

  /** Blocks first..last from the page cache, one call per contiguous run of slots; -1 if not all cached. */
  private readFromCache(first: number, last: number, position: number, expected: number): number {
    const fd = this.source.fd;
    if (this.readCached === undefined || fd === undefined) return -1;
    let got = 0;
    for (let n = first; n <= last; ) {
      const slot = (n - 1) % this.slots;
      const count = Math.min(last - n + 1, this.slots - slot);
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
      const at = ((n - 1) % this.slots) * this.stride;
      views.push(this.buf.subarray(at + 4, at + this.stride));
    }
    return views;
  }

  /** Reads the next chunk into slots of acknowledged blocks (caller checked wantsRead). */
  async read(base: number): Promise<void> {
    const first = this.hi + 1;
    const last = Math.min(this.lastBlock, base - 1 + this.slots, this.hi + this.chunk);
    const position = (first - 1) * this.blockSize;
    const expected = Math.min(this.source.size, last * this.blockSize) - position;
    this.reading = true;
    let got = expected === 0 ? 0 : this.readFromCache(first, last, position, expected);
    try {
      if (got !== expected) got = await this.source.readv(this.payloadViews(first, last), position);
    } finally {
      this.reading = false;
    }
    if (this.released) return; // the transfer ended meanwhile
    if (got !== expected) throw new Error(`file changed while being sent: read ${got} of ${expected} bytes at offset ${position}`);
    // Headers are written after the read, into the slots' current buffer (detach may have run).
    const buf = this.buf;
    for (let n = first; n <= last; n++) writeDataHeader(buf, wireBlock(n), ((n - 1) % this.slots) * this.stride);
    if (last === this.lastBlock) this.lastLength = 4 + (this.source.size - (last - 1) * this.blockSize);
    this.hi = last;
    this.lo = Math.max(this.lo, last - this.slots + 1);
  }
}
