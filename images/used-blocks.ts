// Which bytes of a partition its file system uses: only those are read, stored and written.
// Each parser works on a read function (offset, length relative to the partition start) and
// reads only the file system's own metadata. A file system none of them recognises is taken
// whole, and says so.
import { ext4Usage } from './ext4-used.ts';
import type { Extent } from './extents.ts';
import { fatUsage } from './fat-used.ts';
import { ntfsUsage } from './ntfs-used.ts';

export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

export interface FsUsage {
  /** 'ext2' | 'ext3' | 'ext4' | 'fat12' | 'fat16' | 'fat32' | 'ntfs', or null: not recognised. */
  readonly fs: string | null;
  readonly label: string | null;
  readonly fsUuid: string | null;
  /** The file system's allocation unit (block or cluster); 512 when taken whole. */
  readonly blockBytes: number;
  /** Sorted, merged byte ranges within the partition. */
  readonly used: readonly Extent[];
  /** True when the partition is taken whole (unknown file system, or a layout we do not parse). */
  readonly whole: boolean;
  /** Why it is taken whole, when it is. */
  readonly note: string | null;
}

export function wholePartition(sizeBytes: number, fs: string | null, note: string): FsUsage {
  return { fs, label: null, fsUuid: null, blockBytes: 512, used: sizeBytes > 0 ? [{ start: 0, length: sizeBytes }] : [], whole: true, note };
}

/** Recognises the file system from its first sectors, then maps its used blocks. */
export async function fsUsage(read: ReadAt, sizeBytes: number): Promise<FsUsage> {
  if (sizeBytes < 4096) return wholePartition(sizeBytes, null, 'too small to hold a file system');
  const head = await read(0, 4096);
  if (head.readUInt16LE(1024 + 0x38) === 0xef53) return ext4Usage(read, sizeBytes, head);
  if (head.toString('latin1', 3, 11) === 'NTFS    ') return ntfsUsage(read, sizeBytes, head);
  const fat = await fatUsage(read, sizeBytes, head);
  if (fat !== null) return fat;
  return wholePartition(sizeBytes, null, 'file system not recognised (ext2/3/4, FAT12/16/32 and NTFS are): taken whole');
}
