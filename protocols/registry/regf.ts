// A reader of Windows registry hive files (the "regf" format, as documented by Maxim Suhanov's
// "Windows registry file format specification" and implemented by libhivex): the 4 KiB base
// block (signature, version, XOR checksum, root cell, size of the hive bins), then hbins holding
// cells, each a signed 32-bit size (negative: allocated) and a record: nk (key), vk (value),
// lf/lh/li (subkey lists) and ri (a list of those lists), db (big data, values over 16344
// bytes). Cell offsets count from the first hbin (file byte 4096). Pure: bytes in, keys and
// values out; every offset and count is checked against the buffer and its cell, lists may not
// nest deeper than ri -> li/lf/lh, and a path is walked key by key, so work is bounded by the
// hive's size. Decoders throw only ProtocolError('regf'); readKeyValues never throws.
import { ProtocolError } from '../../platform/runtime/errors.ts';

export const REG_SZ = 1;
export const REG_EXPAND_SZ = 2;
export const REG_BINARY = 3;
export const REG_DWORD = 4;
export const REG_MULTI_SZ = 7;
export const REG_QWORD = 11;

export const BASE_BLOCK_BYTES = 4096;
/** A value's data above this is held in big data (db) segments of at most this size. */
export const BIG_DATA_SEGMENT_BYTES = 16344;
const KEY_COMP_NAME = 0x20;
const VALUE_COMP_NAME = 0x1;

export interface Hive {
  readonly bytes: Buffer;
  /** One past the last byte of the hive bins. */
  readonly end: number;
  readonly minorVersion: number;
  /** Cell offset of the root key. */
  readonly root: number;
  /** False when the primary and secondary sequence numbers differ (a write was not finished). */
  readonly clean: boolean;
}

export interface RegfValue {
  readonly name: string;
  readonly type: number;
  readonly data: Buffer;
}

function fail(message: string): never {
  throw new ProtocolError('regf', message);
}

/** XOR of the base block's first 127 dwords, with 0 and 0xffffffff mapped as Windows does. */
export function baseBlockChecksum(b: Buffer): number {
  let x = 0;
  for (let o = 0; o < 508; o += 4) x ^= b.readUInt32LE(o);
  x >>>= 0;
  return x === 0 ? 1 : x === 0xffffffff ? 0xfffffffe : x;
}

export function decodeHive(input: Uint8Array): Hive {
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.length);
  if (bytes.length < BASE_BLOCK_BYTES + 32) fail(`${bytes.length} bytes: shorter than a base block and one hbin header`);
  if (bytes.toString('latin1', 0, 4) !== 'regf') fail('no "regf" signature');
  const major = bytes.readUInt32LE(0x14);
  const minorVersion = bytes.readUInt32LE(0x18);
  if (major !== 1 || minorVersion < 2 || minorVersion > 6) fail(`version ${major}.${minorVersion} is not 1.2-1.6`);
  if (bytes.readUInt32LE(0x1c) !== 0) fail('not a primary hive file (type is not 0)');
  if (baseBlockChecksum(bytes) !== bytes.readUInt32LE(0x1fc)) fail('base block checksum does not match');
  const binsBytes = bytes.readUInt32LE(0x28);
  if (binsBytes < 4096 || binsBytes % 4096 !== 0) fail(`hive bins size ${binsBytes} is not a positive multiple of 4096`);
  if (BASE_BLOCK_BYTES + binsBytes > bytes.length) fail(`truncated: the hive bins need ${BASE_BLOCK_BYTES + binsBytes} bytes, the file has ${bytes.length}`);
  if (bytes.toString('latin1', BASE_BLOCK_BYTES, BASE_BLOCK_BYTES + 4) !== 'hbin') fail('no "hbin" signature at byte 4096');
  const hive = { bytes, end: BASE_BLOCK_BYTES + binsBytes, minorVersion, root: bytes.readUInt32LE(0x24), clean: bytes.readUInt32LE(4) === bytes.readUInt32LE(8) };
  record(hive, hive.root, 'nk');
  return hive;
}

