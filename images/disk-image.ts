// A captured disk, as stored beside its chunks (disk.json in the package version): the disk's
// head (MBR, GPT, boot loader gap: the bytes before the first partition), each partition's
// place, file system, used ranges, and the chunks that hold those ranges, in order. Chunks are
// fixed windows of `chunkBytes` aligned to the partition start, each holding the span from the
// first to the last used byte of its window, with the unused bytes inside it zeroed (so garbage
// in free space neither changes a digest nor is stored). Decoding validates everything a deploy
// acts on: the description may come from another site.
import { ProtocolError } from '../platform/runtime/errors.ts';
import { backupGptBytes } from '../protocols/disk/gpt.ts';
import { isDigest } from '../packages/digest.ts';
import type { Extent } from './extents.ts';

export const DISK_IMAGE_FORMAT = 1;
/** 64 KiB: bench/imaging/chunking.ts measured it best for both a second capture and a re-deploy. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;
/** The head stored is at most this long (the usual 1 MiB gap; boot loaders use less). */
export const MAX_HEAD_BYTES = 32 * 1024 * 1024;

export interface ChunkEntry {
  /** Byte offset within the partition (or the disk, for the head). */
  readonly offset: number;
  readonly length: number;
  readonly digest: string;
}

export interface PartitionImage {
  readonly number: number;
  readonly startBytes: number;
  readonly sizeBytes: number;
  readonly type: string;
  readonly name: string;
  readonly fs: string | null;
  readonly label: string | null;
  readonly fsUuid: string | null;
  readonly whole: boolean;
  readonly note: string | null;
  readonly usedBytes: number;
  /** Used ranges within the partition, sorted and merged. */
  readonly used: readonly Extent[];
  readonly chunks: readonly ChunkEntry[];
}

export interface DiskInventory {
  readonly disk: {
    readonly model: string | null;
    readonly serial: string | null;
    readonly sizeBytes: number;
    readonly sectorBytes: number;
    readonly table: 'gpt' | 'mbr';
    readonly partitions: readonly { number: number; startBytes: number; sizeBytes: number; type: string; fs: string | null; label: string | null; fsUuid: string | null; usedBytes: number }[];
  };
  readonly os: { family: 'linux' | 'windows'; name: string | null; version: string | null; edition: string | null } | null;
  readonly madeBy: 'capture' | 'backup' | 'import';
}

export interface DiskImage {
  readonly format: typeof DISK_IMAGE_FORMAT;
  readonly chunkBytes: number;
  readonly sectorBytes: number;
  /** The source disk's size. */
  readonly sizeBytes: number;
  readonly table: 'gpt' | 'mbr';
  /** Bytes [0, head.length) of the source disk. */
  readonly head: { readonly length: number; readonly chunks: readonly ChunkEntry[] };
  readonly partitions: readonly PartitionImage[];
  readonly inventory: DiskInventory;
}

/** The usual GPT entry array (128 entries of 128 bytes), assumed until the image's head is read. */
export const USUAL_GPT_ENTRIES = { entryCount: 128, entryBytes: 128 } as const;

/**
 * The smallest disk this image fits: the end of its last partition, plus the backup GPT (its
 * entry array and header, in the image's sectors: 33 x 512 bytes, or 5 x 4096 on a 4Kn disk).
 */
export function minimumDiskBytes(img: DiskImage, entries: { entryCount: number; entryBytes: number } = USUAL_GPT_ENTRIES): number {
  const end = Math.max(img.head.length, ...img.partitions.map((p) => p.startBytes + p.sizeBytes));
  return img.table === 'gpt' ? end + backupGptBytes(entries, img.sectorBytes) : end;
}

export function storedBytes(img: DiskImage): number {
  return [img.head.chunks, ...img.partitions.map((p) => p.chunks)].flat().reduce((n, c) => n + c.length, 0);
}

export function allChunks(img: DiskImage): ChunkEntry[] {
  return [...img.head.chunks, ...img.partitions.flatMap((p) => p.chunks)];
}

/**
 * JSON, with chunk lists and used ranges written as tuples ([offset, length, digest],
 * [start, length]): a 64 KiB chunk costs about 85 bytes of description.
 */
export function encodeDiskImage(img: DiskImage): Buffer {
  const chunks = (list: readonly ChunkEntry[]) => list.map((c) => [c.offset, c.length, c.digest]);
  const compact = {
    ...img,
    head: { length: img.head.length, chunks: chunks(img.head.chunks) },
    partitions: img.partitions.map((p) => ({ ...p, used: p.used.map((e) => [e.start, e.length]), chunks: chunks(p.chunks) })),
  };
  return Buffer.from(`${JSON.stringify(compact)}\n`, 'utf8');
}

function fail(message: string): never {
  throw new ProtocolError('disk-image', message);
}

