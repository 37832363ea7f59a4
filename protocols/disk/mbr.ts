// The classic MBR partition table (sector 0): 446 bytes of boot code, four 16-byte primary
// entries at 0x1BE, the signature 55 AA at 0x1FE. Extended partitions (types 05, 0F, 85) are
// refused by name: logical partitions live in a chain of EBRs that this codec does not follow.
// Pure codec: bytes in, typed value out; encode writes back the same bytes for a decoded table.
import { ProtocolError } from '../../platform/runtime/errors.ts';

export const MBR_BYTES = 512;
export const EXTENDED_TYPES: readonly number[] = [0x05, 0x0f, 0x85];
export const GPT_PROTECTIVE_TYPE = 0xee;

export interface MbrEntry {
  /** 1-4: the slot. */
  readonly number: number;
  /** 0x80 = active (bootable), 0x00 otherwise. */
  readonly status: number;
  readonly type: number;
  readonly firstLba: number;
  readonly sectors: number;
  /** The CHS fields as stored (kept so an unchanged table encodes to the same bytes). */
  readonly chsFirst: readonly [number, number, number];
  readonly chsLast: readonly [number, number, number];
}

export interface Mbr {
  /** The 440 bytes of boot code before the disk signature. */
  readonly bootCode: Buffer;
  readonly diskSignature: number;
  /** Bytes 444-445 (usually 0; 5A5A marks copy protection). */
  readonly reserved: number;
  /** Non-empty entries only (type != 0), in slot order. */
  readonly entries: readonly MbrEntry[];
}

function fail(message: string): never {
  throw new ProtocolError('mbr', message);
}

export function decodeMbr(sector: Uint8Array): Mbr {
  if (sector.length < MBR_BYTES) fail(`needs ${MBR_BYTES} bytes, got ${sector.length}`);
  const b = Buffer.from(sector.buffer, sector.byteOffset, MBR_BYTES);
  if (b[510] !== 0x55 || b[511] !== 0xaa) fail('no boot signature 55 AA at byte 510');
  const entries: MbrEntry[] = [];
  for (let i = 0; i < 4; i++) {
    const o = 0x1be + i * 16;
    const type = b[o + 4]!;
    if (type === 0) continue;
    const status = b[o]!;
    if (status !== 0 && status !== 0x80) fail(`entry ${i + 1}: status 0x${status.toString(16)} is neither 0x00 nor 0x80`);
    if (EXTENDED_TYPES.includes(type)) fail(`entry ${i + 1}: extended partition (type 0x${type.toString(16).padStart(2, '0')}): logical partitions are not supported`);
    const firstLba = b.readUInt32LE(o + 8);
    const sectors = b.readUInt32LE(o + 12);
    if (sectors === 0) fail(`entry ${i + 1}: zero sectors`);
    if (firstLba === 0) fail(`entry ${i + 1}: starts at sector 0 (the MBR itself)`);
    entries.push({ number: i + 1, status, type, firstLba, sectors, chsFirst: [b[o + 1]!, b[o + 2]!, b[o + 3]!], chsLast: [b[o + 5]!, b[o + 6]!, b[o + 7]!] });
  }
  if (!entries.some((e) => e.type === GPT_PROTECTIVE_TYPE)) {
    const sorted = [...entries].sort((x, y) => x.firstLba - y.firstLba);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      if (prev.firstLba + prev.sectors > sorted[i]!.firstLba) fail(`entries ${prev.number} and ${sorted[i]!.number} overlap`);
    }
  }
  return { bootCode: Buffer.from(b.subarray(0, 440)), diskSignature: b.readUInt32LE(440), reserved: b.readUInt16LE(444), entries };
}

/** The 512-byte sector. CHS fields are written as given (LBA is what every current system reads). */
export function encodeMbr(m: Mbr): Buffer {
  const b = Buffer.alloc(MBR_BYTES);
  if (m.bootCode.length !== 440) throw new RangeError('bootCode must be 440 bytes');
  m.bootCode.copy(b, 0);
  b.writeUInt32LE(m.diskSignature >>> 0, 440);
  b.writeUInt16LE(m.reserved, 444);
  for (const e of m.entries) {
    if (e.number < 1 || e.number > 4) throw new RangeError(`entry number ${e.number} outside 1-4`);
    const o = 0x1be + (e.number - 1) * 16;
    b[o] = e.status;
    b[o + 1] = e.chsFirst[0];
    b[o + 2] = e.chsFirst[1];
    b[o + 3] = e.chsFirst[2];
    b[o + 4] = e.type;
    b[o + 5] = e.chsLast[0];
    b[o + 6] = e.chsLast[1];
    b[o + 7] = e.chsLast[2];
    b.writeUInt32LE(e.firstLba, o + 8);
    b.writeUInt32LE(e.sectors, o + 12);
  }
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

/** CHS of an LBA for the usual 255 heads x 63 sectors geometry, saturating at FE FF FF. */
export function lbaToChs(lba: number): [number, number, number] {
  const c = Math.floor(lba / (255 * 63));
  if (c > 1023) return [0xfe, 0xff, 0xff];
  const h = Math.floor(lba / 63) % 255;
  const s = (lba % 63) + 1;
  return [h, ((c >> 2) & 0xc0) | s, c & 0xff];
}
