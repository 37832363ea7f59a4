// Assembles a version folder from its manifest with as little network traffic as possible:
//   1. a file identical (same chunks, same mode) to one already held is hard-linked (versions
//      are immutable, so sharing an inode is safe);
//   2. every other file starts sparse; each chunk is copied from a local copy, verified first:
//      the previous version's file at the same offset, this version, or any package or version
//      (the chunk index); all-zero chunks are left as holes;
//   3. only what no local copy has is fetched from peers, several batches in flight, each chunk
//      verified on arrival.
// The same routine resumes a killed sync (what is in place and hashes right is kept) and repairs
// a damaged Ready version (only the bad chunks are rewritten).
import { constants } from 'node:fs';
import { chmod, copyFile, link, mkdir, open, stat, truncate, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { inflateRaw } from 'node:zlib';
import { errorMessage } from '../services/shared/errors.ts';
import type { Logger } from '../services/shared/logger.ts';
import type { Frame } from './chunk-frames.ts';
import { ChunkHasher } from './chunk-hasher.ts';
import { sha256Hex } from './digest.ts';
import { finishTree, fsyncPath, mkdirs } from './fs-tree.ts';
import { versionDir } from './layout.ts';
import { manifestTotals, type Manifest, type ManifestFile } from './manifest.ts';
import type { PackageStore } from './package-store.ts';

export interface ChunkSource {
  readonly id: string;
  fetchChunks(digests: readonly string[], onFrame: (f: Frame) => Promise<void>): Promise<void>;
}

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
}

interface Placement {
  readonly path: string;
  readonly offset: number;
}

interface Need {
  readonly digest: string;
  readonly size: number;
  readonly placements: Placement[];
  tried: Set<string>;
}

export class AbortedError extends Error {
  constructor() {
    super('aborted');
  }
}

