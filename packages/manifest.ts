// A package version: an immutable manifest named by the SHA-256 of its canonical JSON (keys
// sorted, no whitespace, files sorted by path). A file of more than a few chunks does not list
// them inline: its chunk list is cut into parts at content-defined points (after a chunk whose
// digest ends in 00, at most 1024 entries), each part a small text blob named by its own
// SHA-256 and referenced from the manifest. A 1 GB image has ~15,000 chunks (1.3 MB of list);
// a change to a few chunks changes one or two parts (tens of KB), and only those travel.
// Codec only: encode, decode (validating everything a replica acts on: it comes from the
// network), digests. Part text: one "<sha256 hex> <size>\n" line per chunk.
import { ProtocolError } from '../platform/runtime/errors.ts';
import { HASH_NAME, isDigest, isPackageId, sha256Hex } from './digest.ts';

export const PACKAGE_KINDS = ['image', 'driver', 'preboot'] as const;
export type PackageKind = (typeof PACKAGE_KINDS)[number];

export interface ChunkRef {
  readonly digest: string;
  readonly size: number;
}

export interface ManifestFile {
  /** Relative, '/'-separated, no '.' or '..' segments. */
  readonly path: string;
  readonly size: number;
  /** Permission bits (0o777 mask). */
  readonly mode: number;
  readonly chunks: readonly ChunkRef[];
}

/** A part of a long chunk list: its digest, how many chunks and bytes it covers. */
export interface PartRef {
  readonly digest: string;
  readonly chunks: number;
  readonly size: number;
}

/** A file as the manifest itself states it: chunks inline, or parts to resolve. */
export interface TopFile {
  readonly path: string;
  readonly size: number;
  readonly mode: number;
  readonly chunks?: readonly ChunkRef[];
  readonly parts?: readonly PartRef[];
}

export interface ManifestTop extends Omit<Manifest, 'files'> {
  readonly files: readonly TopFile[];
}

export interface EncodedManifest {
  readonly body: Buffer;
  readonly digest: string;
  /** Part digest -> part bytes, for every file listed by parts. */
  readonly parts: ReadonlyMap<string, Buffer>;
}

/** Files with up to this many chunks list them inline. */
export const INLINE_CHUNKS = 8;
export const PART_MAX_CHUNKS = 1024;

export interface ManifestDir {
  readonly path: string;
  readonly mode: number;
}

export interface Manifest {
  readonly format: 1;
  readonly hash: typeof HASH_NAME;
  readonly package: string;
  readonly kind: PackageKind;
  readonly owner: string;
  readonly createdAt: string;
  /** Every directory, so empty ones survive; parents before children. */
  readonly dirs: readonly ManifestDir[];
  readonly files: readonly ManifestFile[];
}

export const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;
const MAX_CHUNK_BYTES = 16 * 1024 * 1024;

export function isPackageKind(v: unknown): v is PackageKind {
  return typeof v === 'string' && (PACKAGE_KINDS as readonly string[]).includes(v);
}

export function isSafeRelativePath(p: unknown): p is string {
  if (typeof p !== 'string' || p.length === 0 || p.length > 4096 || p.includes('\0') || p.includes('\\')) return false;
  return p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..' && seg.length <= 255);
}

/** Cuts a chunk list into parts: after any chunk whose digest ends in "00", or at the maximum. */
export function splitParts(chunks: readonly ChunkRef[]): ChunkRef[][] {
  const parts: ChunkRef[][] = [];
  let cur: ChunkRef[] = [];
  for (const c of chunks) {
    cur.push(c);
    if (c.digest.endsWith('00') || cur.length === PART_MAX_CHUNKS) {
      parts.push(cur);
      cur = [];
    }
  }
  if (cur.length > 0) parts.push(cur);
  return parts;
}

export function encodePart(chunks: readonly ChunkRef[]): Buffer {
  return Buffer.from(chunks.map((c) => `${c.digest} ${c.size}\n`).join(''), 'ascii');
}

