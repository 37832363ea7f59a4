// The dynamically linked part of the preboot: programs and data files taken from Debian packages
// unpacked into one folder (Node's `node`, e2fsprogs' resize2fs, ...), plus every shared library
// they need, found by following the ELF files' DT_NEEDED entries (elf.ts) through that folder the
// way ld.so would (lib/<triplet>, usr/lib/<triplet>, lib, usr/lib; symlinks followed inside the
// folder). Libraries go to /usr/lib/<triplet>/<soname> (a system directory of Debian's ld.so, so no
// ld.so.cache is needed), the loader to the program's PT_INTERP path as a link to it. A library no
// package holds stops the build with its name and who needs it.
import { lstatSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { CpioEntry } from './cpio.ts';
import { isElf, readElfDynamic } from './elf.ts';
import { ToolError } from './extract.ts';

export const TRIPLET = 'x86_64-linux-gnu';
/** Where the libraries go inside the initrd. */
export const LIB_DIR = `usr/lib/${TRIPLET}`;
const SEARCH = [`lib/${TRIPLET}`, `usr/lib/${TRIPLET}`, 'lib', 'usr/lib'];

/** A Debian package of the preboot's userland and the files it contributes (none: libraries only). */
export interface UserlandPart {
  readonly package: string;
  /** Paths inside the package (no leading `/`), put into the initrd at the same path. */
  readonly files?: readonly string[];
}

export interface Userland {
  readonly entries: CpioEntry[];
  /** Sonames taken, sorted. */
  readonly libraries: readonly string[];
  /** Bytes of every file entry (programs, data, libraries). */
  readonly bytes: number;
}

/** `path` inside `root`, symlinks followed (absolute targets taken inside root); null if absent. */
function resolveInside(root: string, path: string): string | null {
  let rel = path;
  for (let hops = 0; hops < 16; hops++) {
    let st;
    try {
      st = lstatSync(join(root, rel));
    } catch {
      return null;
    }
    if (st.isFile()) return rel;
    if (!st.isSymbolicLink()) return null;
    const target = readlinkSync(join(root, rel));
    rel = posix.normalize(target.startsWith('/') ? target.slice(1) : posix.join(posix.dirname(rel), target));
    if (rel.startsWith('..')) return null;
  }
  return null;
}

/**
 * The entries for `files` (paths inside `root`) and the libraries they need, transitively. The
 * result depends only on the folder's contents and the list (libraries sorted by soname).
 */
export async function collectUserland(root: string, files: readonly string[]): Promise<Userland> {
  const entries: CpioEntry[] = [];
  const libs = new Map<string, Uint8Array>();
  const links = new Map<string, string>();
  let bytes = 0;
  const queue: Array<{ soname: string; by: string }> = [];
  const follow = (data: Uint8Array, who: string): void => {
    if (!isElf(data)) return;
    const dyn = readElfDynamic(data, who);
    if (dyn.interp !== null) {
      const base = posix.basename(dyn.interp);
      const at = dyn.interp.replace(/^\/+/, '');
      if (at !== `${LIB_DIR}/${base}`) links.set(at, `/${LIB_DIR}/${base}`);
      queue.push({ soname: base, by: who });
    }
    for (const n of dyn.needed) queue.push({ soname: n, by: who });
  };
  for (const f of files) {
    const real = resolveInside(root, f);
    if (real === null) throw new ToolError(`${f} is in none of the unpacked packages`);
    const data = await readFile(join(root, real));
    const exec = (lstatSync(join(root, real)).mode & 0o111) !== 0;
    entries.push({ path: f, type: 'file', data, mode: exec ? 0o755 : 0o644 });
    bytes += data.length;
    follow(data, f);
  }
  while (queue.length > 0) {
    const { soname, by } = queue.shift()!;
    if (libs.has(soname)) continue;
    const found = SEARCH.map((d) => resolveInside(root, `${d}/${soname}`)).find((p) => p !== null);
    if (found === undefined || found === null) throw new ToolError(`${soname}, needed by ${by}, is in none of the unpacked packages (searched ${SEARCH.join(', ')})`);
    const data = await readFile(join(root, found));
    libs.set(soname, data);
    bytes += data.length;
    follow(data, soname);
  }
  const libraries = [...libs.keys()].sort();
  for (const soname of libraries) entries.push({ path: `${LIB_DIR}/${soname}`, type: 'file', data: libs.get(soname)!, mode: 0o755 });
  for (const [path, target] of [...links].sort()) entries.push({ path, type: 'symlink', target });
  return { entries, libraries, bytes };
}
