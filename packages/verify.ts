// Checking held versions against their manifests: one file now (a watcher saw it change, or a
// served chunk failed its hash), or everything slowly (the scrub, rate-limited so it never
// competes with serving). Finds problems; the service decides on repair.
import { open, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../platform/runtime/logger.ts';
import { errorMessage } from '../platform/runtime/errors.ts';
import { sha256Hex } from './digest.ts';
import { readyPackagePath } from './layout.ts';
import type { Manifest, ManifestFile } from './manifest.ts';
import type { PackageStore } from './package-store.ts';
import { segmentsDirOf, segmentsOf } from './segments.ts';

/** The segments folder relative to a version folder (as the watcher names what it reports). */
export const SEGMENTS_REL = '../../segments';

export interface FileProblem {
  readonly path: string;
  readonly reason: string;
}

/** Limits a reader to `bytesPerSec` on average. */
export class RateLimiter {
  private nextAt = 0;
  constructor(private readonly bytesPerSec: number) {}

  async take(bytes: number): Promise<void> {
    const now = performance.now();
    const start = Math.max(now, this.nextAt);
    this.nextAt = start + (bytes / this.bytesPerSec) * 1000;
    const wait = start - now;
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  }
}

/**
 * null if the file is exactly what the manifest says; otherwise what is wrong with it. A
 * segmented file (segments.ts) is checked segment by segment in the package's segments folder.
 */
export async function verifyFile(dir: string, f: ManifestFile, limiter?: RateLimiter, stopped: () => boolean = () => false, segmented = false): Promise<FileProblem | null> {
  if (segmented) return verifySegments(dir, f, limiter, stopped);
  const full = join(dir, f.path);
  const st = await stat(full).catch(() => null);
  if (st === null) return { path: f.path, reason: 'missing' };
  if (!st.isFile()) return { path: f.path, reason: 'not a regular file' };
  if (st.size !== f.size) return { path: f.path, reason: `size ${st.size}, expected ${f.size}` };
  let fh;
  try {
    fh = await open(full, 'r');
  } catch (err) {
    return { path: f.path, reason: `unreadable: ${errorMessage(err)}` };
  }
  try {
    let off = 0;
    let bad = 0;
    let first = -1;
    for (let i = 0; i < f.chunks.length; i++) {
      if (stopped()) return null;
      const c = f.chunks[i]!;
      await limiter?.take(c.size);
      const buf = Buffer.allocUnsafe(c.size);
      const { bytesRead } = await fh.read(buf, 0, c.size, off);
      if (bytesRead !== c.size || sha256Hex(buf) !== c.digest) {
        bad++;
        if (first < 0) first = off;
      }
      off += c.size;
    }
    return bad === 0 ? null : { path: f.path, reason: `${bad} chunk(s) do not match their digest (first at byte ${first})` };
  } finally {
    await fh.close();
  }
}

async function verifySegments(dir: string, f: ManifestFile, limiter: RateLimiter | undefined, stopped: () => boolean): Promise<FileProblem | null> {
  const problems: string[] = [];
  let bad = 0;
  let first = -1;
  for (const s of segmentsOf(f.chunks)) {
    if (stopped()) return null;
    const full = join(segmentsDirOf(dir), s.name);
    const st = await stat(full).catch(() => null);
    if (st === null || !st.isFile() || st.size !== s.size) {
      problems.push(`segment ${s.name} ${st === null ? 'missing' : `size ${st.size}, expected ${s.size}`}`);
      if (first < 0) first = s.offset;
      continue;
    }
    let fh;
    try {
      fh = await open(full, 'r');
    } catch (err) {
      problems.push(`segment ${s.name} unreadable: ${errorMessage(err)}`);
      continue;
    }
    try {
      let off = 0;
      for (const c of s.chunks) {
        if (stopped()) return null;
        await limiter?.take(c.size);
        const buf = Buffer.allocUnsafe(c.size);
        const { bytesRead } = await fh.read(buf, 0, c.size, off);
        if (bytesRead !== c.size || sha256Hex(buf) !== c.digest) {
          bad++;
          if (first < 0) first = s.offset + off;
        }
        off += c.size;
      }
    } finally {
      await fh.close();
    }
  }
  if (bad > 0) problems.unshift(`${bad} chunk(s) do not match their digest`);
  return problems.length === 0 ? null : { path: f.path, reason: `${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` and ${problems.length - 3} more` : ''} (first at byte ${first})` };
}

export async function verifyVersion(dir: string, m: Manifest, limiter?: RateLimiter, stopped?: () => boolean, segmented: (f: ManifestFile) => boolean = () => false): Promise<FileProblem[]> {
  const problems: FileProblem[] = [];
  for (const f of m.files) {
    const p = await verifyFile(dir, f, limiter, stopped, segmented(f));
    if (p !== null) problems.push(p);
  }
  return problems;
}

/** Every version a package's `current` points at, by folder: what the watcher watches. */
export function readyVersions(store: PackageStore, dataDir: string): Map<string, WatchedVersion> {
  const dirs = new Map<string, WatchedVersion>();
  for (const ref of store.db.allRefs()) {
    const dir = readyPackagePath(dataDir, ref.package);
    if (dir === null) continue;
    const digest = basename(dir);
    const m = store.manifest(digest);
    if (m === null) continue;
    // Segments of large files lie in the package's segments folder, watched with the version.
    const segmented = m.files.some((f) => store.segmented(m, f));
    dirs.set(dir, { pkg: ref.package, digest, dirs: [...m.dirs.map((d) => d.path), ...(segmented ? [SEGMENTS_REL] : [])] });
  }
  return dirs;
}

export interface WatchedVersion {
  readonly pkg: string;
  readonly digest: string;
  /** The version's folders (relative), each watched too: inotify is not recursive. */
  readonly dirs: readonly string[];
}

/**
 * Watches the folders of Ready versions (inotify through fs.watch, one watch per folder, armed
 * synchronously so nothing done after set() returns is missed). Any change, deletion or addition
 * is reported, debounced per path, for the service to verify what it touches.
 */
export class VersionWatcher {
  private readonly watched = new Map<string, { v: WatchedVersion; watchers: FSWatcher[] }>();
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(private readonly onTouched: (pkg: string, digest: string, relPath: string) => void, private readonly log: Logger, private readonly debounceMs = 50) {}

  /** Sets the folders to watch: version folder -> what it holds. */
  set(dirs: ReadonlyMap<string, WatchedVersion>): void {
    for (const dir of [...this.watched.keys()]) if (!dirs.has(dir)) this.unwatch(dir);
    for (const [dir, v] of dirs) if (!this.watched.has(dir)) this.arm(dir, v);
  }

  /** Re-arms a version's watches (after a repair recreated folders). */
  refresh(dir: string): void {
    const w = this.watched.get(dir);
    if (w === undefined) return;
    this.unwatch(dir);
    this.arm(dir, w.v);
  }

  private arm(dir: string, v: WatchedVersion): void {
    const watchers: FSWatcher[] = [];
    for (const rel of ['', ...v.dirs]) {
      try {
        const w = watch(rel === '' ? dir : join(dir, rel), { persistent: false }, (_event, name) => {
          if (name !== null) this.touched(v, rel === '' ? String(name) : `${rel}/${String(name)}`);
        });
        w.on('error', () => w.close()); // the folder went away: the parent's watch reports it
        watchers.push(w);
      } catch (err) {
        this.log.debug('cannot watch a version folder', { dir, rel, err: errorMessage(err) });
      }
    }
    this.watched.set(dir, { v, watchers });
  }

  private unwatch(dir: string): void {
    for (const w of this.watched.get(dir)?.watchers ?? []) w.close();
    this.watched.delete(dir);
  }

  private touched(v: WatchedVersion, rel: string): void {
    const key = `${v.pkg}/${v.digest}/${rel}`;
    clearTimeout(this.pending.get(key));
    this.pending.set(key, setTimeout(() => {
      this.pending.delete(key);
      this.onTouched(v.pkg, v.digest, rel);
    }, this.debounceMs));
  }

  async stop(): Promise<void> {
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
    for (const dir of [...this.watched.keys()]) this.unwatch(dir);
  }
}
