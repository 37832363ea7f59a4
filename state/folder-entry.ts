// One entry of a folder other users write to, judged without trusting it: what it is (never
// through a link), a bounded read of a regular file that follows no link and blocks on no FIFO,
// and its name when that is not valid UTF-8.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** What a folder entry is, from lstat or fstat (never through a link). */
export type EntryKind = 'file' | 'symlink' | 'directory' | 'fifo' | 'socket' | 'device' | 'other';

/** The result of readRegularFile. */
export type BoundedRead =
  | { readonly kind: 'ok'; readonly bytes: Buffer; readonly ino: number }
  | { readonly kind: 'too-large'; readonly size: number }
  | { readonly kind: 'not-regular'; readonly entry: EntryKind };

/**
 * Reads a file that must be a regular file of at most `maxBytes`, without following a link
 * (O_NOFOLLOW: a link fails with ELOOP) and without blocking on a FIFO (O_NONBLOCK); what was
 * opened is judged by fstat on the descriptor, so a swap after an lstat changes nothing. Reads
 * at most one byte past the limit, even if the file grows meanwhile. Throws other errors (ENOENT,
 * EACCES, EIO).
 */
export function readRegularFile(path: string, maxBytes: number): BoundedRead {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') return { kind: 'not-regular', entry: 'symlink' };
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { kind: 'not-regular', entry: kindOf(st) };
    if (st.size > maxBytes) return { kind: 'too-large', size: st.size };
    let buf = Buffer.allocUnsafe(st.size + 1);
    let used = 0;
    for (;;) {
      if (used === buf.length) {
        if (used > maxBytes) return { kind: 'too-large', size: Math.max(used, fstatSync(fd).size) };
        const bigger = Buffer.allocUnsafe(Math.min(maxBytes + 1, used * 2));
        buf.copy(bigger, 0, 0, used);
        buf = bigger;
      }
      const n = readSync(fd, buf, used, buf.length - used, null);
      if (n === 0) break;
      used += n;
    }
    return { kind: 'ok', bytes: buf.subarray(0, used), ino: st.ino };
  } finally {
    closeSync(fd);
  }
}

export function kindOf(st: Stats): EntryKind {
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'device';
  return 'other';
}

export function notRegularProblem(kind: EntryKind): string {
  switch (kind) {
    case 'symlink': return 'a symbolic link: links are not followed';
    case 'directory': return 'a directory, not a file';
    case 'fifo': return 'a FIFO, not a regular file';
    case 'socket': return 'a socket, not a regular file';
    case 'device': return 'a device, not a regular file';
    default: return 'not a regular file';
  }
}

/** The name as a string, or null when its bytes are not valid UTF-8 (we could neither log nor open it by that string). */
export function utf8Name(raw: Buffer): string | null {
  const name = raw.toString('utf8');
  return Buffer.from(name, 'utf8').equals(raw) ? name : null;
}

/** A printable stand-in for a name that is not UTF-8: other bytes become `_` (uniquePath keeps it unique). */
export function safeName(raw: Buffer): string {
  const name = raw.toString('utf8').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
  return name === '' || name.startsWith('.') ? `_${name}` : name;
}
