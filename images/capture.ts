// Capture: a disk's head (partition table and boot gap) and the used ranges of every selected
// partition, cut into fixed chunks aligned to the partition start (see disk-image.ts), each put
// into the sink only if the sink does not already hold it. Returns the disk image description
// with the spec's inventory. Reads only used ranges (and the head); writes nothing to the disk.
// Runs of adjacent chunks are read ahead into reused buffers and hashed on every core
// (run-reader.ts, hash-pool.ts) while earlier ones go to the sink.
import { NetbootError } from '../platform/runtime/errors.ts';
import { decodePartitionTable, headBytesNeeded, type PartitionTable } from '../protocols/disk/partition-table.ts';
import type { Disk } from './block-device.ts';
import type { ChunkSink } from './chunk-store.ts';
import { DEFAULT_CHUNK_BYTES, DISK_IMAGE_FORMAT, MAX_HEAD_BYTES, type ChunkEntry, type DiskImage, type DiskInventory, type PartitionImage } from './disk-image.ts';
import { maskUnused, totalLength, windowSpans, type Extent } from './extents.ts';
import { HashPool } from './hash-pool.ts';
import { RunReader } from './run-reader.ts';
import { probeOs, type ProbePartition } from './os-probe.ts';
import { fsUsage } from './used-blocks.ts';

export type ImagingProgress = (p: { phase: string; bytesDone: number; bytesTotal: number }) => void;

export interface CaptureOptions {
  readonly sink: ChunkSink;
  /** Partition numbers to take (default: all). */
  readonly partitions?: readonly number[];
  readonly madeBy: DiskInventory['madeBy'];
  readonly chunkBytes?: number;
  /** The partitions' own device nodes, for the OS probe of NTFS (null: none). */
  readonly partitionDevice?: (n: number) => string | null;
  readonly probeOs?: boolean;
  readonly progress?: ImagingProgress;
  /** Worker threads hashing (default: one per core; 0: inline). Ignored when hashPool is given. */
  readonly hashThreads?: number;
  /** A pool to share (left open); by default one is made for this capture and closed after it. */
  readonly hashPool?: HashPool;
}

export interface CaptureResult {
  readonly image: DiskImage;
  /** Bytes read from the disk. */
  readonly bytesRead: number;
  /** Bytes of chunks the sink did not hold (what was sent and stored). */
  readonly bytesStored: number;
  readonly chunksStored: number;
  readonly chunksTotal: number;
}

/** The longest run of adjacent chunks read at once (capture and deploy). */
export const READ_BYTES = 4 * 1024 * 1024;

