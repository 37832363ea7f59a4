// Used clusters of an NTFS volume from its own $Bitmap (MFT record 6, the unnamed $DATA
// attribute: one bit per cluster), read through the boot sector, the MFT record's update
// sequence fixups and the attribute's run list. Own parser rather than partclone.ntfs's map:
// it is 150 lines, needs no tool in the preboot image, and reads only the bitmap. The volume
// label comes from $Volume (record 3). The backup boot sector (the partition's last sector,
// outside the clusters the bitmap covers) is always kept. A $Bitmap described through an
// $ATTRIBUTE_LIST (extremely fragmented) is taken whole.
import { errorMessage } from '../platform/runtime/errors.ts';
import { bitmapRuns, clip, normalize, scale, type Extent } from './extents.ts';
import { wholePartition, type FsUsage, type ReadAt } from './used-blocks.ts';

interface Run {
  readonly vcn: number;
  readonly lcn: number | null; // null: sparse
  readonly clusters: number;
}

/** Decodes an attribute's mapping pairs (run list). */
export function decodeRunList(b: Buffer, at: number, end: number): Run[] {
  const runs: Run[] = [];
  let o = at;
  let vcn = 0;
  let lcn = 0;
  while (o < end && b[o] !== 0) {
    const lenBytes = b[o]! & 0x0f;
    const offBytes = b[o]! >>> 4;
    o++;
    if (lenBytes === 0 || lenBytes > 8 || offBytes > 8 || o + lenBytes + offBytes > end) throw new Error('bad run list');
    const clusters = b.readUIntLE(o, Math.min(lenBytes, 6));
    o += lenBytes;
    if (offBytes === 0) runs.push({ vcn, lcn: null, clusters });
    else {
      lcn += b.readIntLE(o, Math.min(offBytes, 6));
      runs.push({ vcn, lcn, clusters });
    }
    o += offBytes;
    vcn += clusters;
  }
  return runs;
}

/** ntfs-3g's NTFS_BLOCK_SIZE: the fixup stride, whatever the volume's sector size. */
const FIXUP_STRIDE = 512;

/**
 * Applies the update sequence array (fixups) of a multi-sector record in place, one fixup per
 * 512 bytes (a 4096-byte record on a 4Kn volume has 8, not 1).
 */
function applyFixups(rec: Buffer): void {
  const usaOffset = rec.readUInt16LE(4);
  const usaCount = rec.readUInt16LE(6);
  if (usaCount < 1 || usaOffset + usaCount * 2 > rec.length) throw new Error('bad update sequence');
  const usn = rec.readUInt16LE(usaOffset);
  for (let i = 1; i < usaCount; i++) {
    const tail = i * FIXUP_STRIDE - 2;
    if (tail + 2 > rec.length) break;
    if (rec.readUInt16LE(tail) !== usn) throw new Error(`update sequence mismatch in sector ${i}`);
    rec.writeUInt16LE(rec.readUInt16LE(usaOffset + i * 2), tail);
  }
}

interface Attribute {
  readonly type: number;
  readonly nameLength: number;
  readonly nonResident: boolean;
  readonly at: number;
  readonly length: number;
}

function attributes(rec: Buffer): Attribute[] {
  const out: Attribute[] = [];
  let o = rec.readUInt16LE(0x14);
  while (o + 16 <= rec.length) {
    const type = rec.readUInt32LE(o);
    if (type === 0xffffffff) break;
    const length = rec.readUInt32LE(o + 4);
    if (length < 16 || o + length > rec.length) throw new Error('bad attribute length');
    out.push({ type, nameLength: rec[o + 9]!, nonResident: rec[o + 8] === 1, at: o, length });
    o += length;
  }
  return out;
}

export async function ntfsUsage(read: ReadAt, sizeBytes: number, head: Buffer): Promise<FsUsage> {
  const bps = head.readUInt16LE(0x0b);
  const spcRaw = head[0x0d]!;
  const spc = spcRaw > 0x80 ? 2 ** (256 - spcRaw) : spcRaw;
  const totalSectors = Number(head.readBigUInt64LE(0x28));
  const mftLcn = Number(head.readBigUInt64LE(0x30));
  const recRaw = head.readInt8(0x40);
  const clusterBytes = bps * spc;
  const recordBytes = recRaw > 0 ? recRaw * clusterBytes : 2 ** -recRaw;
  const serial = head.readBigUInt64LE(0x48).toString(16).toUpperCase().padStart(16, '0');
  const whole = (why: string): FsUsage => ({ ...wholePartition(sizeBytes, 'ntfs', `NTFS ${why}: taken whole`), fsUuid: serial });
  if (![512, 1024, 2048, 4096].includes(bps) || spc === 0 || recordBytes < 512 || recordBytes > 65536 || totalSectors * bps > sizeBytes) return whole('boot sector values out of range');
  const record = async (n: number): Promise<Buffer> => {
    const rec = await read(mftLcn * clusterBytes + n * recordBytes, recordBytes);
    if (rec.toString('latin1', 0, 4) !== 'FILE') throw new Error(`MFT record ${n} has no FILE signature`);
    applyFixups(rec);
    return rec;
  };
  try {
    let label: string | null = null;
    const vol = await record(3);
    const name = attributes(vol).find((a) => a.type === 0x60 && !a.nonResident);
    if (name !== undefined) {
      const len = vol.readUInt32LE(name.at + 0x10);
      const off = vol.readUInt16LE(name.at + 0x14);
      label = vol.toString('utf16le', name.at + off, name.at + off + len) || null;
    }
    const rec = await record(6);
    const data = attributes(rec).find((a) => a.type === 0x80 && a.nameLength === 0 && a.nonResident);
    if (data === undefined) return whole('$Bitmap has no non-resident $DATA in its base record');
    const runListAt = data.at + rec.readUInt16LE(data.at + 0x20);
    const bitmapBytes = Number(rec.readBigUInt64LE(data.at + 0x30));
    const runs = decodeRunList(rec, runListAt, data.at + data.length);
    const clusters = Math.floor(totalSectors / spc);
    if (bitmapBytes * 8 < clusters) return whole('$Bitmap shorter than the volume');
    const bitmap = Buffer.alloc(bitmapBytes);
    for (const r of runs) {
      const at = r.vcn * clusterBytes;
      if (at >= bitmapBytes) break;
      const len = Math.min(r.clusters * clusterBytes, bitmapBytes - at);
      if (r.lcn !== null) (await read(r.lcn * clusterBytes, len)).copy(bitmap, at);
    }
    const used: Extent[] = [];
    bitmapRuns(bitmap, clusters, 0, used);
    const bytes = scale(used, clusterBytes);
    // The backup boot sector and anything past the last whole cluster.
    const tail = Math.min(clusters * clusterBytes, sizeBytes - bps);
    bytes.push({ start: tail, length: sizeBytes - tail });
    return { fs: 'ntfs', label, fsUuid: serial, blockBytes: clusterBytes, used: clip(normalize(bytes), sizeBytes), whole: false, note: null };
  } catch (err) {
    return whole(`metadata not understood (${errorMessage(err)})`);
  }
}
