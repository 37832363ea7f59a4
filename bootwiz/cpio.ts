// A deterministic `newc` cpio writer (the initramfs format: the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst). Pure: entries in, bytes out. The
// same entries always give the same bytes, whatever order they come in: entries are sorted by
// path, inode numbers are sequential, times are 0, owner and group are 0. (busybox's cpio stores
// real inode numbers, so two archives of one tree differ; GNU cpio needs --reproducible.)

export type CpioEntry =
  | { readonly path: string; readonly type: 'dir'; readonly mode?: number }
  | { readonly path: string; readonly type: 'file'; readonly data: Uint8Array; readonly mode?: number }
  | { readonly path: string; readonly type: 'symlink'; readonly target: string }
  | { readonly path: string; readonly type: 'chardev'; readonly major: number; readonly minor: number; readonly mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

export class CpioError extends Error {
  readonly code = 'CPIO_INVALID';
}

/** Checks a path: relative, `/`-separated, no empty, `.` or `..` segments. */
function checkPath(path: string): void {
  if (path === '' || path.startsWith('/') || path.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new CpioError(`bad path in archive: ${JSON.stringify(path)}`);
  }
}

function header(fields: readonly number[], nameSize: number): string {
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  return `070701${[...fields, nameSize, 0].map((n) => n.toString(16).padStart(8, '0')).join('')}`;
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

/** Every parent folder of every entry, as `dir` entries, unless listed already. */
function withParents(entries: readonly CpioEntry[]): CpioEntry[] {
  const byPath = new Map<string, CpioEntry>();
  for (const e of entries) {
    checkPath(e.path);
    if (byPath.has(e.path)) throw new CpioError(`path listed twice: ${e.path}`);
    byPath.set(e.path, e);
  }
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const existing = byPath.get(dir);
      if (existing === undefined) byPath.set(dir, { path: dir, type: 'dir' });
      else if (existing.type !== 'dir') throw new CpioError(`${dir} is a parent of ${e.path} but not a folder`);
    }
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The archive, with the `TRAILER!!!` entry. */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const { parts, length } = cpioParts(entries);
  return Buffer.concat(parts, length);
}

/**
 * The archive as its pieces (headers, names, padding and the entries' own bytes, not copied), in
 * order: for streaming a large archive into a compressor without one contiguous copy.
 */
export function cpioParts(entries: readonly CpioEntry[]): { parts: Buffer[]; length: number } {
  const parts: Buffer[] = [];
  let offset = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    offset += b.length;
  };
  const record = (ino: number, mode: number, nlink: number, data: Uint8Array, name: string, rdev: [number, number] = [0, 0]): void => {
    const nameBytes = Buffer.from(`${name}\0`, 'utf8');
    push(Buffer.from(header([ino, mode, 0, 0, nlink, 0, data.length, 0, 0, rdev[0], rdev[1]], nameBytes.length), 'ascii'));
    push(nameBytes);
    push(Buffer.alloc(pad4(offset)));
    if (data.length > 0) {
      push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      push(Buffer.alloc(pad4(offset)));
    }
  };
  let ino = 1;
  for (const e of withParents(entries)) {
    switch (e.type) {
      case 'dir':
        record(ino++, S_IFDIR | (e.mode ?? 0o755), 2, new Uint8Array(0), e.path);
        break;
      case 'file':
        record(ino++, S_IFREG | (e.mode ?? 0o644), 1, e.data, e.path);
        break;
      case 'symlink':
        record(ino++, S_IFLNK | 0o777, 1, Buffer.from(e.target, 'utf8'), e.path);
        break;
      case 'chardev':
        record(ino++, S_IFCHR | (e.mode ?? 0o600), 1, new Uint8Array(0), e.path, [e.major, e.minor]);
        break;
    }
  }
  record(0, 0, 1, new Uint8Array(0), 'TRAILER!!!');
  return { parts, length: offset };
}