/** Runs of ranges that touch each other (no gap), each run at most `maxBytes` long. */
export function adjacentGroups<T extends { start: number; length: number }>(ranges: readonly T[], maxBytes: number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  for (const r of ranges) {
    const first = cur[0];
    const last = cur[cur.length - 1];
    if (first !== undefined && last !== undefined && (r.start !== last.start + last.length || r.start + r.length - first.start > maxBytes)) {
      out.push(cur);
      cur = [];
    }
    cur.push(r);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

export async function readPartitionTable(disk: Disk): Promise<PartitionTable> {
  const first = await disk.read(0, 2 * disk.sectorBytes);
  const need = headBytesNeeded(first, disk.sectorBytes);
  return decodePartitionTable(need <= first.length ? first : await disk.read(0, need), disk.sectorBytes);
}

export async function captureDisk(disk: Disk, opts: CaptureOptions): Promise<CaptureResult> {
  const pool = opts.hashPool ?? new HashPool(opts.hashThreads);
  try {
    return await captureWith(disk, opts, pool);
  } finally {
    if (opts.hashPool === undefined) await pool.close();
  }
}

async function captureWith(disk: Disk, opts: CaptureOptions, pool: HashPool): Promise<CaptureResult> {
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const table = await readPartitionTable(disk);
  const wanted = opts.partitions ?? table.partitions.map((p) => p.number);
  for (const n of wanted) if (!table.partitions.some((p) => p.number === n)) throw new NetbootError('NO_SUCH_PARTITION', `${disk.path} has no partition ${n} (it has ${table.partitions.map((p) => p.number).join(', ') || 'none'})`);
  const firstStart = Math.min(disk.sizeBytes, ...table.partitions.map((p) => p.startBytes));
  const headLength = Math.min(firstStart, MAX_HEAD_BYTES);
  let bytesRead = 0;
  let bytesStored = 0;
  let chunksStored = 0;
  let chunksTotal = 0;

  // First pass: every selected partition's file system and used ranges (metadata reads only).
  const usages = [];
  for (const p of table.partitions.filter((q) => wanted.includes(q.number))) {
    const u = await fsUsage((o, l) => disk.read(p.startBytes + o, Math.min(l, Math.max(0, p.sizeBytes - o))).then((b) => (b.length < l ? Buffer.concat([b, Buffer.alloc(l - b.length)]) : b)), p.sizeBytes);
    usages.push({ p, u });
  }
  const headSpans = windowSpans([{ start: 0, length: headLength }], chunkBytes);
  const spans = usages.map(({ u }) => windowSpans(u.used, chunkBytes));
  const bytesTotal = headLength + spans.flat().reduce((n, s) => n + s.length, 0);
  let bytesDone = 0;
  opts.progress?.({ phase: 'capture', bytesDone, bytesTotal });

  /** Adjacent spans (whole windows of a file's data) are read together, up to READ_BYTES at a time. */
  const store = async (base: number, spans: readonly Extent[], used: readonly Extent[] | null): Promise<ChunkEntry[]> => {
    const out: ChunkEntry[] = [];
    const groups = adjacentGroups(spans, READ_BYTES);
    const reader = new RunReader(disk, pool, groups.map((g) => {
      const first = g[0]!.start;
      const end = g[g.length - 1]!.start + g[g.length - 1]!.length;
      return { at: base + first, length: end - first, spans: g.map((x) => ({ start: x.start - first, length: x.length })), prepare: used === null ? undefined : (b: Buffer) => maskUnused(b, first, used) };
    }));
    for (const [gi, group] of groups.entries()) {
      const r = await reader.get(gi);
      try {
        bytesRead += r.bytes.length;
        for (const [k, s] of group.entries()) {
          const digest = r.digests[k]!;
          chunksTotal++;
          if (!(await opts.sink.has(digest))) {
            const at = s.start - group[0]!.start;
            await opts.sink.put(digest, Buffer.from(r.bytes.subarray(at, at + s.length)));
            bytesStored += s.length;
            chunksStored++;
          }
          out.push({ offset: s.start, length: s.length, digest });
          bytesDone += s.length;
        }
      } finally {
        r.release();
      }
      opts.progress?.({ phase: 'capture', bytesDone, bytesTotal });
    }
    return out;
  };

  const headChunks = await store(0, headSpans, null);
  const partitions: PartitionImage[] = [];
  for (const [i, { p, u }] of usages.entries()) {
    const chunks = await store(p.startBytes, spans[i]!, u.used);
    partitions.push({ number: p.number, startBytes: p.startBytes, sizeBytes: p.sizeBytes, type: p.type, name: p.name, fs: u.fs, label: u.label, fsUuid: u.fsUuid, whole: u.whole, note: u.note, usedBytes: totalLength(u.used), used: u.used, chunks });
  }
  const probes: ProbePartition[] = partitions.map((p) => ({ fs: p.fs, startBytes: p.startBytes, device: opts.partitionDevice?.(p.number) ?? null }));
  const os = opts.probeOs === false ? null : await probeOs(disk.path, probes);
  const inventory: DiskInventory = {
    disk: {
      model: disk.model, serial: disk.serial, sizeBytes: disk.sizeBytes, sectorBytes: disk.sectorBytes, table: table.kind,
      partitions: partitions.map((p) => ({ number: p.number, startBytes: p.startBytes, sizeBytes: p.sizeBytes, type: p.type, fs: p.fs, label: p.label, fsUuid: p.fsUuid, usedBytes: p.usedBytes })),
    },
    os,
    madeBy: opts.madeBy,
  };
  const image: DiskImage = { format: DISK_IMAGE_FORMAT, chunkBytes, sectorBytes: disk.sectorBytes, sizeBytes: disk.sizeBytes, table: table.kind, head: { length: headLength, chunks: headChunks }, partitions, inventory };
  return { image, bytesRead, bytesStored, chunksStored, chunksTotal };
}
