// The root jail: maps a requested TFTP path to an open regular file inside the TFTP root, or to
// a refusal with the reason (logged by the caller with the peer). The answer to the client never
// says more than "not found" or "access violation"; the log says why.
//
// - `\` is a separator (Windows boot manager asks for `\Boot\BCD`); one leading separator means
//   the root, as with tftpd-hpa -s and WDS. UNC (`\\host\share`) and drive-letter paths, `..`,
//   NUL bytes and over-long paths are refused before the file system is touched.
// - When a segment does not exist with the exact name, a case-insensitive match in that folder is
//   used (the first in sort order if several differ only in case).
// - The opened file must be a regular file whose real path (read back from /proc/self/fd, so no
//   race between check and open) lies inside the root's real path: symlinks may point anywhere
//   inside the root, never out of it. Device files and FIFOs are never opened.
// - Every look-up is a synchronous system call, as in tftpd-hpa and dnsmasq: on a local file
//   system each takes microseconds, while an asynchronous one is a thread-pool round trip (the
//   eight of a request took 0.18 ms on an idle machine, several times that beside busy QEMU
//   guests), and a machine waits for all of them before its first packet. The price: a TFTP root
//   on a slow network file system would stall every transfer while it answers. Keep it local.
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TFTP_ERROR } from '../../protocols/tftp/tftp-codec.ts';

export const MAX_PATH_BYTES = 1024;
export const MAX_SEGMENT_BYTES = 255;

export interface Refusal {
  readonly ok: false;
  /** TFTP error code for the client. */
  readonly code: number;
  readonly reason: string;
}

export interface NormalizedPath {
  readonly ok: true;
  readonly segments: readonly string[];
  /** The segments joined with `/`: what the log and the boot hooks see. */
  readonly path: string;
}

export interface OpenedFile {
  readonly ok: true;
  /** An open file descriptor: the caller closes it. */
  readonly fd: number;
  readonly size: number;
  readonly realPath: string;
}

function refuse(code: number, reason: string): Refusal {
  return { ok: false, code, reason };
}

const notFound = (reason: string): Refusal => refuse(TFTP_ERROR.FILE_NOT_FOUND, reason);
const denied = (reason: string): Refusal => refuse(TFTP_ERROR.ACCESS_VIOLATION, reason);

/** String-only checks and normalisation; touches nothing. */
export function normalizeRequestPath(requested: string): NormalizedPath | Refusal {
  if (requested.includes('\0')) return denied('NUL byte in path');
  if (Buffer.byteLength(requested, 'utf8') > MAX_PATH_BYTES) return denied(`path longer than ${MAX_PATH_BYTES} bytes`);
  const slashed = requested.replaceAll('\\', '/');
  if (slashed.startsWith('//')) return denied('UNC path');
  if (/^[A-Za-z]:/.test(slashed)) return denied('drive-letter path');
  const segments: string[] = [];
  for (const seg of slashed.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return denied('parent directory (..) in path');
    if (Buffer.byteLength(seg, 'utf8') > MAX_SEGMENT_BYTES) return denied(`path segment longer than ${MAX_SEGMENT_BYTES} bytes`);
    segments.push(seg);
  }
  if (segments.length === 0) return denied('empty path');
  return { ok: true, segments, path: segments.join('/') };
}

function isInside(real: string, root: string): boolean {
  return real.startsWith(root.endsWith('/') ? root : root + '/');
}

function errno(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : 'EUNKNOWN';
}

function kindOf(s: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * Opens `path` read-only if it is a regular file (following symlinks) whose real path lies
 * under `within` (a real path), or anywhere when `within` is null.
 */
export function openRegularFile(path: string, within: string | null): OpenedFile | Refusal {
  // Look before opening: opening a device can have side effects (tapes rewind, ttys attach).
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    return notFound(`cannot stat: ${errno(err)}`);
  }
  if (!st.isFile()) return notFound(`is ${kindOf(st)}`);
  if (within !== null) {
    // Refuse a way out before even opening it; the check after opening closes the race.
    const early = realPathOrNull(path);
    if (early === null || !isInside(early, within)) return notFound(`resolves outside the TFTP root (to ${early ?? 'nowhere'})`);
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = errno(err);
    return code === 'EACCES' || code === 'EPERM' ? denied(`cannot open: ${code}`) : notFound(`cannot open: ${code}`);
  }
  let refusal: Refusal;
  try {
    let real: string;
    try {
      real = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      real = realpathSync.native(path);
    }
    const fst = fstatSync(fd);
    if (within !== null && !isInside(real, within)) refusal = notFound(`resolves outside the TFTP root (to ${real})`);
    else if (!fst.isFile()) refusal = notFound(`is ${kindOf(fst)}`);
    else return { ok: true, fd, size: fst.size, realPath: real };
  } catch (err) {
    refusal = notFound(`cannot inspect: ${errno(err)}`);
  }
  closeSync(fd);
  return refusal;
}

function realPathOrNull(path: string): string | null {
  try {
    return realpathSync.native(path);
  } catch {
    return null;
  }
}

export class TftpRoot {
  constructor(readonly dir: string) {}

  /** Resolves and opens a requested path (as sent by the client, already decoded to text). */
  open(requested: string): OpenedFile | Refusal {
    const norm = normalizeRequestPath(requested);
    if (!norm.ok) return norm;
    return this.openSegments(norm.segments);
  }

  openSegments(segments: readonly string[]): OpenedFile | Refusal {
    let root: string;
    try {
      root = realpathSync.native(this.dir);
    } catch (err) {
      return notFound(`TFTP root ${this.dir} is not usable: ${errno(err)}`);
    }
    let cur = root;
    for (const seg of segments) {
      const exact = join(cur, seg);
      try {
        lstatSync(exact);
        cur = exact;
        continue;
      } catch (err) {
        const code = errno(err);
        if (code !== 'ENOENT') return notFound(`cannot look up ${JSON.stringify(seg)}: ${code}`);
      }
      let names: string[];
      try {
        names = readdirSync(cur);
      } catch (err) {
        return notFound(`no ${JSON.stringify(seg)}: cannot list its folder (${errno(err)})`);
      }
      const lower = seg.toLowerCase();
      const match = names.filter((n) => n.toLowerCase() === lower).sort()[0];
      if (match === undefined) return notFound(`no such file: ${JSON.stringify(seg)} (not even ignoring case)`);
      cur = join(cur, match);
    }
    return openRegularFile(cur, root);
  }
}
