// Deploy (and restore): the image's head (partition table, boot gap), then each partition's
// chunks, onto a disk. Before a chunk is fetched, the target's bytes at its place are read,
// masked the same way (the image's unused bytes zeroed) and hashed: equal means the disk already
// holds it, and nothing is fetched or written. Every fetched chunk is verified against its digest
// (fetched again up to `fetchAttempts` times, then the deploy fails). A disk smaller than the
// image needs fails before anything is written; on a larger one the table is rewritten for its
// size (GPT backup moved to the end) and the last partition grown, then its file system
// (resize2fs for ext2/3/4, ntfsresize for NTFS; FAT is left as it is: only its partition grows).
// Speed of the comparison (a re-deploy is little else): each run of adjacent chunks is one read
// into a reused buffer, runs are read ahead while earlier ones are hashed on every core
// (run-reader.ts, hash-pool.ts), and an all-zero target span costs a memcmp, not a hash. The
// compare never waits for the network: what the target lacks is gathered across runs into batches
// of about 4 MiB, up to 3 on the wire while the compare goes on, each verified as it arrives; the
// writer follows in disk order. A chunk is skipped only when the target's bytes there hash to its
// SHA-256 digest. An all-zero chunk the target lacks is written from zeros, not fetched; a chunk
// the target already holds elsewhere (or that this deploy wrote earlier) is read back from there
// and verified, not fetched again (an image holding the same 64 KiB twice sends it once).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { NetbootError } from '../platform/runtime/errors.ts';
import { encodeGpt, fitGpt } from '../protocols/disk/gpt.ts';
import { encodeMbr, lbaToChs } from '../protocols/disk/mbr.ts';
import { decodePartitionTable, headBytesNeeded } from '../protocols/disk/partition-table.ts';
import type { Disk } from './block-device.ts';
import { adjacentGroups, READ_BYTES, type ImagingProgress } from './capture.ts';
import type { ChunkSource } from './chunk-store.ts';
import { minimumDiskBytes, type ChunkEntry, type DiskImage, type PartitionImage } from './disk-image.ts';
import { maskUnused, type Extent } from './extents.ts';
import { digestHex, HashPool, zeroDigest } from './hash-pool.ts';
import { RunReader } from './run-reader.ts';

const run = promisify(execFile);
/** Chunks a target lacks are asked of the source in batches of about this many bytes... */
const FETCH_BATCH_BYTES = 4 * 1024 * 1024;
/** ...this many at a time... */
const FETCH_CONCURRENCY = 3;
/** ...while at most this many fetched bytes wait to be written (the compare waits beyond). */
const FETCH_HELD_BYTES = 48 * 1024 * 1024;

export interface DeployOptions {
  readonly source: ChunkSource;
  /** Partition numbers to write (default: all the image holds). The head is always written. */
  readonly partitions?: readonly number[];
  /** Grow the last partition and its file system on a larger disk (default true). */
  readonly grow?: boolean;
  readonly fetchAttempts?: number;
  /** After the table is written: make the kernel see it (BLKRRPART / partx) so partition nodes exist. */
  readonly rereadTable?: () => Promise<void>;
  /** The device node of partition n on the target, for growing its file system. */
  readonly partitionDevice?: (n: number) => string | null;
  readonly progress?: ImagingProgress;
  /** Worker threads hashing (default: one per core; 0: inline). Ignored when hashPool is given. */
  readonly hashThreads?: number;
  /** A pool to share (left open); by default one is made for this deploy and closed after it. */
  readonly hashPool?: HashPool;
  /** Bytes of chunks asked of the source in one batch (default 4 MiB). */
  readonly fetchBatchBytes?: number;
}

export interface DeployResult {
  /** Bytes of chunks fetched from the source (verified). */
  readonly bytesTransferred: number;
  readonly bytesWritten: number;
  readonly chunksSkipped: number;
  readonly chunksWritten: number;
  readonly chunksRefetched: number;
  readonly grown: { readonly partition: number; readonly fs: string | null; readonly fromBytes: number; readonly toBytes: number; readonly fsGrown: boolean; readonly note: string } | null;
}

