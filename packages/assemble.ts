// Assembles a version folder from its manifest with as little network traffic as possible:
//   1. a file identical (same chunks, same mode) to one already held is hard-linked (versions
//      are immutable, so sharing an inode is safe);
//   2. every other file starts sparse; each chunk is copied from a local copy, verified first:
//      the previous version's file at the same offset, this version, or any package or version
//      (the chunk index); all-zero chunks are left as holes;
//   3. only what no local copy has is fetched from peers, several batches in flight, each chunk
//      verified on arrival.
// The same routine resumes a killed sync (what is in place and hashes right is kept) and repairs
// a damaged Ready version (only the bad chunks are rewritten). Parts: same-offset-runs.ts (step 2,
// runs from the previous version), placement.ts (writing chunks in place), chunk-fetch.ts (step 3).
import { constants } from 'node:fs';
import { chmod, copyFile, link, mkdir, open, readdir, rename, stat, truncate, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { fetchAll, type ChunkSource } from './chunk-fetch.ts';
import { sha256Hex } from './digest.ts';
import { finishTree, fsyncPath, mkdirs } from './fs-tree.ts';
import { versionDir } from './layout.ts';
import { manifestTotals, type Manifest, type ManifestFile } from './manifest.ts';
import type { PackageStore } from './package-store.ts';
import { AbortedError, PlacementWriter, RangeReader, type Need, type Placement } from './placement.ts';
import { copyRuns, type SameOffset } from './same-offset-runs.ts';
import { segmentsDirOf, segmentsOf } from './segments.ts';

export interface AssembleProgress {
  bytesDone: number;
  bytesTotal: number;
  chunksDone: number;
  chunksTotal: number;
  reason: string | null;
}

export interface AssembleOptions {
  readonly dir: string;
  readonly manifest: Manifest;
  /** Only these files (repair of one file); default all. */
  readonly only?: ReadonlySet<string>;
  /** The package's previously held version, used as a base for files at the same path. */
  readonly base?: { readonly digest: string; readonly manifest: Manifest } | null;
  readonly store: PackageStore;
  /** Sources to ask, best first; asked again for every batch (peers come and go). */
  readonly sources: () => ChunkSource[];
  readonly concurrency: number;
  readonly batchBytes: number;
  readonly throttle?: (bytes: number) => Promise<void>;
  readonly onProgress: (p: AssembleProgress) => void;
  readonly signal: AbortSignal;
  readonly log: Logger;
}

export interface AssembleResult {
  readonly linkedFiles: number;
  readonly verifiedChunks: number;
  readonly localChunks: number;
  readonly fetchedChunks: number;
  readonly fetchedBytes: number;
  readonly rejectedChunks: number;
  /** Time spent making it durable (fsync of files and folders). */
  readonly fsyncMs: number;
  /** Chunks copied in runs from the previous version at the same offsets, and the time taken. */
  readonly runChunks: number;
  readonly runMs: number;
  /** Segments of large image files already held here (neither copied nor read), and their chunks. */
  readonly sharedSegments: number;
  /** Chunks taken as they are: in held segments, or in a reflinked clone of the previous version. */
  readonly sharedChunks: number;
  /** Segments written for this version. */
  readonly newSegments: number;
}

export async function assembleVersion(o: AssembleOptions): Promise<AssembleResult> {
  const files = o.manifest.files.filter((f) => o.only === undefined || o.only.has(f.path));
  const totals = o.only === undefined ? manifestTotals(o.manifest) : { bytes: files.reduce((n, f) => n + f.size, 0), chunks: files.reduce((n, f) => n + f.chunks.length, 0) };
  const progress: AssembleProgress = { bytesDone: 0, bytesTotal: totals.bytes, chunksDone: 0, chunksTotal: totals.chunks, reason: null };
  const stats = { linkedFiles: 0, verifiedChunks: 0, localChunks: 0, fetchedChunks: 0, fetchedBytes: 0, rejectedChunks: 0, fsyncMs: 0, runChunks: 0, runMs: 0, sharedSegments: 0, sharedChunks: 0, newSegments: 0 };
  const report = throttled(() => o.onProgress({ ...progress }), 200);
  const done = (size: number): void => {
    progress.bytesDone += size;
    progress.chunksDone++;
    report(false);
  };
  const checkAbort = (): void => {
    if (o.signal.aborted) throw new AbortedError();
  };

  await mkdirs(o.dir, o.manifest.dirs);
  const versionDigest = basename(o.dir);
  const assembling = new Set(files.map((f) => f.path));
  const segmented = (f: ManifestFile): boolean => o.store.segmented(o.manifest, f);
  // A segmented file is assembled as its segments (segments.ts): a segment held under its name
  // is complete and was verified when it was written, so it is taken as it is (a repair hashes
  // it); every other one is built here like a file, as `<name>.part` in the segments folder (a
  // path relative to this folder), and renamed to its name once fsynced.
  const segDir = segmentsDirOf(o.dir);
  const pseudo = new Set<string>();
  const parts: Array<{ part: string; name: string }> = [];
  const work: ManifestFile[] = [];
  // Names only: a segment is renamed to its name only once complete and fsynced.
  const heldNames = new Set(files.some(segmented) ? await readdir(segDir).catch(() => [] as string[]) : []);
  for (const f of files) {
    if (!segmented(f)) {
      work.push(f);
      continue;
    }
    await mkdir(segDir, { recursive: true });
    const seen = new Set<string>();
    for (const seg of segmentsOf(f.chunks)) {
      if (seen.has(seg.name)) {
        for (const c of seg.chunks) done(c.size);
        continue;
      }
      seen.add(seg.name);
      if (o.only === undefined && heldNames.has(seg.name)) {
        stats.sharedSegments++;
        stats.sharedChunks += seg.chunks.length;
        for (const c of seg.chunks) done(c.size);
        continue;
      }
      const held = heldNames.has(seg.name) ? await stat(join(segDir, seg.name)).catch(() => null) : null;
      const name = held !== null ? seg.name : `${seg.name}.part`;
      if (held === null) parts.push({ part: name, name: seg.name });
      const rel = `../../segments/${name}`;
      pseudo.add(rel);
      work.push({ path: rel, size: seg.size, mode: 0o600, chunks: seg.chunks });
    }
  }
  const baseFiles = new Map((o.base?.manifest.files ?? []).map((f) => [f.path, f]));
  const baseDir = o.base ? versionDir(o.store.root, o.manifest.package, o.base.digest) : null;
  const hints = new Map<string, { path: string; offset: number }>();
  /** Files created (sparse) in this run: writing zeros into them is not needed. */
  const fresh = new Set<string>();
  /** Chunks the previous version holds at the same offset of the same file, in file order. */
  const sameOffset: SameOffset[] = [];
  /** Chunks to hash where they lie: [file, chunk index]. */
  const toVerify: Array<[ManifestFile, number]> = [];
  const dirty = new Set<string>();
  const needs = new Map<string, Need>();
  const addNeed = (f: ManifestFile, i: number, offset: number): void => {
    const c = f.chunks[i]!;
    let n = needs.get(c.digest);
    if (n === undefined) {
      n = { digest: c.digest, size: c.size, placements: [], tried: new Set() };
      needs.set(c.digest, n);
    }
    n.placements.push({ path: f.path, offset });
  };

  // 1. Lay out every file and decide, per chunk, whether to check what is there or to fetch it.
  for (const f of work) {
    checkAbort();
    const path = join(o.dir, f.path);
    const existing = await stat(path).catch(() => null);
    if (existing !== null && existing.isFile()) {
      if (existing.size !== f.size) {
        await chmod(path, f.mode | 0o600);
        await truncate(path, f.size);
        dirty.add(f.path);
      }
      f.chunks.forEach((_, i) => toVerify.push([f, i]));
      continue;
    }
    if (existing !== null) {
      // Something else sits where this file goes (a folder?): only on a damaged replica.
      throw new Error(`${f.path}: not a regular file`);
    }
    await mkdir(dirname(path), { recursive: true });
    if (f.chunks.length === 0) {
      await (await open(path, 'w', 0o600)).close();
      dirty.add(f.path);
      continue;
    }
    const twin = pseudo.has(f.path) ? null : await findTwin(o.store, f);
    if (twin !== null) {
      try {
        await link(twin, path);
        stats.linkedFiles++;
        f.chunks.forEach((_, i) => toVerify.push([f, i]));
        continue;
      } catch (err) {
        o.log.debug('hard link failed; copying instead', { path: f.path, err: errorMessage(err) });
      }
    }
    const old = baseFiles.get(f.path);
    const oldAt = new Map<number, string>();
    if (old !== undefined) {
      let off = 0;
      for (const c of old.chunks) {
        oldAt.set(off, c.digest);
        off += c.size;
      }
    }
    // Where the filesystem shares blocks between files (reflink: XFS, btrfs), the previous
    // version's file is cloned in an instant and only its changed chunks are rewritten.
    const cloned = old !== undefined && (await copyFile(join(baseDir!, f.path), path, constants.COPYFILE_FICLONE_FORCE).then(() => true, () => false));
    if (!cloned) await (await open(path, 'w', 0o600)).close();
    await chmod(path, f.mode | 0o600);
    await truncate(path, f.size);
    // Otherwise a new file starts sparse, and chunks of zeros (free space in a filesystem
    // image) stay holes; the rest is copied from the previous version at the same offset
    // (sequential reads of one file) or from wherever the index has it.
    if (!cloned) fresh.add(f.path);
    dirty.add(f.path);
    let off = 0;
    f.chunks.forEach((c, i) => {
      const same = oldAt.get(off) === c.digest;
      if (cloned && same) {
        // Cloned from the previous version, which was verified on arrival: taken as it is.
        stats.sharedChunks++;
        done(c.size);
      } else addNeed(f, i, off);
      if (same && !cloned) sameOffset.push({ path: f.path, from: join(baseDir!, f.path), offset: off, size: c.size, digest: c.digest });
      if (same && !hints.has(c.digest)) hints.set(c.digest, { path: join(baseDir!, f.path), offset: off });
      off += c.size;
    });
  }

  // 2. Hash what is in place; a wrong chunk joins the needs. Verified chunks become local copies.
  const inPlace = new Map<string, Placement>();
  const offsets = new Map<ManifestFile, number[]>();
  const offsetOf = (f: ManifestFile, i: number): number => {
    let arr = offsets.get(f);
    if (arr === undefined) {
      arr = [];
      let off = 0;
      for (const c of f.chunks) {
        arr.push(off);
        off += c.size;
      }
      offsets.set(f, arr);
    }
    return arr[i]!;
  };
  if (toVerify.length > 0) {
    let current: { path: string; fh: FileHandle } | null = null;
    try {
      for (const [f, i] of toVerify) {
        checkAbort();
        const c = f.chunks[i]!;
        const off = offsetOf(f, i);
        if (current === null || current.path !== f.path) {
          await current?.fh.close();
          current = { path: f.path, fh: await open(join(o.dir, f.path), 'r') };
        }
        const buf = Buffer.allocUnsafe(c.size);
        const { bytesRead } = await current.fh.read(buf, 0, c.size, off);
        if (bytesRead === c.size && sha256Hex(buf) === c.digest) {
          stats.verifiedChunks++;
          if (!inPlace.has(c.digest)) inPlace.set(c.digest, { path: f.path, offset: off });
          done(c.size);
        } else {
          addNeed(f, i, off);
        }
      }
    } finally {
      await current?.fh.close();
    }
  }

  // 3. Copy what is held locally, verifying each chunk first: first the long runs the previous
  // version has at the same offsets (large reads, hashed on worker threads), then the rest
  // chunk by chunk from wherever it is held.
  if (sameOffset.length > 0) {
    const runsStarted = performance.now();
    const copied = await copyRuns(sameOffset, o.dir, fresh, checkAbort);
    stats.runChunks = copied.size;
    stats.runMs = Math.round(performance.now() - runsStarted);
    for (const need of [...needs.values()]) {
      const left = need.placements.filter((p) => !copied.has(`${p.offset}@${p.path}`));
      const got = need.placements.length - left.length;
      if (got === 0) continue;
      stats.localChunks += got;
      for (let k = 0; k < got; k++) done(need.size);
      if (left.length === 0) needs.delete(need.digest);
      else need.placements.splice(0, need.placements.length, ...left);
    }
  }
  const writer = new PlacementWriter(o.dir, o.manifest, dirty, fresh);
  const reader = new RangeReader();
  try {
    const copyLocal = async (need: Need): Promise<void> => {
      let data: Buffer | null = null;
      const hint = hints.get(need.digest);
      if (hint !== undefined) {
        data = await reader.read(hint.path, hint.offset, need.size);
        if (data !== null && sha256Hex(data) !== need.digest) data = null;
      }
      const here = inPlace.get(need.digest);
      if (data === null && here !== undefined) {
        data = await reader.read(join(o.dir, here.path), here.offset, need.size);
        if (data !== null && sha256Hex(data) !== need.digest) data = null;
      }
      // Never from the files being assembled here: they are what is being fixed.
      if (data === null) data = await o.store.readChunk(need.digest, (loc) => loc.package === o.manifest.package && ((loc.version === versionDigest && assembling.has(loc.path)) || (loc.segment !== undefined && pseudo.has(`../../segments/${loc.segment}`))));
      if (data === null) return;
      await writer.write(need, data);
      stats.localChunks += need.placements.length;
      for (let k = 0; k < need.placements.length; k++) done(need.size);
      needs.delete(need.digest);
    };
    // A few at once, so reads and writes (on the thread pool) overlap the hashing (here).
    const local = [...needs.values()];
    let next = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < local.length) {
        checkAbort();
        await copyLocal(local[next++]!);
      }
    }));

    await reader.close();
    // 4. Fetch the rest from peers.
    if (needs.size > 0) await fetchAll(o, [...needs.values()], writer, stats, progress, done, report);
  } finally {
    await reader.close();
    await writer.close();
  }

  // 5. Durable before anyone is told: fsync every file written, then modes and folders.
  const syncStarted = performance.now();
  for (const p of dirty) await fsyncPath(join(o.dir, p));
  await finishTree(o.dir, o.manifest.dirs, files.filter((f) => !segmented(f)));
  for (const p of parts) await rename(join(segDir, p.part), join(segDir, p.name));
  if (pseudo.size > 0) await fsyncPath(segDir);
  stats.newSegments = parts.length;
  stats.fsyncMs = Math.round(performance.now() - syncStarted);
  progress.reason = null;
  report(true);
  return stats;
}

/** A held file with exactly this content and mode, to hard-link. */
async function findTwin(store: PackageStore, f: ManifestFile): Promise<string | null> {
  const first = f.chunks[0]!;
  for (const loc of store.db.chunkLocations(first.digest, 16)) {
    if (loc.offset !== 0) continue;
    const m = store.manifest(loc.version);
    const other = m?.files.find((x) => x.path === loc.path);
    if (other === undefined || other.size !== f.size || other.mode !== f.mode || other.chunks.length !== f.chunks.length) continue;
    if (!other.chunks.every((c, i) => c.digest === f.chunks[i]!.digest)) continue;
    const path = join(versionDir(store.root, loc.package, loc.version), loc.path);
    if ((await stat(path).catch(() => null))?.size === f.size) return path;
  }
  return null;
}

function throttled(fn: () => void, ms: number): (force: boolean) => void {
  let last = 0;
  return (force) => {
    const now = Date.now();
    if (force || now - last >= ms) {
      last = now;
      fn();
    }
  };
}
