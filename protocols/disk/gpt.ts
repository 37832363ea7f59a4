// GUID Partition Table (UEFI 2.10, section 5.3): header at LBA 1 (and its backup at the last
// LBA), an array of entries (usually 128 x 128 bytes) after the primary header and before the
// backup one, all in units of the disk's logical sector (512 bytes, or 4096 on a 4Kn disk: the
// header is then at byte 4096 and the usual array takes 4 sectors, not 32), both guarded by CRC-32 (IEEE 802.3: crc32.ts). Pure codec: decode checks
// signature, sizes and both CRCs; encode lays out the primary and backup copies for a disk of a
// given size, so a table read from one disk can be written onto a larger one (backup moved to the
// end, last partition grown).
import { ProtocolError } from '../../platform/runtime/errors.ts';
import { crc32 } from './crc32.ts';

export const GPT_SIGNATURE = 'EFI PART';
export const GPT_REVISION = 0x00010000;
export const GPT_HEADER_BYTES = 92;

export interface GptEntry {
  /** 1-based index in the entry array (what Linux calls the partition number). */
  readonly number: number;
  /** Partition type GUID, lowercase text form. */
  readonly type: string;
  readonly guid: string;
  readonly firstLba: bigint;
  /** Inclusive. */
  readonly lastLba: bigint;
  readonly attributes: bigint;
  readonly name: string;
}

export interface GptHeader {
  readonly revision: number;
  readonly headerBytes: number;
  readonly currentLba: bigint;
  readonly backupLba: bigint;
  readonly firstUsableLba: bigint;
  readonly lastUsableLba: bigint;
  readonly diskGuid: string;
  readonly entriesLba: bigint;
  readonly entryCount: number;
  readonly entryBytes: number;
  readonly entriesCrc: number;
}

export interface Gpt {
  readonly diskGuid: string;
  readonly firstUsableLba: bigint;
  readonly lastUsableLba: bigint;
  readonly entryCount: number;
  readonly entryBytes: number;
  /** Non-empty entries (type GUID not all zero), by number. */
  readonly entries: readonly GptEntry[];
}

function fail(message: string): never {
  throw new ProtocolError('gpt', message);
}

/** Mixed-endian GUID bytes (UEFI appendix A) to the usual text form. */
export function guidToString(b: Uint8Array): string {
  const h = (i: number): string => b[i]!.toString(16).padStart(2, '0');
  return `${h(3)}${h(2)}${h(1)}${h(0)}-${h(5)}${h(4)}-${h(7)}${h(6)}-${h(8)}${h(9)}-${h(10)}${h(11)}${h(12)}${h(13)}${h(14)}${h(15)}`;
}

export function guidToBytes(s: string): Buffer {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i.exec(s);
  if (m === null) throw new RangeError(`not a GUID: ${s}`);
  const b = Buffer.alloc(16);
  b.writeUInt32LE(Number.parseInt(m[1]!, 16), 0);
  b.writeUInt16LE(Number.parseInt(m[2]!, 16), 4);
  b.writeUInt16LE(Number.parseInt(m[3]!, 16), 6);
  Buffer.from(m[4]! + m[5]!, 'hex').copy(b, 8);
  return b;
}

export const ZERO_GUID = '00000000-0000-0000-0000-000000000000';

/** Decodes a header sector (the sector at LBA 1, or the last one for the backup). */
export function decodeGptHeader(sector: Uint8Array): GptHeader {
  if (sector.length < GPT_HEADER_BYTES) fail(`header needs ${GPT_HEADER_BYTES} bytes, got ${sector.length}`);
  const b = Buffer.from(sector.buffer, sector.byteOffset, sector.length);
  if (b.toString('latin1', 0, 8) !== GPT_SIGNATURE) fail('no "EFI PART" signature');
  const revision = b.readUInt32LE(8);
  const headerBytes = b.readUInt32LE(12);
  if (headerBytes < GPT_HEADER_BYTES || headerBytes > b.length) fail(`header size ${headerBytes} out of range`);
  const stored = b.readUInt32LE(16);
  const copy = Buffer.from(b.subarray(0, headerBytes));
  copy.writeUInt32LE(0, 16);
  if (crc32(copy) !== stored) fail('header CRC-32 does not match');
  const entryCount = b.readUInt32LE(80);
  const entryBytes = b.readUInt32LE(84);
  if (entryBytes < 128 || entryBytes % 8 !== 0 || entryBytes > 4096) fail(`entry size ${entryBytes} is not a multiple of 8 in 128-4096`);
  if (entryCount === 0 || entryCount > 16384) fail(`entry count ${entryCount} out of range`);
  const h: GptHeader = {
    revision, headerBytes,
    currentLba: b.readBigUInt64LE(24), backupLba: b.readBigUInt64LE(32),
    firstUsableLba: b.readBigUInt64LE(40), lastUsableLba: b.readBigUInt64LE(48),
    diskGuid: guidToString(b.subarray(56, 72)), entriesLba: b.readBigUInt64LE(72),
    entryCount, entryBytes, entriesCrc: b.readUInt32LE(88),
  };
  if (h.firstUsableLba > h.lastUsableLba + 1n) fail('first usable LBA is after the last usable one');
  return h;
}

