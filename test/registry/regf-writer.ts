// A small writer of registry hive files (regf), test-side only: one hbin, keys with lf, lh, li or
// ri subkey lists, values inline (4 bytes or fewer), in a data cell, or in big data (db)
// segments, one shared security (sk) cell, the base block's checksum. Its output is checked by
// libhivex (hivexget, hivexsh) in test/registry/regf.test.ts, so the reader is tested against
// fixtures an independent implementation accepts.
import { baseBlockChecksum, BIG_DATA_SEGMENT_BYTES, REG_DWORD, REG_SZ } from '../../protocols/registry/regf.ts';

export interface WriterValue {
  readonly name: string;
  readonly type: number;
  readonly data: Buffer;
}

export interface WriterKey {
  readonly name: string;
  readonly values?: readonly WriterValue[];
  readonly keys?: readonly WriterKey[];
  /** How the subkeys are listed (default lh; ri: an ri of two li lists). */
  readonly list?: 'lf' | 'lh' | 'li' | 'ri';
}

export const sz = (name: string, text: string): WriterValue => ({ name, type: REG_SZ, data: Buffer.from(`${text}\0`, 'utf16le') });
export const dword = (name: string, n: number): WriterValue => {
  const data = Buffer.alloc(4);
  data.writeUInt32LE(n);
  return { name, type: REG_DWORD, data };
};

const NONE = 0xffffffff;

/** The lh hash: name upper-cased, h = h * 37 + char (32-bit). */
export function lhHash(name: string): number {
  let h = 0;
  for (const ch of name.toUpperCase()) h = (Math.imul(h, 37) + ch.charCodeAt(0)) >>> 0;
  return h;
}

const ascii = (s: string): boolean => /^[\x20-\x7e]*$/.test(s);