/** The data of the allocated cell at `offset` (its size field excluded), checked to lie in the bins. */
export function cell(h: Hive, offset: number): Buffer {
  if (offset % 8 !== 0 || offset < 32) fail(`cell offset ${offset} is not 8-byte aligned past the first hbin header`);
  const at = BASE_BLOCK_BYTES + offset;
  if (at + 4 > h.end) fail(`cell offset ${offset} is past the hive bins`);
  const size = h.bytes.readInt32LE(at);
  if (size >= 0) fail(`cell at ${offset} is not allocated`);
  const len = -size;
  if (len < 8 || at + len > h.end) fail(`cell at ${offset}: size ${len} runs past the hive bins`);
  return h.bytes.subarray(at + 4, at + len);
}

function record(h: Hive, offset: number, sig: string): Buffer {
  const c = cell(h, offset);
  if (c.toString('latin1', 0, 2) !== sig) fail(`cell at ${offset} is not "${sig}"`);
  return c;
}

const name = (b: Buffer, at: number, len: number, compressed: boolean, what: string): string => {
  if (at + len > b.length) fail(`${what} name runs past its cell`);
  return compressed ? b.toString('latin1', at, at + len) : b.toString('utf16le', at, at + (len & ~1));
};

export interface KeyNode {
  readonly name: string;
  readonly subkeyCount: number;
  readonly subkeyList: number;
  readonly valueCount: number;
  readonly valueList: number;
}

export function keyNode(h: Hive, offset: number): KeyNode {
  const c = record(h, offset, 'nk');
  if (c.length < 0x4c) fail(`key at ${offset}: cell too short`);
  const flags = c.readUInt16LE(2);
  return {
    name: name(c, 0x4c, c.readUInt16LE(0x48), (flags & KEY_COMP_NAME) !== 0, `key at ${offset}`),
    subkeyCount: c.readUInt32LE(0x14), subkeyList: c.readUInt32LE(0x1c),
    valueCount: c.readUInt32LE(0x24), valueList: c.readUInt32LE(0x28),
  };
}

/** Offsets of a key's subkeys, from its lf/lh/li list or an ri of such lists. */
export function subkeys(h: Hive, key: KeyNode): number[] {
  if (key.subkeyCount === 0) return [];
  const out: number[] = [];
  const list = (offset: number, allowIndex: boolean): void => {
    const c = cell(h, offset);
    const sig = c.toString('latin1', 0, 2);
    const count = c.readUInt16LE(2);
    const step = sig === 'lf' || sig === 'lh' ? 8 : sig === 'li' || sig === 'ri' ? 4 : fail(`subkey list at ${offset}: "${sig}" is not lf, lh, li or ri`);
    if (sig === 'ri' && !allowIndex) fail(`subkey list at ${offset}: an ri inside an ri`);
    if (4 + count * step > c.length) fail(`subkey list at ${offset}: ${count} entries do not fit its cell`);
    for (let i = 0; i < count; i++) {
      const o = c.readUInt32LE(4 + i * step);
      if (sig === 'ri') list(o, false);
      else out.push(o);
    }
  };
  list(key.subkeyList, true);
  if (out.length !== key.subkeyCount) fail(`key "${key.name}": ${key.subkeyCount} subkeys said, ${out.length} listed`);
  return out;
}

/** The subkey named `child` (compared case-insensitively, as Windows does), or null. */
export function subkey(h: Hive, key: KeyNode, child: string): { offset: number; node: KeyNode } | null {
  const want = child.toUpperCase();
  for (const offset of subkeys(h, key)) {
    const node = keyNode(h, offset);
    if (node.name.toUpperCase() === want) return { offset, node };
  }
  return null;
}

/** The key at a path below the root ("Microsoft", "Windows NT", "CurrentVersion"), or null. */
export function findKey(h: Hive, path: readonly string[]): KeyNode | null {
  let node = keyNode(h, h.root);
  for (const part of path) {
    const next = subkey(h, node, part);
    if (next === null) return null;
    node = next.node;
  }
  return node;
}