/** Decodes the entry array a header points at; `bytes` must hold entryCount x entryBytes. */
export function decodeGptEntries(h: GptHeader, bytes: Uint8Array): Gpt {
  const len = h.entryCount * h.entryBytes;
  if (bytes.length < len) fail(`entry array needs ${len} bytes, got ${bytes.length}`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, len);
  if (crc32(b) !== h.entriesCrc) fail('entry array CRC-32 does not match');
  const entries: GptEntry[] = [];
  for (let i = 0; i < h.entryCount; i++) {
    const o = i * h.entryBytes;
    const type = guidToString(b.subarray(o, o + 16));
    if (type === ZERO_GUID) continue;
    const firstLba = b.readBigUInt64LE(o + 32);
    const lastLba = b.readBigUInt64LE(o + 40);
    if (lastLba < firstLba) fail(`entry ${i + 1}: ends before it starts`);
    if (firstLba < h.firstUsableLba || lastLba > h.lastUsableLba) fail(`entry ${i + 1}: outside the usable LBAs`);
    const nameBytes = b.subarray(o + 56, o + Math.min(128, h.entryBytes));
    let end = 0;
    while (end + 1 < nameBytes.length && (nameBytes[end] !== 0 || nameBytes[end + 1] !== 0)) end += 2;
    entries.push({ number: i + 1, type, guid: guidToString(b.subarray(o + 16, o + 32)), firstLba, lastLba, attributes: b.readBigUInt64LE(o + 48), name: nameBytes.subarray(0, end).toString('utf16le') });
  }
  const sorted = [...entries].sort((x, y) => (x.firstLba < y.firstLba ? -1 : 1));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1]!.lastLba >= sorted[i]!.firstLba) fail(`entries ${sorted[i - 1]!.number} and ${sorted[i]!.number} overlap`);
  }
  return { diskGuid: h.diskGuid, firstUsableLba: h.firstUsableLba, lastUsableLba: h.lastUsableLba, entryCount: h.entryCount, entryBytes: h.entryBytes, entries };
}

export function encodeGptEntries(g: Gpt): Buffer {
  const b = Buffer.alloc(g.entryCount * g.entryBytes);
  for (const e of g.entries) {
    if (e.number < 1 || e.number > g.entryCount) throw new RangeError(`entry number ${e.number} outside 1-${g.entryCount}`);
    const o = (e.number - 1) * g.entryBytes;
    guidToBytes(e.type).copy(b, o);
    guidToBytes(e.guid).copy(b, o + 16);
    b.writeBigUInt64LE(e.firstLba, o + 32);
    b.writeBigUInt64LE(e.lastLba, o + 40);
    b.writeBigUInt64LE(e.attributes, o + 48);
    const name = Buffer.from(e.name, 'utf16le');
    if (name.length > 72) throw new RangeError(`entry ${e.number}: name longer than 36 UTF-16 units`);
    name.copy(b, o + 56);
  }
  return b;
}