export function decodePart(bytes: Uint8Array): ChunkRef[] {
  const text = Buffer.from(bytes).toString('ascii');
  if (!text.endsWith('\n')) fail('part: must end with a newline');
  return text.slice(0, -1).split('\n').map((line, i) => {
    const m = /^([0-9a-f]{64}) ([1-9][0-9]{0,8})$/.exec(line);
    if (m === null || Number(m[2]) > MAX_CHUNK_BYTES) fail(`part line ${i + 1}: expected "<sha256> <size>"`);
    return { digest: m[1]!, size: Number(m[2]) };
  });
}

const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** Canonical bytes: the same manifest always encodes to the same bytes, so to the same digest. */
export function encodeManifest(m: Manifest): EncodedManifest {
  const parts = new Map<string, Buffer>();
  const files = [...m.files].sort(byPath).map((f) => {
    if (f.chunks.length <= INLINE_CHUNKS) return { chunks: f.chunks.map((c) => ({ digest: c.digest, size: c.size })), mode: f.mode, path: f.path, size: f.size };
    const refs = splitParts(f.chunks).map((list) => {
      const bytes = encodePart(list);
      const digest = sha256Hex(bytes);
      parts.set(digest, bytes);
      return { chunks: list.length, digest, size: list.reduce((n, c) => n + c.size, 0) };
    });
    return { mode: f.mode, parts: refs, path: f.path, size: f.size };
  });
  const ordered = {
    createdAt: m.createdAt,
    dirs: [...m.dirs].sort(byPath).map((d) => ({ mode: d.mode, path: d.path })),
    files,
    format: m.format,
    hash: m.hash,
    kind: m.kind,
    owner: m.owner,
    package: m.package,
  };
  const body = Buffer.from(JSON.stringify(ordered), 'utf8');
  return { body, digest: sha256Hex(body), parts };
}

export function manifestDigest(m: Manifest): string {
  return encodeManifest(m).digest;
}

function fail(message: string): never {
  throw new ProtocolError('manifest', message);
}

function uint(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fail(`${what}: not an integer in range`);
  return v;
}

function chunkList(v: unknown, what: string): ChunkRef[] {
  if (!Array.isArray(v)) fail(`${what}: not an array`);
  return v.map((c: unknown, k: number) => {
    const cr = c as Record<string, unknown>;
    if (typeof cr !== 'object' || cr === null || !isDigest(cr.digest)) fail(`${what}[${k}]: bad digest`);
    const s = uint(cr.size, `${what}[${k}].size`, MAX_CHUNK_BYTES);
    if (s === 0) fail(`${what}[${k}]: empty chunk`);
    return { digest: cr.digest, size: s };
  });
}