const uint = (v: unknown, what: string): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${what}: not a non-negative integer`);
  return v;
};

function chunkList(v: unknown, what: string, limit: number, chunkBytes: number): ChunkEntry[] {
  if (!Array.isArray(v)) fail(`${what}: not a list`);
  let prevEnd = 0;
  return v.map((c: unknown, i: number) => {
    if (!Array.isArray(c) || c.length !== 3 || !isDigest(c[2])) fail(`${what}[${i}]: not [offset, length, digest]`);
    const offset = uint(c[0], `${what}[${i}] offset`);
    const length = uint(c[1], `${what}[${i}] length`);
    if (length === 0 || length > chunkBytes) fail(`${what}[${i}]: length ${length} not in 1-${chunkBytes}`);
    if (offset < prevEnd || offset + length > limit) fail(`${what}[${i}]: overlaps the previous chunk or runs past ${limit}`);
    if (Math.floor(offset / chunkBytes) !== Math.floor((offset + length - 1) / chunkBytes)) fail(`${what}[${i}]: crosses a ${chunkBytes}-byte window`);
    prevEnd = offset + length;
    return { offset, length, digest: c[2] as string };
  });
}

export function decodeDiskImage(bytes: Uint8Array): DiskImage {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  } catch {
    fail('not JSON');
  }
  if (typeof raw !== 'object' || raw === null) fail('not an object');
  if (raw.format !== DISK_IMAGE_FORMAT) fail(`unsupported format ${JSON.stringify(raw.format)}`);
  const chunkBytes = uint(raw.chunkBytes, 'chunkBytes');
  if (chunkBytes < 4096 || chunkBytes > 16 * 1024 * 1024 || (chunkBytes & (chunkBytes - 1)) !== 0) fail('chunkBytes: not a power of two in 4 KiB-16 MiB');
  const sectorBytes = uint(raw.sectorBytes, 'sectorBytes');
  if (sectorBytes !== 512 && sectorBytes !== 4096) fail('sectorBytes: not 512 or 4096');
  const sizeBytes = uint(raw.sizeBytes, 'sizeBytes');
  if (raw.table !== 'gpt' && raw.table !== 'mbr') fail('table: not gpt or mbr');
  const h = raw.head as Record<string, unknown>;
  if (typeof h !== 'object' || h === null) fail('head: missing');
  const headLength = uint(h.length, 'head.length');
  if (headLength < sectorBytes || headLength > MAX_HEAD_BYTES) fail('head.length out of range');
  const head = { length: headLength, chunks: chunkList(h.chunks, 'head.chunks', headLength, chunkBytes) };
  if (!Array.isArray(raw.partitions)) fail('partitions: not a list');
  const partitions = raw.partitions.map((p: Record<string, unknown>, i: number): PartitionImage => {
    const what = `partitions[${i}]`;
    if (typeof p !== 'object' || p === null) fail(`${what}: not an object`);
    const size = uint(p.sizeBytes, `${what}.sizeBytes`);
    const start = uint(p.startBytes, `${what}.startBytes`);
    if (start < headLength || start % sectorBytes !== 0 || size % sectorBytes !== 0) fail(`${what}: not sector aligned after the head`);
    if (!Array.isArray(p.used)) fail(`${what}.used: not a list`);
    let prev = 0;
    const used = p.used.map((e: unknown, k: number) => {
      if (!Array.isArray(e) || e.length !== 2) fail(`${what}.used[${k}]: not [start, length]`);
      const s = uint(e[0], `${what}.used[${k}] start`);
      const l = uint(e[1], `${what}.used[${k}] length`);
      if (s < prev || s + l > size || l === 0) fail(`${what}.used[${k}]: out of order or outside the partition`);
      prev = s + l;
      return { start: s, length: l };
    });
    const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
    return {
      number: uint(p.number, `${what}.number`), startBytes: start, sizeBytes: size,
      type: str(p.type) ?? fail(`${what}.type: not a string`), name: str(p.name) ?? '',
      fs: str(p.fs), label: str(p.label), fsUuid: str(p.fsUuid), whole: p.whole === true, note: str(p.note),
      usedBytes: uint(p.usedBytes, `${what}.usedBytes`), used,
      chunks: chunkList(p.chunks, `${what}.chunks`, size, chunkBytes),
    };
  });
  const sorted = [...partitions].sort((a, b) => a.startBytes - b.startBytes);
  for (let i = 1; i < sorted.length; i++) if (sorted[i - 1]!.startBytes + sorted[i - 1]!.sizeBytes > sorted[i]!.startBytes) fail(`partitions ${sorted[i - 1]!.number} and ${sorted[i]!.number} overlap`);
  if (typeof raw.inventory !== 'object' || raw.inventory === null) fail('inventory: missing');
  return { format: DISK_IMAGE_FORMAT, chunkBytes, sectorBytes, sizeBytes, table: raw.table, head, partitions, inventory: raw.inventory as DiskInventory };
}
