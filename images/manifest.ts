// A package version: an immutable manifest named by the SHA-256 of its canonical JSON (keys
// sorted, no whitespace, files sorted by path). Codec only: encode, decode (validating
// everything a replica will act on, since a manifest arrives from the network), digest.
import { ProtocolError } from '../services/shared/errors.ts';
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

const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** Canonical bytes: the same manifest always encodes to the same bytes, so to the same digest. */
export function encodeManifest(m: Manifest): Buffer {
  const ordered = {
    createdAt: m.createdAt,
    dirs: [...m.dirs].sort(byPath).map((d) => ({ mode: d.mode, path: d.path })),
    files: [...m.files].sort(byPath).map((f) => ({ chunks: f.chunks.map((c) => ({ digest: c.digest, size: c.size })), mode: f.mode, path: f.path, size: f.size })),
    format: m.format,
    hash: m.hash,
    kind: m.kind,
    owner: m.owner,
    package: m.package,
  };
  return Buffer.from(JSON.stringify(ordered), 'utf8');
}

export function manifestDigest(m: Manifest): string {
  return sha256Hex(encodeManifest(m));
}

function fail(message: string): never {
  throw new ProtocolError('manifest', message);
}

function uint(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fail(`${what}: not an integer in range`);
  return v;
}

/** Parses and validates manifest bytes; throws ProtocolError naming the first problem. */
export function decodeManifest(bytes: Uint8Array): Manifest {
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
  const files: ManifestFile[] = raw.files.map((f: unknown, n: number) => {
    const e = f as Record<string, unknown>;
    if (typeof e !== 'object' || e === null || !isSafeRelativePath(e.path)) fail(`files[${n}]: bad path`);
    if (seen.has(e.path)) fail(`files[${n}]: duplicate path ${e.path}`);
    seen.add(e.path);
    const size = uint(e.size, `files[${n}].size`);
    if (!Array.isArray(e.chunks)) fail(`files[${n}].chunks: not an array`);
    let total = 0;
    const chunks = e.chunks.map((c: unknown, k: number) => {
      const cr = c as Record<string, unknown>;
      if (typeof cr !== 'object' || cr === null || !isDigest(cr.digest)) fail(`files[${n}].chunks[${k}]: bad digest`);
      const s = uint(cr.size, `files[${n}].chunks[${k}].size`, MAX_CHUNK_BYTES);
      if (s === 0) fail(`files[${n}].chunks[${k}]: empty chunk`);
      total += s;
      return { digest: cr.digest, size: s };
    });
    if (total !== size) fail(`files[${n}]: chunk sizes add up to ${total}, not ${size}`);
    return { path: e.path, size, mode: uint(e.mode, `files[${n}].mode`, 0o777), chunks };
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