function valueData(h: Hive, v: Buffer, at: number): Buffer {
  const raw = v.readUInt32LE(4);
  const dataOffset = v.readUInt32LE(8);
  if (raw & 0x80000000) {
    const len = raw & 0x7fffffff;
    if (len > 4) fail(`value at ${at}: ${len} bytes said to be inline (at most 4)`);
    return Buffer.from(v.subarray(8, 8 + len));
  }
  if (raw === 0) return Buffer.alloc(0);
  if (raw > BIG_DATA_SEGMENT_BYTES && h.minorVersion >= 4) {
    const c = cell(h, dataOffset);
    if (c.toString('latin1', 0, 2) === 'db') {
      const count = c.readUInt16LE(2);
      if (c.length < 8 || count * BIG_DATA_SEGMENT_BYTES < raw) fail(`value at ${at}: ${count} big data segments cannot hold ${raw} bytes`);
      const list = cell(h, c.readUInt32LE(4));
      if (count * 4 > list.length) fail(`value at ${at}: big data segment list shorter than ${count} entries`);
      const parts: Buffer[] = [];
      let left = raw;
      for (let i = 0; i < count && left > 0; i++) {
        const seg = cell(h, list.readUInt32LE(i * 4));
        const take = Math.min(left, BIG_DATA_SEGMENT_BYTES);
        if (seg.length < take) fail(`value at ${at}: big data segment ${i} holds ${seg.length} bytes, ${take} needed`);
        parts.push(seg.subarray(0, take));
        left -= take;
      }
      return Buffer.concat(parts);
    }
  }
  const c = cell(h, dataOffset);
  if (c.length < raw) fail(`value at ${at}: ${raw} bytes of data in a cell of ${c.length}`);
  return Buffer.from(c.subarray(0, raw));
}

export function keyValues(h: Hive, key: KeyNode): RegfValue[] {
  if (key.valueCount === 0) return [];
  const list = cell(h, key.valueList);
  if (key.valueCount * 4 > list.length) fail(`key "${key.name}": ${key.valueCount} values do not fit its value list`);
  const out: RegfValue[] = [];
  for (let i = 0; i < key.valueCount; i++) {
    const at = list.readUInt32LE(i * 4);
    const v = record(h, at, 'vk');
    if (v.length < 0x14) fail(`value at ${at}: cell too short`);
    out.push({ name: name(v, 0x14, v.readUInt16LE(2), (v.readUInt16LE(0x10) & VALUE_COMP_NAME) !== 0, `value at ${at}`), type: v.readUInt32LE(0x0c), data: valueData(h, v, at) });
  }
  return out;
}

/** REG_SZ and REG_EXPAND_SZ as text (UTF-16LE, up to the first NUL); null for other types. */
export function valueText(v: RegfValue): string | null {
  if (v.type !== REG_SZ && v.type !== REG_EXPAND_SZ) return null;
  const s = v.data.toString('utf16le', 0, v.data.length & ~1);
  const nul = s.indexOf('\0');
  return nul < 0 ? s : s.slice(0, nul);
}

/** REG_DWORD as a number; null for other types or a short value. */
export function valueDword(v: RegfValue): number | null {
  return v.type === REG_DWORD && v.data.length >= 4 ? v.data.readUInt32LE(0) : null;
}

/**
 * The values of the key at `path` by lower-case name, or why not: the key is missing, or the
 * hive is malformed (the ProtocolError's message). Never throws.
 */
export function readKeyValues(bytes: Uint8Array, path: readonly string[]): { values: ReadonlyMap<string, RegfValue> } | { reason: string } {
  try {
    const h = decodeHive(bytes);
    const key = findKey(h, path);
    if (key === null) return { reason: `no key ${path.join('\\')}` };
    return { values: new Map(keyValues(h, key).map((v) => [v.name.toLowerCase(), v])) };
  } catch (err) {
    return { reason: err instanceof Error ? err.message : String(err) };
  }
}