function encodeHeader(g: Gpt, sectorBytes: number, currentLba: bigint, backupLba: bigint, entriesLba: bigint, entriesCrc: number): Buffer {
  const b = Buffer.alloc(sectorBytes);
  b.write(GPT_SIGNATURE, 0, 'latin1');
  b.writeUInt32LE(GPT_REVISION, 8);
  b.writeUInt32LE(GPT_HEADER_BYTES, 12);
  b.writeBigUInt64LE(currentLba, 24);
  b.writeBigUInt64LE(backupLba, 32);
  b.writeBigUInt64LE(g.firstUsableLba, 40);
  b.writeBigUInt64LE(g.lastUsableLba, 48);
  guidToBytes(g.diskGuid).copy(b, 56);
  b.writeBigUInt64LE(entriesLba, 72);
  b.writeUInt32LE(g.entryCount, 80);
  b.writeUInt32LE(g.entryBytes, 84);
  b.writeUInt32LE(entriesCrc, 88);
  b.writeUInt32LE(crc32(b.subarray(0, GPT_HEADER_BYTES)), 16);
  return b;
}

export interface EncodedGpt {
  /** LBA 1 onwards: primary header, then the entry array. Write at byte sectorBytes. */
  readonly primary: Buffer;
  /** The backup entry array then the backup header: write at byte `backupOffset`, it ends the disk. */
  readonly backup: Buffer;
  readonly backupOffset: number;
}

/** Sectors the entry array takes (32 of 512 bytes, or 4 of 4096, for the usual 128 x 128 bytes). */
export function entrySectors(g: Pick<Gpt, 'entryCount' | 'entryBytes'>, sectorBytes: number): number {
  return Math.ceil((g.entryCount * g.entryBytes) / sectorBytes);
}

/** Bytes the backup copy takes at the disk's end: its entry array and the header sector after it. */
export function backupGptBytes(g: Pick<Gpt, 'entryCount' | 'entryBytes'>, sectorBytes: number): number {
  return (entrySectors(g, sectorBytes) + 1) * sectorBytes;
}

/**
 * Both copies for a disk of `diskSectors` sectors: primary header at LBA 1 with entries at LBA 2,
 * backup header at the last LBA with its entries just before it. The table's last usable LBA
 * must fit the disk (use `fitGpt` to grow it first).
 */
export function encodeGpt(g: Gpt, sectorBytes: number, diskSectors: bigint): EncodedGpt {
  const es = BigInt(entrySectors(g, sectorBytes));
  const lastLba = diskSectors - 1n;
  const backupEntriesLba = lastLba - es;
  if (g.lastUsableLba >= backupEntriesLba) throw new RangeError(`last usable LBA ${g.lastUsableLba} does not fit a disk of ${diskSectors} sectors`);
  if (g.firstUsableLba < 2n + es) throw new RangeError(`first usable LBA ${g.firstUsableLba} overlaps the primary entries`);
  const entries = encodeGptEntries(g);
  const padded = Buffer.alloc(Number(es) * sectorBytes);
  entries.copy(padded);
  const crc = crc32(entries);
  const primary = Buffer.concat([encodeHeader(g, sectorBytes, 1n, lastLba, 2n, crc), padded]);
  const backup = Buffer.concat([padded, encodeHeader(g, sectorBytes, lastLba, 1n, backupEntriesLba, crc)]);
  return { primary, backup, backupOffset: Number(backupEntriesLba) * sectorBytes };
}

/** The last usable LBA on a disk of `diskSectors` sectors with this entry array size. */
export function lastUsableFor(g: Pick<Gpt, 'entryCount' | 'entryBytes'>, sectorBytes: number, diskSectors: bigint): bigint {
  return diskSectors - 2n - BigInt(entrySectors(g, sectorBytes));
}

/**
 * The table for another disk size: last usable LBA moved to that disk's end; with `growLast`,
 * the partition that ends last is grown to the new last usable LBA (aligned down to
 * `alignSectors`). Fails if a partition would not fit.
 */
export function fitGpt(g: Gpt, sectorBytes: number, diskSectors: bigint, growLast: boolean, alignSectors = 1n): Gpt {
  const lastUsable = lastUsableFor(g, sectorBytes, diskSectors);
  for (const e of g.entries) if (e.lastLba > lastUsable) throw new RangeError(`partition ${e.number} ends at LBA ${e.lastLba}, past the last usable LBA ${lastUsable} of a disk of ${diskSectors} sectors`);
  let entries = g.entries;
  if (growLast && entries.length > 0) {
    const last = entries.reduce((a, e) => (e.lastLba > a.lastLba ? e : a));
    const end = ((lastUsable + 1n) / alignSectors) * alignSectors - 1n;
    if (end > last.lastLba) entries = entries.map((e) => (e === last ? { ...e, lastLba: end } : e));
  }
  return { ...g, lastUsableLba: lastUsable, entries };
}
