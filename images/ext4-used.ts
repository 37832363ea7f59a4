// Used blocks of an ext2/3/4 file system from its own metadata (the kernel's
// Documentation/filesystems/ext4/ on-disk format): the superblock, the group descriptors, and
// each group's block bitmap. A group flagged BLOCK_UNINIT (with uninit_bg / metadata_csum) has no
// bitmap on disk: its used blocks are computed as the kernel's ext4_init_block_bitmap does, the
// superblock backup and descriptor copies it holds plus any group's bitmaps and inode table
// placed in it (flex_bg puts them all in the first group of each flex group).
// meta_bg layouts are taken whole (their descriptor blocks are scattered; not parsed here).
import { bitmapRuns, clip, normalize, scale, type Extent } from './extents.ts';
import { wholePartition, type FsUsage, type ReadAt } from './used-blocks.ts';

const INCOMPAT_EXTENTS = 0x40;
const INCOMPAT_64BIT = 0x80;
const INCOMPAT_META_BG = 0x10;
const COMPAT_HAS_JOURNAL = 0x4;
const COMPAT_SPARSE_SUPER2 = 0x200;
const RO_SPARSE_SUPER = 0x1;
const RO_GDT_CSUM = 0x10;
const RO_METADATA_CSUM = 0x400;
const BG_BLOCK_UNINIT = 0x2;

function isPowerOf(n: number, base: number): boolean {
  let x = n;
  while (x > 1 && x % base === 0) x /= base;
  return x === 1;
}

export function uuidText(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export async function ext4Usage(read: ReadAt, sizeBytes: number, head: Buffer): Promise<FsUsage> {
  const sb = head.subarray(1024, 2048);
  const logBlock = sb.readUInt32LE(0x18);
  const compat = sb.readUInt32LE(0x5c);
  const incompat = sb.readUInt32LE(0x60);
  const roCompat = sb.readUInt32LE(0x64);
  const fs = incompat & INCOMPAT_EXTENTS ? 'ext4' : compat & COMPAT_HAS_JOURNAL ? 'ext3' : 'ext2';
  if (logBlock > 6) return wholePartition(sizeBytes, fs, `block size 2^${10 + logBlock} not understood: taken whole`);
  const blockBytes = 1024 << logBlock;
  const is64 = (incompat & INCOMPAT_64BIT) !== 0;
  const blocks = sb.readUInt32LE(0x04) + (is64 ? sb.readUInt32LE(0x150) * 2 ** 32 : 0);
  const firstDataBlock = sb.readUInt32LE(0x14);
  const perGroup = sb.readUInt32LE(0x20);
  const inodesPerGroup = sb.readUInt32LE(0x28);
  const revLevel = sb.readUInt32LE(0x4c);
  const inodeBytes = revLevel >= 1 ? sb.readUInt16LE(0x58) : 128;
  const descBytes = is64 ? sb.readUInt16LE(0xfe) : 32;
  const reservedGdt = sb.readUInt16LE(0xce);
  const label = sb.subarray(0x78, 0x88).toString('utf8').replace(/\0.*$/s, '') || null;
  const fsUuid = uuidText(sb.subarray(0x68, 0x78));
  const base = { fs, label, fsUuid, blockBytes };
  if (incompat & INCOMPAT_META_BG) return { ...wholePartition(sizeBytes, fs, 'ext4 meta_bg layout is not parsed: taken whole'), label, fsUuid };
  if (perGroup === 0 || perGroup % 8 !== 0 || descBytes < 32 || blocks * blockBytes > sizeBytes + blockBytes || blocks <= firstDataBlock) {
    return { ...wholePartition(sizeBytes, fs, 'ext superblock values out of range: taken whole'), label, fsUuid };
  }
  const groups = Math.ceil((blocks - firstDataBlock) / perGroup);
  const gdtBlocks = Math.ceil((groups * descBytes) / blockBytes);
  const gdt = await read((firstDataBlock + 1) * blockBytes, gdtBlocks * blockBytes);
  const uninitHonoured = (roCompat & (RO_GDT_CSUM | RO_METADATA_CSUM)) !== 0;
  const sparse2 = (compat & COMPAT_SPARSE_SUPER2) !== 0;
  const backups = sparse2 ? [sb.readUInt32LE(0x24c), sb.readUInt32LE(0x250)] : [];
  const hasSuper = (g: number): boolean => {
    if (g === 0) return true;
    if (sparse2) return backups.includes(g);
    if (!(roCompat & RO_SPARSE_SUPER)) return true;
    return g === 1 || isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7);
  };
  const itableBlocks = Math.ceil((inodesPerGroup * inodeBytes) / blockBytes);
  const desc = (g: number) => {
    const o = g * descBytes;
    const hi = (off: number): number => (is64 && descBytes >= 64 ? gdt.readUInt32LE(o + off) * 2 ** 32 : 0);
    return {
      blockBitmap: gdt.readUInt32LE(o) + hi(0x20),
      inodeBitmap: gdt.readUInt32LE(o + 4) + hi(0x24),
      inodeTable: gdt.readUInt32LE(o + 8) + hi(0x28),
      flags: gdt.readUInt16LE(o + 0x12),
    };
  };
  const descs = Array.from({ length: groups }, (_, g) => desc(g));
  // Every group's metadata, by the group it lies in: what a BLOCK_UNINIT group holds.
  const metaIn = new Map<number, Extent[]>();
  const addMeta = (start: number, length: number): void => {
    const g = Math.floor((start - firstDataBlock) / perGroup);
    const list = metaIn.get(g) ?? [];
    list.push({ start, length });
    metaIn.set(g, list);
  };
  for (const d of descs) {
    addMeta(d.blockBitmap, 1);
    addMeta(d.inodeBitmap, 1);
    addMeta(d.inodeTable, itableBlocks);
  }
  const runs: Extent[] = [];
  if (firstDataBlock > 0) runs.push({ start: 0, length: firstDataBlock }); // 1 KiB blocks: the boot block
  for (let g = 0; g < groups; g++) {
    const first = firstDataBlock + g * perGroup;
    const count = Math.min(perGroup, blocks - first);
    const d = descs[g]!;
    if (uninitHonoured && d.flags & BG_BLOCK_UNINIT) {
      if (hasSuper(g)) runs.push({ start: first, length: Math.min(count, 1 + gdtBlocks + reservedGdt) });
      for (const m of metaIn.get(g) ?? []) runs.push(m);
      continue;
    }
    if (d.blockBitmap >= blocks) return { ...wholePartition(sizeBytes, fs, `group ${g}: block bitmap at ${d.blockBitmap}, past the end: taken whole`), label, fsUuid };
    const bitmap = await read(d.blockBitmap * blockBytes, blockBytes);
    bitmapRuns(bitmap, count, first, runs);
  }
  const used = clip(normalize(scale(runs, blockBytes)), Math.min(sizeBytes, blocks * blockBytes));
  return { ...base, used, whole: false, note: null };
}
