// What the dynamic loader reads from an ELF file: its interpreter (PT_INTERP), its SONAME and the
// libraries it needs (DT_NEEDED), read the way ld.so does, through the program headers (the
// dynamic segment, its string table found through the load segments), so stripped files without
// section headers read the same. Pure: bytes in. ELF64 little-endian only (x86-64, arm64): the
// preboot environments we build are those; anything else is refused by name.

export class ElfError extends Error {
  readonly code = 'ELF_INVALID';
}

export interface ElfDynamic {
  /** PT_INTERP, e.g. `/lib64/ld-linux-x86-64.so.2`; null for a library or a static program. */
  readonly interp: string | null;
  readonly soname: string | null;
  /** DT_NEEDED, in the file's order. */
  readonly needed: readonly string[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_SONAME = 14n;

export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

/** The dynamic-linking facts of an ELF file; throws ElfError for a truncated or unsupported one. */
export function readElfDynamic(bytes: Uint8Array, name = 'file'): ElfDynamic {
  if (!isElf(bytes)) throw new ElfError(`${name}: not an ELF file`);
  if (bytes.length < 64) throw new ElfError(`${name}: truncated ELF header`);
  if (bytes[4] !== 2 || bytes[5] !== 1) throw new ElfError(`${name}: only 64-bit little-endian ELF is read (class ${bytes[4]}, data ${bytes[5]})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (at: number): number => {
    if (at + 8 > bytes.length) throw new ElfError(`${name}: truncated at ${at}`);
    const v = view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${name}: offset out of range at ${at}`);
    return Number(v);
  };
  const phoff = u64(0x20);
  const phentsize = view.getUint16(0x36, true);
  const phnum = view.getUint16(0x38, true);
  if (phnum > 0 && (phentsize < 56 || phoff + phentsize * phnum > bytes.length)) throw new ElfError(`${name}: program headers out of the file`);
  const loads: Array<{ vaddr: number; offset: number; filesz: number }> = [];
  let dynamic: { offset: number; size: number } | null = null;
  let interp: string | null = null;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const type = view.getUint32(at, true);
    const offset = u64(at + 8);
    const vaddr = u64(at + 16);
    const filesz = u64(at + 32);
    if (offset + filesz > bytes.length) throw new ElfError(`${name}: segment ${i} runs past the end of the file`);
    if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
    else if (type === PT_DYNAMIC) dynamic = { offset, size: filesz };
    else if (type === PT_INTERP) interp = cString(bytes, offset, offset + filesz, name);
  }
  if (dynamic === null) return { interp, soname: null, needed: [] };
  const neededAt: number[] = [];
  let sonameAt: number | null = null;
  let strtab: number | null = null;
  for (let at = dynamic.offset; at + 16 <= dynamic.offset + dynamic.size; at += 16) {
    const tag = view.getBigInt64(at, true);
    if (tag === DT_NULL) break;
    const val = u64(at + 8);
    if (tag === DT_NEEDED) neededAt.push(val);
    else if (tag === DT_SONAME) sonameAt = val;
    else if (tag === DT_STRTAB) strtab = val;
  }
  if (neededAt.length === 0 && sonameAt === null) return { interp, soname: null, needed: [] };
  if (strtab === null) throw new ElfError(`${name}: a dynamic segment without DT_STRTAB`);
  const seg = loads.find((l) => strtab! >= l.vaddr && strtab! < l.vaddr + l.filesz);
  if (seg === undefined) throw new ElfError(`${name}: DT_STRTAB 0x${strtab.toString(16)} is in no load segment`);
  const strOffset = strtab - seg.vaddr + seg.offset;
  const str = (off: number): string => cString(bytes, strOffset + off, seg.offset + seg.filesz, name);
  return { interp, soname: sonameAt === null ? null : str(sonameAt), needed: neededAt.map(str) };
}

function cString(bytes: Uint8Array, from: number, limit: number, name: string): string {
  const end = bytes.indexOf(0, from);
  if (end < 0 || end >= limit) throw new ElfError(`${name}: unterminated string at ${from}`);
  return Buffer.from(bytes.buffer, bytes.byteOffset + from, end - from).toString('utf8');
}
