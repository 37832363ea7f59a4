// One view of a disk's partition table, MBR or GPT, decoded from the disk's first bytes (the
// "head": LBA 0 through the GPT entry array). A protective MBR (type EE) means GPT. Pure.
import { ProtocolError } from '../../platform/runtime/errors.ts';
import { decodeGptEntries, decodeGptHeader, entrySectors, type Gpt, type GptHeader } from './gpt.ts';
import { decodeMbr, GPT_PROTECTIVE_TYPE, type Mbr } from './mbr.ts';

export interface TablePartition {
  readonly number: number;
  readonly startBytes: number;
  readonly sizeBytes: number;
  /** GPT: the type GUID; MBR: the type byte as two hex digits ("83", "07", "0c"). */
  readonly type: string;
  /** GPT partition name; '' for MBR. */
  readonly name: string;
}

export type PartitionTable =
  | { readonly kind: 'mbr'; readonly sectorBytes: number; readonly mbr: Mbr; readonly partitions: readonly TablePartition[] }
  | { readonly kind: 'gpt'; readonly sectorBytes: number; readonly mbr: Mbr; readonly gpt: Gpt; readonly header: GptHeader; readonly partitions: readonly TablePartition[] };

/** Bytes of head needed to decode the table: LBA 0-1, and the entry array once the header is known. */
export function headBytesNeeded(head: Uint8Array, sectorBytes: number): number {
  if (head.length < 2 * sectorBytes) return 2 * sectorBytes;
  const mbr = decodeMbr(head);
  if (!mbr.entries.some((e) => e.type === GPT_PROTECTIVE_TYPE)) return sectorBytes;
  const h = decodeGptHeader(head.subarray(sectorBytes, 2 * sectorBytes));
  return Number(h.entriesLba) * sectorBytes + entrySectors(h, sectorBytes) * sectorBytes;
}

export function decodePartitionTable(head: Uint8Array, sectorBytes: number): PartitionTable {
  if (sectorBytes !== 512 && sectorBytes !== 4096) throw new ProtocolError('partition-table', `sector size ${sectorBytes} is not 512 or 4096`);
  const mbr = decodeMbr(head);
  if (!mbr.entries.some((e) => e.type === GPT_PROTECTIVE_TYPE)) {
    const partitions = mbr.entries.map((e) => ({ number: e.number, startBytes: e.firstLba * sectorBytes, sizeBytes: e.sectors * sectorBytes, type: e.type.toString(16).padStart(2, '0'), name: '' }));
    return { kind: 'mbr', sectorBytes, mbr, partitions };
  }
  if (head.length < 2 * sectorBytes) throw new ProtocolError('gpt', 'head too short for the GPT header');
  const header = decodeGptHeader(head.subarray(sectorBytes, 2 * sectorBytes));
  if (header.currentLba !== 1n) throw new ProtocolError('gpt', `primary header says it is at LBA ${header.currentLba}, not 1`);
  const start = Number(header.entriesLba) * sectorBytes;
  const len = header.entryCount * header.entryBytes;
  if (header.entriesLba < 2n || head.length < start + len) throw new ProtocolError('gpt', `entry array at LBA ${header.entriesLba} is not inside the ${head.length} bytes given`);
  if (header.entriesLba + BigInt(entrySectors(header, sectorBytes)) > header.firstUsableLba) throw new ProtocolError('gpt', 'entry array overlaps the usable LBAs');
  const gpt = decodeGptEntries(header, head.subarray(start, start + len));
  const partitions = gpt.entries.map((e) => ({ number: e.number, startBytes: Number(e.firstLba) * sectorBytes, sizeBytes: Number(e.lastLba - e.firstLba + 1n) * sectorBytes, type: e.type, name: e.name }));
  return { kind: 'gpt', sectorBytes, mbr, gpt, header, partitions };
}
