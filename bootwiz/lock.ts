// The lock file (`lock.json` next to a build): the exact Debian package versions a build used,
// with each .deb's SHA-256. A build with a lock fetches exactly those files, so the same lock
// always gives the same bytes; `--update` resolves the recipe again (apt's candidates).
import { readFileSync } from 'node:fs';
import { NetbootError } from '../platform/runtime/errors.ts';

export interface LockEntry {
  /** The binary package (`linux-image-6.1.0-57-amd64`, not the metapackage). */
  readonly package: string;
  readonly version: string;
  readonly sha256: string;
  /** The archive's path (`pool/...`), for the administrator's eye; the cache uses its own name. */
  readonly filename: string;
}

export interface Lock {
  readonly lock: 1;
  /** The recipe's role for each entry: `kernel`, `busybox`, later driver packages. */
  readonly packages: Readonly<Record<string, LockEntry>>;
}

export class LockError extends NetbootError {
  constructor(message: string) {
    super('BOOTWIZ_LOCK_INVALID', message);
  }
}

/** The lock's text: keys in order, so the same lock is always the same file. */
export function encodeLock(lock: Lock): string {
  const roles = Object.keys(lock.packages).sort();
  const packages = Object.fromEntries(roles.map((r) => {
    const e = lock.packages[r]!;
    return [r, { package: e.package, version: e.version, sha256: e.sha256, filename: e.filename }];
  }));
  return `${JSON.stringify({ lock: 1, packages }, null, 2)}\n`;
}

export function decodeLock(text: string, source: string): Lock {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new LockError(`${source}: not JSON (${(err as Error).message})`);
  }
  const r = raw as { lock?: unknown; packages?: unknown };
  if (r === null || typeof r !== 'object' || r.lock !== 1 || typeof r.packages !== 'object' || r.packages === null) {
    throw new LockError(`${source}: expected {"lock": 1, "packages": {...}}`);
  }
  const packages: Record<string, LockEntry> = {};
  for (const [role, v] of Object.entries(r.packages as Record<string, unknown>)) {
    const e = v as Partial<LockEntry> | null;
    const ok = e !== null && typeof e === 'object' && typeof e.package === 'string' && /^[a-z0-9][a-z0-9+.-]+$/.test(e.package)
      && typeof e.version === 'string' && /^[A-Za-z0-9.+~:-]+$/.test(e.version)
      && typeof e.sha256 === 'string' && /^[0-9a-f]{64}$/.test(e.sha256) && typeof e.filename === 'string';
    if (!ok) throw new LockError(`${source}: packages.${role}: needs package, version, sha256 (64 hex digits) and filename`);
    packages[role] = { package: e.package!, version: e.version!, sha256: e.sha256!, filename: e.filename! };
  }
  return { lock: 1, packages };
}

/** The lock at `path`, or null when there is none. */
export function readLock(path: string): Lock | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return decodeLock(text, path);
}
