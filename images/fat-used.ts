// Used clusters of a FAT12/16/32 file system (Microsoft's "FAT: General Overview of On-Disk
// Format" 1.03): the reserved area, the FATs and the FAT12/16 root directory always; each data
// cluster whose FAT entry is not 0. The type follows from the cluster count, as the spec says.
import { bitmapRuns, clip, normalize, scale, type Extent } from './extents.ts';
import type { FsUsage, ReadAt } from './used-blocks.ts';

const pow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** null when the boot sector is not a FAT one. */
export async function fatUsage(read: ReadAt, sizeBytes: number, head: Buffer): Promise<FsUsage | null> {
  if (head[510] !== 0x55 || head[511] !== 0xaa || (head[0] !== 0xeb && head[0] !== 0xe9)) return null;
  const bps = head.readUInt16LE(0x0b);
  const spc = head[0x0d]!;
  const reserved = head.readUInt16LE(0x0e);
  const fats = head[0x10]!;
  const rootEntries = head.readUInt16LE(0x11);
  const total = head.readUInt16LE(0x13) || head.readUInt32LE(0x20);
  const fatSectors = head.readUInt16LE(0x16) || head.readUInt32LE(0x24);
  if (![512, 1024, 2048, 4096].includes(bps) || !pow2(spc) || reserved === 0 || fats === 0 || fats > 4 || fatSectors === 0 || total === 0) return null;
  if (total * bps > sizeBytes + bps) return null;
  const rootSectors = Math.ceil((rootEntries * 32) / bps);
  const dataStart = reserved + fats * fatSectors + rootSectors;
  if (dataStart >= total) return null;
  const clusters = Math.floor((total - dataStart) / spc);
  const fs = clusters < 4085 ? 'fat12' : clusters < 65525 ? 'fat16' : 'fat32';
  const ext = fs === 'fat32' ? 0x40 : 0x24; // extended BPB (drive number) offset
  const hasExt = head[ext + 2] === 0x29;
  const idText = (v: number): string => {
    const h = v.toString(16).toUpperCase().padStart(8, '0');
    return `${h.slice(0, 4)}-${h.slice(4)}`;
  };
  const rawLabel = hasExt ? head.toString('latin1', ext + 7, ext + 18).trimEnd() : '';
  const fsUuid = hasExt ? idText(head.readUInt32LE(ext + 3)) : null;
  const fat = await read(reserved * bps, fatSectors * bps);
  const bits = fs === 'fat12' ? 12 : fs === 'fat16' ? 16 : 32;
  const maxEntries = Math.floor((fat.length * 8) / bits);
  const n = Math.min(clusters, maxEntries - 2);
  const inUse = new Uint8Array(Math.ceil(n / 8));
  for (let c = 0; c < n; c++) {
    const k = c + 2;
    let v: number;
    if (bits === 16) v = fat.readUInt16LE(k * 2);
    else if (bits === 32) v = fat.readUInt32LE(k * 4) & 0x0fffffff;
    else {
      const o = Math.floor((k * 3) / 2);
      const w = fat.readUInt16LE(o);
      v = k & 1 ? w >>> 4 : w & 0xfff;
    }
    if (v !== 0) inUse[c >>> 3]! |= 1 << (c & 7);
  }
  const runs: Extent[] = [];
  bitmapRuns(inUse, n, 0, runs);
  const clusterBytes = spc * bps;
  const used = clip(normalize([{ start: 0, length: dataStart * bps }, ...scale(runs, clusterBytes, dataStart * bps)]), Math.min(sizeBytes, total * bps));
  return { fs, label: rawLabel === '' || rawLabel === 'NO NAME' ? null : rawLabel, fsUuid, blockBytes: clusterBytes, used, whole: false, note: null };
}