export async function assembleVersion(o: AssembleOptions): Promise<AssembleResult> {
  const files = o.manifest.files.filter((f) => o.only === undefined || o.only.has(f.path));
  const totals = o.only === undefined ? manifestTotals(o.manifest) : { bytes: files.reduce((n, f) => n + f.size, 0), chunks: files.reduce((n, f) => n + f.chunks.length, 0) };
  const progress: AssembleProgress = { bytesDone: 0, bytesTotal: totals.bytes, chunksDone: 0, chunksTotal: totals.chunks, reason: null };
  const stats = { linkedFiles: 0, verifiedChunks: 0, localChunks: 0, fetchedChunks: 0, fetchedBytes: 0, rejectedChunks: 0, fsyncMs: 0, runChunks: 0, runMs: 0 };
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
  for (const f of files) {
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
    const twin = await findTwin(o.store, f);
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
      if (cloned && same) toVerify.push([f, i]);
      else addNeed(f, i, off);
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
      if (data === null) data = await o.store.readChunk(need.digest, (loc) => loc.package === o.manifest.package && loc.version === versionDigest && assembling.has(loc.path));
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
  await finishTree(o.dir, o.manifest.dirs, files);
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

interface SameOffset {
  readonly path: string;
  readonly from: string;
  readonly offset: number;
  readonly size: number;
  readonly digest: string;
}

const RUN_BYTES = 4 * 1024 * 1024;

/**
 * Copies chunks that sit at the same offset in the previous version's file, in runs of up to
 * 4 MiB: read, hash every chunk of the run on worker threads while the next run is read, write
 * the chunks that verify (zeros into a new sparse file are skipped). Returns the placements done
 * ("offset@path"); anything that did not verify is left for the chunk-by-chunk path.
 */
async function copyRuns(items: readonly SameOffset[], dir: string, fresh: ReadonlySet<string>, checkAbort: () => void): Promise<Set<string>> {
  const runs: SameOffset[][] = [];
  for (const it of items) {
    const run = runs.at(-1);
    const last = run?.at(-1);
    if (run !== undefined && last !== undefined && last.path === it.path && last.offset + last.size === it.offset && it.offset + it.size - run[0]!.offset <= RUN_BYTES) run.push(it);
    else runs.push([it]);
  }
  const done = new Set<string>();
  const hasher = new ChunkHasher({ blocks: 4 }); // three runs in flight
  const reads = new Map<string, FileHandle>();
  const writes = new Map<string, FileHandle>();
  const handle = async (map: Map<string, FileHandle>, path: string, flags: string): Promise<FileHandle> => {
    let fh = map.get(path);
    if (fh === undefined) {
      if (map.size >= 8) {
        const [k, v] = map.entries().next().value as [string, FileHandle];
        map.delete(k);
        await v.close();
      }
      fh = await open(path, flags);
      map.set(path, fh);
    }
    return fh;
  };
  const one = async (run: SameOffset[]): Promise<void> => {
    const start = run[0]!.offset;
    const len = run.at(-1)!.offset + run.at(-1)!.size - start;
    const block = await hasher.block(); // RUN_BYTES <= BLOCK
    let got = 0;
    try {
      got = (await (await handle(reads, run[0]!.from, 'r')).read(block, 0, len, start)).bytesRead;
    } catch {
      got = 0;
    }
    if (got !== len) return hasher.recycle(block);
    const cuts = run.map((c) => c.offset + c.size - start);
    try {
      const digests = await hasher.hashBlock(block, cuts);
      const out = await handle(writes, join(dir, run[0]!.path), 'r+');
      // One write per stretch of verified chunks (zeros into a sparse file end a stretch).
      let from = -1;
      const flush = async (to: number): Promise<void> => {
        if (from >= 0) await out.write(block, from - start, to - from, from);
        from = -1;
      };
      for (let i = 0; i < run.length; i++) {
        const c = run[i]!;
        const ok = digests[i] === c.digest;
        const skip = !ok || (fresh.has(c.path) && isZero(block.subarray(c.offset - start, c.offset - start + c.size)));
        if (skip) await flush(c.offset);
        else if (from < 0) from = c.offset;
        if (ok) done.add(`${c.offset}@${c.path}`);
      }
      await flush(run.at(-1)!.offset + run.at(-1)!.size);
    } finally {
      hasher.recycle(block);
    }
  };
  let failure: unknown = null;
  const inFlight: Array<Promise<void>> = [];
  try {
    for (const run of runs) {
      checkAbort();
      if (failure !== null) throw failure;
      inFlight.push(one(run).catch((err: unknown) => void (failure ??= err)));
      if (inFlight.length >= 3) await inFlight.shift();
    }
  } finally {
    await Promise.all(inFlight);
    await hasher.close();
    for (const fh of [...reads.values(), ...writes.values()]) await fh.close();
  }
  if (failure !== null) throw failure;
  return done;
}

/** Reads ranges of files, keeping the last few open (sequential reads of a base file). */
class RangeReader {
  private readonly handles = new Map<string, FileHandle | null>();

  async read(path: string, offset: number, size: number): Promise<Buffer | null> {
    let fh = this.handles.get(path);
    if (fh === undefined) {
      fh = await open(path, 'r').catch(() => null);
      if (this.handles.size >= 8) {
        const [k, v] = this.handles.entries().next().value as [string, FileHandle | null];
        this.handles.delete(k);
        await v?.close();
      }
      this.handles.set(path, fh);
    }
    if (fh === null) return null;
    const buf = Buffer.allocUnsafe(size);
    const { bytesRead } = await fh.read(buf, 0, size, offset);
    return bytesRead === size ? buf : null;
  }

  async close(): Promise<void> {
    for (const fh of this.handles.values()) await fh?.close();
    this.handles.clear();
  }
}

const ZEROS = Buffer.alloc(256 * 1024);

function isZero(data: Buffer): boolean {
  for (let off = 0; off < data.length; off += ZEROS.length) {
    const n = Math.min(ZEROS.length, data.length - off);
    if (!data.subarray(off, off + n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
}

/** Writes chunks where the manifest puts them, keeping a bounded set of files open. */
class PlacementWriter {
  private readonly handles = new Map<string, { fh: Promise<FileHandle>; users: number }>();
  private readonly modes: Map<string, number>;
  constructor(private readonly dir: string, manifest: Manifest, private readonly dirty: Set<string>, private readonly fresh: ReadonlySet<string>) {
    this.modes = new Map(manifest.files.map((f) => [f.path, f.mode]));
  }

  async write(need: Need, data: Buffer): Promise<void> {
    const zero = isZero(data);
    for (const p of need.placements) {
      if (zero && this.fresh.has(p.path)) continue; // already a hole of zeros
      const h = this.acquire(p.path);
      try {
        await (await h.fh).write(data, 0, data.length, p.offset);
        this.dirty.add(p.path);
      } finally {
        h.users--;
      }
    }
  }

  private acquire(path: string): { fh: Promise<FileHandle>; users: number } {
    let h = this.handles.get(path);
    if (h === undefined) {
      if (this.handles.size >= 64) {
        for (const [k, v] of this.handles) {
          if (v.users > 0) continue;
          this.handles.delete(k);
          void v.fh.then((fh) => fh.close()).catch(() => undefined);
          break;
        }
      }
      const full = join(this.dir, path);
      h = { fh: chmod(full, (this.modes.get(path) ?? 0) | 0o600).then(() => open(full, 'r+')), users: 0 };
      this.handles.set(path, h);
    }
    h.users++;
    return h;
  }

  async close(): Promise<void> {
    for (const h of this.handles.values()) await (await h.fh.catch(() => null))?.close();
    this.handles.clear();
  }
}

async function fetchAll(
  o: AssembleOptions,
  pending: Need[],
  writer: PlacementWriter,
  stats: { fetchedChunks: number; fetchedBytes: number; rejectedChunks: number; localChunks: number },
  progress: AssembleProgress,
  done: (size: number) => void,
  report: (force: boolean) => void,
): Promise<void> {
  const queue = pending;
  let inFlight = 0;
  let roundsWithoutSource = 0;
  const takeBatch = (): { source: ChunkSource; batch: Need[] } | null => {
    const sources = o.sources();
    for (const source of sources) {
      const batch: Need[] = [];
      let bytes = 0;
      for (let i = 0; i < queue.length && batch.length < 1024 && bytes < o.batchBytes; ) {
        const n = queue[i]!;
        if (n.tried.has(source.id)) {
          i++;
          continue;
        }
        batch.push(n);
        bytes += n.size;
        queue.splice(i, 1);
      }
      if (batch.length > 0) return { source, batch };
    }
    return null;
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      if (o.signal.aborted) throw new AbortedError();
      const job = takeBatch();
      if (job === null) {
        if (queue.length === 0 && inFlight === 0) return;
        if (queue.length === 0) {
          await sleep(20, o.signal);
          continue;
        }
        // Every source has been tried for what is left (or none is reachable): wait, then start over.
        if (inFlight > 0) {
          await sleep(20, o.signal);
          continue;
        }
        roundsWithoutSource++;
        progress.reason = o.sources().length === 0 ? 'no peer to fetch from is connected' : `${queue.length} chunk(s) not available from any source yet`;
        report(true);
        await sleep(Math.min(5000, 250 * 2 ** Math.min(roundsWithoutSource, 5)), o.signal);
        for (const n of queue) n.tried.clear();
        continue;
      }
      inFlight++;
      const { source, batch } = job;
      const waiting = new Map(batch.map((n) => [n.digest, n]));
      try {
        await source.fetchChunks(batch.map((n) => n.digest), async (frame) => {
          const need = waiting.get(frame.digest);
          if (need === undefined) throw new Error(`sent chunk ${frame.digest}, which was not asked for`);
          waiting.delete(frame.digest);
          need.tried.add(source.id);
          if (frame.data === null) {
            queue.push(need);
            return;
          }
          let data: Buffer | null = frame.data;
          if (frame.deflated) data = await inflated(frame.data, need.size);
          if (data === null || data.length !== need.size || sha256Hex(data) !== need.digest) {
            stats.rejectedChunks++;
            o.log.warn('rejected a chunk that does not match its digest; fetching it elsewhere', { peer: source.id, digest: need.digest, size: data?.length ?? null, deflated: frame.deflated });
            queue.push(need);
            return;
          }
          await o.throttle?.(frame.data.length);
          await writer.write(need, data);
          stats.fetchedChunks++;
          stats.fetchedBytes += frame.data.length;
          for (let k = 0; k < need.placements.length; k++) done(need.size);
          roundsWithoutSource = 0;
        });
        progress.reason = null;
      } catch (err) {
        if (o.signal.aborted) throw new AbortedError();
        progress.reason = `fetch from ${source.id} failed: ${errorMessage(err)}`;
        o.log.warn('chunk fetch failed; retrying elsewhere', { peer: source.id, chunks: waiting.size, err: errorMessage(err) });
        report(true);
      } finally {
        inFlight--;
        for (const n of waiting.values()) {
          n.tried.add(source.id);
          queue.push(n);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
}

const inflate = promisify(inflateRaw);

/** Inflates a deflated chunk, never beyond its stated size; null if it is not valid deflate. */
async function inflated(data: Buffer, size: number): Promise<Buffer | null> {
  try {
    return await inflate(data, { maxOutputLength: size });
  } catch {
    return null;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
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
