// SHA-256 digests as lowercase hex: the names of chunks and manifests.
import { createHash } from 'node:crypto';

export const HASH_NAME = 'sha256';
const DIGEST_RE = /^[0-9a-f]{64}$/;

export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Package ids name folders and URL segments: a conservative alphabet, never "." or "..". */
export function isPackageId(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/.test(value);
}