/** Parses and validates a manifest's own bytes (parts not resolved); throws ProtocolError naming the first problem. */
export function decodeManifestTop(bytes: Uint8Array): ManifestTop {
  if (bytes.length > MAX_MANIFEST_BYTES) fail('too large');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  } catch {
    fail('not JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('not an object');
  if (raw.format !== 1) fail(`unsupported format ${JSON.stringify(raw.format)}`);
  if (raw.hash !== HASH_NAME) fail(`unsupported hash ${JSON.stringify(raw.hash)}`);
  if (!isPackageId(raw.package)) fail('package: bad id');
  if (!isPackageKind(raw.kind)) fail('kind: must be image, driver or preboot');
  if (typeof raw.owner !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(raw.owner)) fail('owner: bad server id');
  if (typeof raw.createdAt !== 'string' || Number.isNaN(Date.parse(raw.createdAt))) fail('createdAt: not a date');
  if (!Array.isArray(raw.dirs) || !Array.isArray(raw.files)) fail('dirs and files must be arrays');
  const seen = new Set<string>();
  const dirs: ManifestDir[] = raw.dirs.map((d: unknown, n: number) => {
    const e = d as Record<string, unknown>;
    if (typeof e !== 'object' || e === null || !isSafeRelativePath(e.path)) fail(`dirs[${n}]: bad path`);
    if (seen.has(e.path)) fail(`dirs[${n}]: duplicate path`);
    seen.add(e.path);
    return { path: e.path, mode: uint(e.mode, `dirs[${n}].mode`, 0o777) };
  });
  const files: TopFile[] = raw.files.map((f: unknown, n: number) => {
    const e = f as Record<string, unknown>;
    if (typeof e !== 'object' || e === null || !isSafeRelativePath(e.path)) fail(`files[${n}]: bad path`);
    if (seen.has(e.path)) fail(`files[${n}]: duplicate path ${e.path}`);
    seen.add(e.path);
    const size = uint(e.size, `files[${n}].size`);
    const mode = uint(e.mode, `files[${n}].mode`, 0o777);
    if ((e.chunks === undefined) === (e.parts === undefined)) fail(`files[${n}]: needs chunks or parts, not both`);
    let total = 0;
    if (e.chunks !== undefined) {
      const chunks = chunkList(e.chunks, `files[${n}].chunks`);
      for (const c of chunks) total += c.size;
      if (total !== size) fail(`files[${n}]: chunk sizes add up to ${total}, not ${size}`);
      return { path: e.path, size, mode, chunks };
    }
    if (!Array.isArray(e.parts) || e.parts.length === 0) fail(`files[${n}].parts: not a list`);
    const parts = e.parts.map((p: unknown, k: number): PartRef => {
      const pr = p as Record<string, unknown>;
      if (typeof pr !== 'object' || pr === null || !isDigest(pr.digest)) fail(`files[${n}].parts[${k}]: bad digest`);
      const chunks = uint(pr.chunks, `files[${n}].parts[${k}].chunks`, PART_MAX_CHUNKS);
      if (chunks === 0) fail(`files[${n}].parts[${k}]: empty part`);
      const psize = uint(pr.size, `files[${n}].parts[${k}].size`);
      total += psize;
      return { digest: pr.digest, chunks, size: psize };
    });
    if (total !== size) fail(`files[${n}]: part sizes add up to ${total}, not ${size}`);
    return { path: e.path, size, mode, parts };
  });
  // Every parent of a file or directory must itself be listed, so a replica creates no
  // directory the manifest does not name (and never follows something else's).
  const dirPaths = new Set(dirs.map((d) => d.path));
  for (const p of seen) {
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : null;
    if (parent !== null && !dirPaths.has(parent)) fail(`${p}: parent directory not listed`);
  }
  return { format: 1, hash: HASH_NAME, package: raw.package, kind: raw.kind, owner: raw.owner, createdAt: raw.createdAt, dirs, files };
}

/** Every part a manifest refers to (distinct). */
export function partDigests(top: ManifestTop): string[] {
  return [...new Set(top.files.flatMap((f) => (f.parts ?? []).map((p) => p.digest)))];
}

/**
 * The full manifest, with parts resolved through `part` (bytes by digest, or null if not held).
 * Each part is checked against its digest and against the counts the manifest states.
 */
export function resolveManifest(top: ManifestTop, part: (digest: string) => Uint8Array | null): Manifest {
  const files: ManifestFile[] = top.files.map((f) => {
    if (f.chunks !== undefined) return { path: f.path, size: f.size, mode: f.mode, chunks: f.chunks };
    const chunks: ChunkRef[] = [];
    for (const p of f.parts!) {
      const bytes = part(p.digest);
      if (bytes === null) fail(`${f.path}: part ${p.digest} not held`);
      if (sha256Hex(bytes) !== p.digest) fail(`${f.path}: part ${p.digest} does not match its digest`);
      const list = decodePart(bytes);
      if (list.length !== p.chunks || list.reduce((n, c) => n + c.size, 0) !== p.size) fail(`${f.path}: part ${p.digest} does not hold what the manifest says`);
      chunks.push(...list);
    }
    return { path: f.path, size: f.size, mode: f.mode, chunks };
  });
  return { ...top, files };
}

export function decodeManifest(bytes: Uint8Array, part: (digest: string) => Uint8Array | null = () => null): Manifest {
  return resolveManifest(decodeManifestTop(bytes), part);
}

/** Total bytes and chunk count of a manifest's files. */
export function manifestTotals(m: Manifest): { bytes: number; chunks: number } {
  let bytes = 0;
  let chunks = 0;
  for (const f of m.files) {
    bytes += f.size;
    chunks += f.chunks.length;
  }
  return { bytes, chunks };
}
