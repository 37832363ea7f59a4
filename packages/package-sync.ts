// Syncing one package to its ref's version, and repairing damaged files of a held version: the
// long-running work of the package component (package-service.ts schedules it, one operation at
// a time per package).
import { existsSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import type { Config } from '../platform/runtime/config.ts';
import { NetbootError } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { assembleVersion } from './assemble.ts';
import type { ChunkSource } from './chunk-fetch.ts';
import { fsyncPath } from './fs-tree.ts';
import { stagingDir, versionDir, versionsDir } from './layout.ts';
import { manifestTotals, type Manifest } from './manifest.ts';
import type { PackageRef } from './model.ts';
import type { PackageStore } from './package-store.ts';
import type { RateLimiter } from './verify.ts';

const BATCH_BYTES = 4 * 1024 * 1024;

export interface WorkContext {
  readonly store: PackageStore;
  readonly config: Config;
  readonly log: Logger;
  readonly pkg: string;
  readonly ref: PackageRef;
  /** The work running per package (its digest, and how to abort it). */
  readonly running: Map<string, { digest: string | null; abort: AbortController }>;
  /** Damaged files waiting for repair, per package: path -> reason. */
  readonly repairs: Map<string, Map<string, string>>;
  readonly throttle: RateLimiter | null;
  isStopped(): boolean;
  sources(): ChunkSource[];
  manifestFor(ref: PackageRef & { digest: string }, signal: AbortSignal): Promise<Manifest>;
  updateWatches(): void;
  refreshWatch(dir: string): void;
}

export async function syncVersion(w: WorkContext): Promise<void> {
const { store, pkg, ref } = w;
  const digest = ref.digest!;
  const abort = new AbortController();
  w.running.set(pkg, { digest, abort });
  const target = versionDir(store.root, pkg, digest);
  const inPlace = existsSync(target);
  const dir = inPlace ? target : stagingDir(store.root, pkg, digest);
  store.activeStaging.add(dir);
  try {
    const started = Date.now();
    const manifest = await w.manifestFor({ ...ref, digest }, abort.signal);
    const manifestMs = Date.now() - started;
    const totals = manifestTotals(manifest);
    const prev = store.db.getStatus(pkg);
    const baseDigest = prev?.state === 'ready' && prev.digest !== digest ? prev.digest : null;
    const baseManifest = baseDigest === null ? null : store.manifest(baseDigest);
    store.setStatus(pkg, 'syncing', { seq: ref.seq, digest, bytesTotal: totals.bytes, chunksTotal: totals.chunks });
    const stats = await assembleVersion({
      dir, manifest, store, base: baseDigest !== null && baseManifest !== null ? { digest: baseDigest, manifest: baseManifest } : null,
      sources: () => w.sources(), concurrency: w.config.packages.fetchConcurrency, batchBytes: BATCH_BYTES,
      throttle: w.throttle === null ? undefined : (n) => w.throttle!.take(n),
      onProgress: (p) => {
        if (!abort.signal.aborted && !w.isStopped()) store.setStatus(pkg, 'syncing', { seq: ref.seq, digest, ...p });
      },
      signal: abort.signal, log: w.log.child({ package: pkg }),
    });
    if (!inPlace) {
      await mkdir(versionsDir(store.root, pkg), { recursive: true });
      await rename(dir, target);
      await fsyncPath(versionsDir(store.root, pkg));
    }
    await store.activate(pkg, digest, manifest);
    w.updateWatches();
    store.setStatus(pkg, 'ready', { seq: ref.seq, digest, bytesDone: totals.bytes, bytesTotal: totals.bytes, chunksDone: totals.chunks, chunksTotal: totals.chunks });
    w.repairs.delete(pkg);
    w.log.info('package ready', { package: pkg, seq: ref.seq, digest, ms: Date.now() - started, manifestMs, bytes: totals.bytes, chunks: totals.chunks, ...stats });
  } finally {
    w.running.delete(pkg);
    store.activeStaging.delete(dir);
  }
}

export async function repairVersion(w: WorkContext, files: Map<string, string>): Promise<void> {
const { store, pkg, ref } = w;
  const digest = ref.digest!;
  const paths = new Set(files.keys());
  w.repairs.delete(pkg);
  const abort = new AbortController();
  w.running.set(pkg, { digest, abort });
  try {
    const manifest = store.manifest(digest);
    if (manifest === null) throw new NetbootError('MANIFEST_MISSING', `manifest ${digest} is not held`);
    await store.deactivate(pkg); // never serve a damaged file while it is being repaired
    const stats = await assembleVersion({
      dir: versionDir(store.root, pkg, digest), manifest, only: paths, store, base: null,
      sources: () => w.sources(), concurrency: w.config.packages.fetchConcurrency, batchBytes: BATCH_BYTES,
      onProgress: () => {}, signal: abort.signal, log: w.log.child({ package: pkg }),
    });
    if ((w.repairs.get(pkg)?.size ?? 0) > 0) {
      w.log.info('package partly repaired; more damage queued', { package: pkg, digest, files: [...paths], ...stats });
      return; // the next reconcile (already queued) finishes the job before serving again
    }
    await store.reactivate(pkg, digest);
    // Damage reported during the switch has queued `current`'s removal after it: not Ready yet.
    if ((w.repairs.get(pkg)?.size ?? 0) > 0) return;
    w.refreshWatch(versionDir(store.root, pkg, digest));
    const totals = manifestTotals(manifest);
    store.setStatus(pkg, 'ready', { seq: ref.seq, digest, bytesDone: totals.bytes, bytesTotal: totals.bytes, chunksDone: totals.chunks, chunksTotal: totals.chunks });
    w.log.info('package repaired', { package: pkg, digest, files: [...paths], ...stats });
  } catch (err) {
    const again = w.repairs.get(pkg) ?? new Map<string, string>();
    for (const [p, r] of files) if (!again.has(p)) again.set(p, r);
    w.repairs.set(pkg, again);
    throw err;
  } finally {
    w.running.delete(pkg);
  }
}