export function writeHive(root: WriterKey, fileName = 'SOFTWARE'): Buffer {
  const cells: Buffer[] = [];
  let next = 32; // after the hbin header
  const alloc = (dataBytes: number): { offset: number; data: Buffer } => {
    const size = Math.ceil((dataBytes + 4) / 8) * 8;
    const b = Buffer.alloc(size);
    b.writeInt32LE(-size, 0);
    cells.push(b);
    const offset = next;
    next += size;
    return { offset, data: b.subarray(4) };
  };
  const sd = Buffer.alloc(20);
  sd[0] = 1;
  sd.writeUInt16LE(0x8004, 2); // self-relative, DACL present (null DACL)
  const sk = alloc(0x14 + sd.length);
  sk.data.write('sk', 0, 'latin1');
  sk.data.writeUInt32LE(sk.offset, 4);
  sk.data.writeUInt32LE(sk.offset, 8);
  sk.data.writeUInt32LE(0, 12); // reference count, set below
  sk.data.writeUInt32LE(sd.length, 16);
  sd.copy(sk.data, 0x14);
  let keys = 0;

  const value = (v: WriterValue): number => {
    const compressed = ascii(v.name);
    const nameBytes = compressed ? Buffer.from(v.name, 'latin1') : Buffer.from(v.name, 'utf16le');
    const vk = alloc(0x14 + nameBytes.length);
    vk.data.write('vk', 0, 'latin1');
    vk.data.writeUInt16LE(nameBytes.length, 2);
    vk.data.writeUInt32LE(v.type, 0x0c);
    vk.data.writeUInt16LE(compressed ? 1 : 0, 0x10);
    nameBytes.copy(vk.data, 0x14);
    if (v.data.length <= 4) {
      vk.data.writeUInt32LE((0x80000000 | v.data.length) >>> 0, 4);
      v.data.copy(vk.data, 8);
    } else if (v.data.length <= BIG_DATA_SEGMENT_BYTES) {
      const d = alloc(v.data.length);
      v.data.copy(d.data);
      vk.data.writeUInt32LE(v.data.length, 4);
      vk.data.writeUInt32LE(d.offset, 8);
    } else {
      const count = Math.ceil(v.data.length / BIG_DATA_SEGMENT_BYTES);
      const db = alloc(8);
      const list = alloc(count * 4);
      db.data.write('db', 0, 'latin1');
      db.data.writeUInt16LE(count, 2);
      db.data.writeUInt32LE(list.offset, 4);
      for (let i = 0; i < count; i++) {
        const part = v.data.subarray(i * BIG_DATA_SEGMENT_BYTES, (i + 1) * BIG_DATA_SEGMENT_BYTES);
        const seg = alloc(part.length);
        part.copy(seg.data);
        list.data.writeUInt32LE(seg.offset, i * 4);
      }
      vk.data.writeUInt32LE(v.data.length, 4);
      vk.data.writeUInt32LE(db.offset, 8);
    }
    return vk.offset;
  };

  const key = (k: WriterKey, parent: number, isRoot: boolean): number => {
    const compressed = ascii(k.name);
    const nameBytes = compressed ? Buffer.from(k.name, 'latin1') : Buffer.from(k.name, 'utf16le');
    const nk = alloc(0x4c + nameBytes.length);
    keys++;
    const d = nk.data;
    d.write('nk', 0, 'latin1');
    d.writeUInt16LE((compressed ? 0x20 : 0) | (isRoot ? 0x0c : 0), 2);
    d.writeUInt32LE(isRoot ? 0 : parent, 0x10);
    d.writeUInt32LE(NONE, 0x20);
    d.writeUInt32LE(sk.offset, 0x2c);
    d.writeUInt32LE(NONE, 0x30);
    d.writeUInt16LE(nameBytes.length, 0x48);
    nameBytes.copy(d, 0x4c);
    const children = [...(k.keys ?? [])].sort((a, b) => (a.name.toUpperCase() < b.name.toUpperCase() ? -1 : 1));
    const childOffsets = children.map((c) => key(c, nk.offset, false));
    d.writeUInt32LE(children.length, 0x14);
    d.writeUInt32LE(children.length === 0 ? NONE : subkeyList(children, childOffsets, k.list ?? 'lh'), 0x1c);
    d.writeUInt32LE(Math.max(0, ...children.map((c) => c.name.length * 2)), 0x34);
    const values = k.values ?? [];
    const valueOffsets = values.map(value);
    d.writeUInt32LE(values.length, 0x24);
    if (values.length > 0) {
      const list = alloc(values.length * 4);
      valueOffsets.forEach((o, i) => list.data.writeUInt32LE(o, i * 4));
      d.writeUInt32LE(list.offset, 0x28);
    } else d.writeUInt32LE(NONE, 0x28);
    d.writeUInt32LE(Math.max(0, ...values.map((v) => v.name.length * 2)), 0x3c);
    d.writeUInt32LE(Math.max(0, ...values.map((v) => v.data.length)), 0x40);
    return nk.offset;
  };

  const subkeyList = (children: readonly WriterKey[], offsets: readonly number[], kind: 'lf' | 'lh' | 'li' | 'ri'): number => {
    const simple = (sig: 'lf' | 'lh' | 'li', from: number, to: number): number => {
      const step = sig === 'li' ? 4 : 8;
      const l = alloc(4 + (to - from) * step);
      l.data.write(sig, 0, 'latin1');
      l.data.writeUInt16LE(to - from, 2);
      for (let i = from; i < to; i++) {
        const o = 4 + (i - from) * step;
        l.data.writeUInt32LE(offsets[i]!, o);
        if (sig === 'lh') l.data.writeUInt32LE(lhHash(children[i]!.name), o + 4);
        if (sig === 'lf') Buffer.from(children[i]!.name.padEnd(4, '\0').slice(0, 4), 'latin1').copy(l.data, o + 4);
      }
      return l.offset;
    };
    if (kind !== 'ri') return simple(kind, 0, children.length);
    const half = Math.ceil(children.length / 2);
    const parts = [simple('li', 0, half), ...(half < children.length ? [simple('li', half, children.length)] : [])];
    const ri = alloc(4 + parts.length * 4);
    ri.data.write('ri', 0, 'latin1');
    ri.data.writeUInt16LE(parts.length, 2);
    parts.forEach((p, i) => ri.data.writeUInt32LE(p, 4 + i * 4));
    return ri.offset;
  };

  const rootOffset = key(root, 0, true);
  sk.data.writeUInt32LE(keys, 12);
  const used = next;
  const binBytes = Math.ceil((used + 8) / 4096) * 4096;
  const hbin = Buffer.alloc(32);
  hbin.write('hbin', 0, 'latin1');
  hbin.writeUInt32LE(0, 4);
  hbin.writeUInt32LE(binBytes, 8);
  const free = Buffer.alloc(binBytes - used);
  free.writeInt32LE(free.length, 0); // the rest of the bin: one free cell
  const base = Buffer.alloc(4096);
  base.write('regf', 0, 'latin1');
  base.writeUInt32LE(1, 4);
  base.writeUInt32LE(1, 8);
  base.writeUInt32LE(1, 0x14);
  base.writeUInt32LE(5, 0x18);
  base.writeUInt32LE(0, 0x1c);
  base.writeUInt32LE(1, 0x20);
  base.writeUInt32LE(rootOffset, 0x24);
  base.writeUInt32LE(binBytes, 0x28);
  base.writeUInt32LE(1, 0x2c);
  Buffer.from(fileName.slice(0, 31), 'utf16le').copy(base, 0x30);
  base.writeUInt32LE(baseBlockChecksum(base), 0x1fc);
  return Buffer.concat([base, hbin, ...cells, free]);
}
