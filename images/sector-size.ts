// The logical sector size of a raw disk image file, which (unlike a block device) does not say
// it. A GPT header ("EFI PART", UEFI 2.10 section 5.3.2: at LBA 1) at byte 512 means 512, at byte
// 4096 means 4096. With an MBR alone, the first partition's start is read both as LBA x 512 and
// as LBA x 4096: the one where a file system we recognise begins (ext superblock magic, an NTFS
// or FAT boot sector) wins. Neither, or both: 512, the size nearly every image file has.
// `netboot image import --sector-bytes` says it outright instead.
import { decodeMbr, GPT_PROTECTIVE_TYPE } from '../protocols/disk/mbr.ts';
import type { ReadAt } from './used-blocks.ts';

export type SectorBytes = 512 | 4096;

export interface SectorGuess {
  readonly sectorBytes: SectorBytes;
  readonly why: string;
}

/** A file system we know begins in these 4 KiB (the first bytes of a partition). */
export function looksLikeFileSystem(b: Buffer): boolean {
  if (b.length >= 1082 && b.readUInt16LE(1080) === 0xef53) return true;
  if (b.length >= 11 && b.toString('latin1', 3, 11) === 'NTFS    ') return true;
  return b.length >= 512 && b[510] === 0x55 && b[511] === 0xaa && (b[0] === 0xeb || b[0] === 0xe9) && [512, 1024, 2048, 4096].includes(b.readUInt16LE(11));
}

export async function guessSectorBytes(read: ReadAt, sizeBytes: number): Promise<SectorGuess> {
  if (sizeBytes < 8192) return { sectorBytes: 512, why: 'too small to tell: 512' };
  const head = await read(0, 8192);
  if (head.toString('latin1', 512, 520) === 'EFI PART') return { sectorBytes: 512, why: 'GPT header at byte 512' };
  if (head.toString('latin1', 4096, 4104) === 'EFI PART') return { sectorBytes: 4096, why: 'GPT header at byte 4096' };
  let first: number | undefined;
  try {
    const mbr = decodeMbr(head);
    if (mbr.entries.some((e) => e.type === GPT_PROTECTIVE_TYPE)) return { sectorBytes: 512, why: 'protective MBR without a GPT header at 512 or 4096: 512' };
    first = mbr.entries.length === 0 ? undefined : Math.min(...mbr.entries.map((e) => e.firstLba));
  } catch {
    return { sectorBytes: 512, why: 'no partition table: 512' };
  }
  if (first === undefined) return { sectorBytes: 512, why: 'empty MBR: 512' };
  const at = async (bytes: number): Promise<boolean> => bytes + 4096 <= sizeBytes && looksLikeFileSystem(await read(bytes, 4096));
  const small = await at(first * 512);
  const large = await at(first * 4096);
  if (large && !small) return { sectorBytes: 4096, why: `MBR: a file system begins at LBA ${first} x 4096` };
  return { sectorBytes: 512, why: small ? `MBR: a file system begins at LBA ${first} x 512` : 'MBR: no file system found at its first partition: 512' };
}