export class DiskTooSmallError extends NetbootError {
  constructor(path: string, have: number, need: number) {
    super('DISK_TOO_SMALL', `${path} holds ${have} bytes; the image needs at least ${need}: nothing was written`);
  }
}

/**
 * The image's partition table and file systems count in its own sector size: LBAs written for
 * 512-byte sectors point elsewhere on a 4096-byte disk (and the reverse), so it is refused.
 */
export class SectorSizeError extends NetbootError {
  constructor(path: string, have: number, image: number) {
    super('SECTOR_SIZE', `${path} has ${have}-byte logical sectors but the image was made on a disk with ${image}-byte sectors (its partition table counts in those): nothing was written`);
  }
}

export async function deployImage(disk: Disk, img: DiskImage, opts: DeployOptions): Promise<DeployResult> {
  const pool = opts.hashPool ?? new HashPool(opts.hashThreads);
  try {
    return await deployWith(disk, img, opts, pool);
  } finally {
    if (opts.hashPool === undefined) await pool.close();
  }
}

async function deployWith(disk: Disk, img: DiskImage, opts: DeployOptions, pool: HashPool): Promise<DeployResult> {
  if (disk.sectorBytes !== img.sectorBytes) throw new SectorSizeError(disk.path, disk.sectorBytes, img.sectorBytes);
  const need = minimumDiskBytes(img);
  if (disk.sizeBytes < need) throw new DiskTooSmallError(disk.path, disk.sizeBytes, need);
  const wanted = opts.partitions ?? img.partitions.map((p) => p.number);
  for (const n of wanted) if (!img.partitions.some((p) => p.number === n)) throw new NetbootError('NO_SUCH_PARTITION', `the image has no partition ${n}: nothing was written`);
  const attempts = opts.fetchAttempts ?? 3;
  const grow = (opts.grow ?? true) && disk.sizeBytes > img.sizeBytes;
  const selected = img.partitions.filter((p) => wanted.includes(p.number));
  const bytesTotal = img.head.length + selected.reduce((n, p) => n + p.chunks.reduce((m, c) => m + c.length, 0), 0);
  let bytesDone = 0;
  let bytesTransferred = 0;
  let bytesWritten = 0;
  let chunksSkipped = 0;
  let chunksWritten = 0;
  let chunksRefetched = 0;
  const report = (phase: string): void => opts.progress?.({ phase, bytesDone, bytesTotal });

  /** `tried`: attempts already spent on it (a batch that brought a bad copy or none). */
  const fetchVerified = async (c: ChunkEntry, where: string, tried = 0): Promise<Buffer> => {
    for (let i = Math.min(tried, attempts - 1) + 1; i <= attempts; i++) {
      const bytes = await opts.source.get(c.digest);
      if (bytes !== null) bytesTransferred += bytes.length;
      if (bytes !== null && bytes.length === c.length && digestHex(bytes) === c.digest) return bytes;
      if (i < attempts) chunksRefetched++;
      if (bytes === null && i === attempts) throw new NetbootError('CHUNK_MISSING', `chunk ${c.digest} (${where}) is not held by the source`);
    }
    throw new NetbootError('CHUNK_CORRUPT', `chunk ${c.digest} (${where}) did not match its digest in ${attempts} fetches: rejected, not written`);
  };

  /** The target's bytes at a chunk's place, masked like the chunk; its digest tells if it is already there. */
  const targetMatches = async (at: number, c: ChunkEntry, used: readonly Extent[] | null): Promise<Buffer | null> => {
    const have = await disk.read(at, c.length);
    if (used !== null) maskUnused(have, c.offset, used);
    return digestHex(have) === c.digest ? have : null;
  };

  // 1. The head: assembled in memory (from the disk where it already matches), the table
  //    rewritten for this disk's size, then written where it differs.
  const head = Buffer.alloc(img.head.length);
  for (const c of img.head.chunks) {
    const bytes = (await targetMatches(c.offset, c, null)) ?? (await fetchVerified(c, `head at byte ${c.offset}`));
    bytes.copy(head, c.offset);
  }
  const table = decodePartitionTable(head.subarray(0, Math.min(head.length, headBytesNeeded(head, img.sectorBytes))), img.sectorBytes);
  if (table.kind === 'gpt') {
    // The exact backup size, now that the entry array is known (checked before any write).
    const exact = minimumDiskBytes(img, table.gpt);
    if (disk.sizeBytes < exact) throw new DiskTooSmallError(disk.path, disk.sizeBytes, exact);
  }
  const diskSectors = BigInt(Math.floor(disk.sizeBytes / img.sectorBytes));
  const last = img.partitions.reduce<PartitionImage | null>((a, p) => (a === null || p.startBytes > a.startBytes ? p : a), null);
  let grownTo = last === null ? 0 : last.sizeBytes;
  let backup: { bytes: Buffer; offset: number } | null = null;
  const sameSize = diskSectors === BigInt(Math.floor(img.sizeBytes / img.sectorBytes));
  if (table.kind === 'gpt' && sameSize) {
    // The same size: the captured head is right as it is; only the backup copy is laid out.
    backup = (({ backup: bytes, backupOffset: offset }) => ({ bytes, offset }))(encodeGpt(table.gpt, img.sectorBytes, diskSectors));
  } else if (table.kind === 'gpt') {
    const g = fitGpt(table.gpt, img.sectorBytes, diskSectors, grow, BigInt(Math.max(1, (1024 * 1024) / img.sectorBytes)));
    const enc = encodeGpt(g, img.sectorBytes, diskSectors);
    enc.primary.copy(head, img.sectorBytes);
    backup = { bytes: enc.backup, offset: enc.backupOffset };
    const e = last === null ? undefined : g.entries.find((x) => x.number === last.number);
    if (e !== undefined) grownTo = Number(e.lastLba - e.firstLba + 1n) * img.sectorBytes;
    // The protective MBR covers the whole disk (or as much as 32 bits of sectors can say).
    const pm = table.mbr.entries.find((x) => x.type === 0xee);
    if (pm !== undefined) {
      const sectors = Number(diskSectors - 1n > 0xffffffffn ? 0xffffffffn : diskSectors - 1n);
      encodeMbr({ ...table.mbr, entries: table.mbr.entries.map((x) => (x === pm ? { ...x, sectors, chsLast: lbaToChs(Math.min(sectors, 0xffffffff)) } : x)) }).copy(head, 0);
    }
  } else if (grow && last !== null) {
    const entry = table.mbr.entries.find((x) => x.number === last.number);
    if (entry !== undefined) {
      const align = Math.max(1, (1024 * 1024) / img.sectorBytes);
      const end = Math.min(Math.floor(Number(diskSectors) / align) * align, entry.firstLba + 0xffffffff);
      const sectors = Math.max(entry.sectors, end - entry.firstLba);
      grownTo = sectors * img.sectorBytes;
      encodeMbr({ ...table.mbr, entries: table.mbr.entries.map((x) => (x === entry ? { ...x, sectors, chsLast: lbaToChs(entry.firstLba + sectors - 1) } : x)) }).copy(head, 0);
    }
  }
  for (let at = 0; at < head.length; at += img.chunkBytes) {
    const want = head.subarray(at, Math.min(head.length, at + img.chunkBytes));
    const have = await disk.read(at, want.length);
    if (!have.equals(want)) {
      await disk.write(at, want);
      bytesWritten += want.length;
    }
    bytesDone += want.length;
    report('table');
  }

  // 2. Each partition: the compare runs ahead on its own (RunReader: runs of adjacent chunks read
  //    in order and hashed on the workers), handing each run's plan to the writer; the chunks the
  //    target lacks are gathered across runs into batches of about FETCH_BATCH_BYTES, asked of the
  //    source up to FETCH_CONCURRENCY at a time while the compare goes on, and verified on the
  //    workers as they arrive; the writer takes the runs in order and writes each run of lacking
  //    chunks with one write once its batches are in. Nothing is written unverified.
  const zeros = Buffer.alloc(img.chunkBytes);
  /** Where a chunk's bytes are already on the target (held there, or written there by this deploy in an earlier run). */
  const onTarget = new Map<string, Held>();
  let gather = Buffer.alloc(0);
  report('deploy');
  for (const p of selected) {
    const asRanges = p.chunks.map((c) => ({ start: c.offset, length: c.length, c }));
    const groups = adjacentGroups(asRanges, READ_BYTES);
    const reader = new RunReader(disk, pool, groups.map((g) => {
      const first = g[0]!.start;
      const end = g[g.length - 1]!.start + g[g.length - 1]!.length;
      return { at: p.startBytes + first, length: end - first, spans: g.map((x) => ({ start: x.start - first, length: x.length })), prepare: (b: Buffer) => maskUnused(b, first, p.used) };
    }));
    const fetcher = new BatchFetcher(opts.source, pool, (n) => {
      bytesTransferred += n;
    });
    fetcher.batchBytes = opts.fetchBatchBytes ?? FETCH_BATCH_BYTES;
    const plans = groups.map(() => deferred<{ lacking: boolean[]; copies: (Held | undefined)[]; batches: Batch[] }>());
    let stopped = false;
    const compare = (async () => {
      let gi = 0;
      try {
        for (; gi < groups.length && !stopped; gi++) {
          const group = groups[gi]!;
          const r = await reader.get(gi);
          const lacking = group.map((g, k) => r.digests[k] !== g.c.digest);
          r.release();
          const batches = new Set<Batch>();
          const copies: (Held | undefined)[] = [];
          for (const [k, g] of group.entries()) {
            const d = g.c.digest;
            if (d === zeroDigest(g.c.length)) continue;
            const there = onTarget.get(d);
            if (!lacking[k]) {
              if (there === undefined) onTarget.set(d, { at: p.startBytes + g.c.offset, offset: g.c.offset, used: p.used });
            } else if (there !== undefined) {
              copies[k] = there; // already on the target (held, or written by then): copied, not fetched
            } else {
              batches.add(fetcher.want(d, g.c.length));
              onTarget.set(d, { at: p.startBytes + g.c.offset, offset: g.c.offset, used: p.used }); // written there before any later run
            }
          }
          for (const b of batches) b.users++;
          plans[gi]!.resolve({ lacking, copies, batches: [...batches] });
          await fetcher.pace();
        }
        if (!stopped) fetcher.flush();
      } catch (err) {
        for (; gi < groups.length; gi++) plans[gi]!.reject(err as Error);
      }
    })();
    try {
      for (const [gi, group] of groups.entries()) {
        const { lacking, copies, batches } = await plans[gi]!.promise;
        for (const b of batches) await b.arrived.promise;
        let run: { at: number; parts: Buffer[] } | null = null;
        const flush = async (): Promise<void> => {
          if (run === null) return;
          let bytes = run.parts[0]!;
          if (run.parts.length > 1) {
            // Gathered into one reused buffer (a fresh one per write costs page faults as it fills).
            let n = 0;
            for (const b of run.parts) n += b.length;
            if (gather.length < n) gather = Buffer.allocUnsafeSlow(Math.max(n, READ_BYTES));
            n = 0;
            for (const b of run.parts) {
              gather.set(b, n);
              n += b.length;
            }
            bytes = gather.subarray(0, n);
          }
          await disk.write(p.startBytes + run.at, bytes);
          bytesWritten += bytes.length;
          run = null;
        };
        for (const [k, g] of group.entries()) {
          const c = g.c;
          if (!lacking[k]) {
            chunksSkipped++;
            if (run !== null) await flush();
          } else {
            let bytes: Buffer | undefined;
            if (c.digest === zeroDigest(c.length)) bytes = zeros.length >= c.length ? zeros.subarray(0, c.length) : Buffer.alloc(c.length);
            else {
              const from = copies[k];
              if (from !== undefined) {
                if (run !== null) await flush(); // the copy's source may be in the run not yet written
                const have = await disk.read(from.at, c.length);
                maskUnused(have, from.offset, from.used);
                if (digestHex(have) === c.digest) bytes = have;
              }
              const got = from === undefined ? fetcher.verified(c.digest) : { bytes: bytes ?? null, tried: false };
              bytes = got.bytes ?? undefined;
              if (bytes === undefined) {
                // Not in its batch (not held) or not matching: asked again singly, the batch counting as one attempt.
                if (got.tried) chunksRefetched++;
                bytes = await fetchVerified(c, `partition ${p.number} at byte ${c.offset}`, got.tried ? 1 : 0);
              }
            }
            chunksWritten++;
            if (run === null) run = { at: c.offset, parts: [] };
            run.parts.push(bytes);
          }
          bytesDone += c.length;
        }
        await flush();
        for (const b of batches) fetcher.done(b);
        report('deploy');
      }
    } finally {
      stopped = true;
      fetcher.stop();
      await compare;
    }
  }

  // 3. The backup GPT at this disk's end.
  if (backup !== null) {
    const have = await disk.read(backup.offset, backup.bytes.length);
    if (!have.equals(backup.bytes)) {
      await disk.write(backup.offset, backup.bytes);
      bytesWritten += backup.bytes.length;
    }
  }
  await disk.sync();

  // 4. Grow the last partition's file system.
  let grown: DeployResult['grown'] = null;
  if (grow && last !== null && grownTo > last.sizeBytes && wanted.includes(last.number)) {
    await opts.rereadTable?.();
    const dev = opts.partitionDevice?.(last.number) ?? null;
    grown = { partition: last.number, fs: last.fs, fromBytes: last.sizeBytes, toBytes: grownTo, ...(await growFileSystem(last.fs, dev)) };
  }
  report('done');
  return { bytesTransferred, bytesWritten, chunksSkipped, chunksWritten, chunksRefetched, grown };
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(v: T): void;
  reject(e: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // observed by whoever awaits it; not unhandled meanwhile
  return { promise, resolve, reject };
}

/** A place on the target holding a chunk's bytes once its unused bytes are zeroed. */
interface Held {
  /** Disk offset. */
  readonly at: number;
  /** Offset within the partition, and its used ranges (for the zeroing). */
  readonly offset: number;
  readonly used: readonly Extent[];
}

/** Chunks asked of the source in one request. */
interface Batch {
  readonly digests: string[];
  bytes: number;
  /** Runs whose plan uses it and that are not written yet. */
  users: number;
  sent: boolean;
  /** Settles once its answer is in and verified. */
  readonly arrived: Deferred<void>;
}

/**
 * Gathers the chunks a target lacks into batches, sends a batch once it holds `batchBytes` (or at
 * the end), up to FETCH_CONCURRENCY on the wire, and verifies each answer on the hash pool as it
 * arrives; what the writer has not yet written is held, up to FETCH_HELD_BYTES (the compare waits
 * in pace() beyond). A chunk asked for again while its batch is held comes from that batch.
 */
class BatchFetcher {
  batchBytes = FETCH_BATCH_BYTES;
  private open: Batch | null = null;
  private readonly live = new Map<string, Batch>();
  private readonly good = new Map<string, Buffer>();
  private inFlight = 0;
  private held = 0;
  private stopped = false;
  private waiting: (() => void)[] = [];

  constructor(private readonly source: ChunkSource, private readonly pool: HashPool, private readonly received: (bytes: number) => void) {}

  /** The batch that brings `digest` (added to the open one unless a held batch has it). */
  want(digest: string, length: number): Batch {
    const have = this.live.get(digest);
    if (have !== undefined) return have;
    if (this.open === null) this.open = { digests: [], bytes: 0, users: 0, sent: false, arrived: deferred<void>() };
    this.open.digests.push(digest);
    this.open.bytes += length;
    this.live.set(digest, this.open);
    return this.open;
  }

  /** After each run compared: a full batch is sent; then waits while too much is on the wire or unwritten. */
  async pace(): Promise<void> {
    if (this.open !== null && this.open.bytes >= this.batchBytes) this.send(this.open);
    while (!this.stopped && (this.inFlight >= FETCH_CONCURRENCY || this.held >= FETCH_HELD_BYTES)) {
      // The writer may be waiting for the open batch: never wait with it unsent.
      if (this.open !== null) this.send(this.open);
      await new Promise<void>((r) => this.waiting.push(r));
    }
  }

  /** The end of the compare: the open batch goes. */
  flush(): void {
    if (this.open !== null) this.send(this.open);
  }

  /** A lacking chunk's verified bytes (null: none came), and whether it was asked for. */
  verified(digest: string): { bytes: Buffer | null; tried: boolean } {
    return { bytes: this.good.get(digest) ?? null, tried: this.live.get(digest)?.sent === true };
  }

  /** One run using `b` is written. */
  done(b: Batch): void {
    if (--b.users > 0) return;
    this.held -= b.bytes;
    for (const d of b.digests) {
      if (this.live.get(d) === b) {
        this.live.delete(d);
        this.good.delete(d);
      }
    }
    this.wake();
  }

  stop(): void {
    this.stopped = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const r of w) r();
  }

  private send(b: Batch): void {
    if (this.open === b) this.open = null;
    b.sent = true;
    this.inFlight++;
    this.held += b.bytes;
    void (async () => {
      try {
        const got = this.source.getMany !== undefined
          ? await this.source.getMany(b.digests)
          : new Map((await Promise.all(b.digests.map(async (d) => [d, await this.source.get(d)] as const))).filter((e): e is readonly [string, Buffer] => e[1] !== null));
        const entries = [...got].filter(([d]) => this.live.get(d) === b);
        let n = 0;
        for (const [, bytes] of got) n += bytes.length;
        this.received(n);
        const digests = await this.pool.hashBuffers(entries.map(([, bytes]) => bytes));
        for (const [k, [d, bytes]] of entries.entries()) if (digests[k] === d) this.good.set(d, bytes);
        b.arrived.resolve();
      } catch (err) {
        b.arrived.reject(err as Error);
      } finally {
        this.inFlight--;
        this.wake();
      }
    })();
  }
}

async function growFileSystem(fs: string | null, dev: string | null): Promise<{ fsGrown: boolean; note: string }> {
  if (fs === 'fat12' || fs === 'fat16' || fs === 'fat32') return { fsGrown: false, note: 'FAT file system left at its size: only the partition grew' };
  if (fs !== 'ext2' && fs !== 'ext3' && fs !== 'ext4' && fs !== 'ntfs') return { fsGrown: false, note: `file system ${fs ?? 'not recognised'}: only the partition grew` };
  if (dev === null) return { fsGrown: false, note: 'no partition device to grow the file system on: only the partition grew' };
  try {
    if (fs === 'ntfs') {
      await run('ntfsresize', ['-f', '-f', '-P', dev], { timeout: 600_000 });
      return { fsGrown: true, note: 'ntfsresize' };
    }
    try {
      await run('e2fsck', ['-f', '-y', dev], { timeout: 600_000 });
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code !== 1 && code !== 2) throw err; // 1, 2: errors corrected
    }
    await run('resize2fs', [dev], { timeout: 600_000 });
    return { fsGrown: true, note: 'resize2fs' };
  } catch (err) {
    throw new NetbootError('GROW_FAILED', `growing ${fs} on ${dev} failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
  }
}
