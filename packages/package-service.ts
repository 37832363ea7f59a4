// The package component of the Interface: serves packages to peers on TCP 490 (/pkg/..., and
// the /pkg-feed push channel), follows every peer's feed, and keeps each package here at its
// ref: syncing new versions, deleting tombstoned ones, repairing damaged files, collecting old
// versions. One operation at a time per package (publish, sync, repair, delete), in order.
import { existsSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAbsolute } from 'node:path';
import type { Duplex } from 'node:stream';
import { backoffDelayMs } from '../platform/runtime/backoff.ts';
import type { Config } from '../platform/runtime/config.ts';
import { HttpError, type ControlHandler } from '../platform/local/control.ts';
import { NetbootError, errorMessage } from '../platform/runtime/errors.ts';
import type { Lifecycle } from '../platform/runtime/lifecycle.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { assembleVersion } from './assemble.ts';
import type { ChunkSource } from './chunk-fetch.ts';
import { chunkingDescription } from './chunker.ts';
import { AbortedError } from './placement.ts';
import { isPackageId } from './digest.ts';
import { PackageFeedServer } from './feed-server.ts';
import { fsyncPath, removeTree } from './fs-tree.ts';
import { PackageHttp, readySources } from './http-routes.ts';
import { packageDir, readyPackagePath, stagingDir, versionDir, versionsDir } from './layout.ts';
import { isPackageKind, manifestTotals, type Manifest } from './manifest.ts';
import { fetchManifest } from './manifest-fetch.ts';
import { refIsNewer, type PackageRef, type PackageStatus } from './model.ts';
import { PackageStore, type CorruptChunk } from './package-store.ts';
import { PeerKeys } from '../platform/trust/peer-keys.ts';
import { PackagePeers } from './package-peers.ts';
import { PublishJobs, type PublishJob } from './publish-jobs.ts';
import { Scrubber } from './scrub.ts';
import { RateLimiter, VersionWatcher, readyVersions, verifyFile, verifyVersion } from './verify.ts';

/** What the package component needs from the Interface's TCP 490 listener. */
export interface PortRoutes {
  http(prefix: string, route: (req: IncomingMessage, res: ServerResponse) => void): void;
  upgrade(path: string, route: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): void;
}

export interface PackageServiceOptions {
  /** Called when this server's state for a package changes (not on every progress step). */
  readonly onStatusChange?: (status: PackageStatus) => void;
}

const BATCH_BYTES = 4 * 1024 * 1024;
const GC_EVERY_MS = 60_000;

export class PackageService implements Lifecycle {
  private storeValue: PackageStore | null = null;
  private keys: PeerKeys | null = null;
  private http: PackageHttp | null = null;
  private feed: PackageFeedServer | null = null;
  private watcher: VersionWatcher | null = null;
  private peers: PackagePeers | null = null;
  private readonly locks = new Map<string, Promise<void>>();
  private readonly queued = new Set<string>();
  private readonly running = new Map<string, { digest: string | null; abort: AbortController }>();
  private readonly repairs = new Map<string, Map<string, string>>();
  private readonly announcers = new Map<string, string>();
  private readonly failures = new Map<string, number>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private readonly jobs: PublishJobs;
  private readonly notified = new Map<string, string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private throttle: RateLimiter | null = null;
  private scrubber: Scrubber | null = null;
  private stopped = true;

  constructor(private readonly config: Config, private readonly log: Logger, private readonly port: PortRoutes, private readonly options: PackageServiceOptions = {}) {
    this.jobs = new PublishJobs((dir, pkg, kind, progress) => this.withLock(pkg, async () => {
      const r = await this.store.publish(dir, pkg, kind, progress);
      this.repairs.delete(pkg);
      this.updateWatches();
      return r;
    }), log);
  }

  private get store(): PackageStore {
    if (this.storeValue === null) throw new NetbootError('PACKAGES_STOPPED', 'package service not started');
    return this.storeValue;
  }

  async start(): Promise<void> {
    const { config, log } = this;
    this.stopped = false;
    const store = new PackageStore(config.paths.data, config.site.id, log);
    this.storeValue = store;
    const keys = new PeerKeys(config);
    this.keys = keys;
    this.http = new PackageHttp(store, keys, log.child({ part: 'pkg-http' }));
    this.feed = new PackageFeedServer(config.site.id, keys, store.db, log.child({ part: 'pkg-feed' }));
    store.onRecord = (r) => {
      this.feed?.broadcast(r);
      if (r.type === 'status') this.statusChanged(r.status);
    };
    store.onCorrupt = (c) => this.corrupt(c);
    this.port.http('/pkg/', this.http.handle);
    this.port.upgrade('/pkg-feed', this.feed.handleUpgrade);
    if (config.packages.fetchRateKib > 0) this.throttle = new RateLimiter(config.packages.fetchRateKib * 1024);
    if (config.packages.watch) this.watcher = new VersionWatcher((pkg, digest, rel) => void this.touched(pkg, digest, rel), log.child({ part: 'pkg-watch' }));

    // A crash may have left a Ready status without its `current` link (mid-repair): re-verify.
    for (const s of store.db.allStatuses()) {
      if (s.state === 'ready' && readyPackagePath(config.paths.data, s.package) === null) {
        store.setStatus(s.package, 'invalid', { seq: s.seq, digest: s.digest, reason: 'current version not in place after a restart; verifying' });
      }
    }
    this.peers = new PackagePeers(config, keys, store, {
      onRef: (ref, from) => this.adoptRef(ref, from),
      onLinkUp: () => {
        for (const ref of store.db.allRefs()) if (this.needsWork(ref)) this.kick(ref.package);
      },
    }, log);
    this.peers.start();
    for (const ref of store.db.allRefs()) this.kick(ref.package);
    this.updateWatches();
    this.timers.push(setInterval(() => void this.collectGarbage(), Math.max(1000, Math.min(GC_EVERY_MS, config.packages.gcGraceMs))));
    this.timers.push(setInterval(() => void this.antiEntropy(), config.packages.antiEntropyMs));
    if (config.packages.scrubIntervalMs > 0) {
      const target = { store, busy: (pkg: string) => this.running.has(pkg), onDamage: (pkg: string, digest: string, path: string, reason: string) => this.scheduleRepair(pkg, digest, path, reason) };
      this.scrubber = new Scrubber(target, config.packages.scrubIntervalMs, config.packages.scrubRateMib, log);
      this.scrubber.start();
    }
    log.info('packages serving', { packages: store.db.allRefs().length, peers: this.peers.size, chunking: chunkingDescription() });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const t of this.retryTimers.values()) clearTimeout(t);
    for (const r of this.running.values()) r.abort.abort();
    this.peers?.stop();
    await Promise.allSettled([...this.locks.values(), this.scrubber?.stop()]);
    this.scrubber = null;
    await this.watcher?.stop();
    this.feed?.stop();
    this.storeValue?.close();
    this.storeValue = null;
  }

  // ---- peers --------------------------------------------------------------------------------

  private adoptRef(ref: PackageRef, from: string): void {
    const current = this.store.db.getRef(ref.package);
    if (!refIsNewer(ref, current)) return;
    this.log.info('package ref received', { package: ref.package, seq: ref.seq, digest: ref.digest, owner: ref.owner, peer: from, notifyMs: Date.now() - Date.parse(ref.updatedAt) });
    this.store.putRef(ref);
    this.announcers.set(ref.package, from);
    this.failures.delete(ref.package);
    this.kick(ref.package);
  }

  /** Full comparison with every peer: anything a push missed is picked up here. */
  private async antiEntropy(): Promise<void> {
    await this.peers?.antiEntropy();
    if (this.stopped) return;
    for (const ref of this.store.db.allRefs()) if (this.needsWork(ref)) this.kick(ref.package);
  }

  private sourcesFor(pkg: string, ref: PackageRef): ChunkSource[] {
    return this.peers?.ranked(ref, this.announcers.get(pkg)) ?? [];
  }

  /** Servers Ready at the package's current digest (GET /pkg/sources/<id>). */
  sources(pkg: string): ReturnType<typeof readySources> {
    return readySources(this.store, this.keys!, pkg);
  }

  // ---- per-package work ---------------------------------------------------------------------

  private needsWork(ref: PackageRef): boolean {
    const s = this.store.db.getStatus(ref.package);
    if (ref.digest === null) return s !== null && s.state !== 'absent';
    return s === null || s.state !== 'ready' || s.digest !== ref.digest || (this.repairs.get(ref.package)?.size ?? 0) > 0;
  }

  private withLock<T>(pkg: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(pkg) ?? Promise.resolve();
    const next = prev.then(fn);
    const settled = next.then(() => undefined, () => undefined);
    this.locks.set(pkg, settled);
    void settled.then(() => {
      if (this.locks.get(pkg) === settled) this.locks.delete(pkg);
    });
    return next;
  }

  /** Brings a package here in line with its ref, now or right after what is running for it. */
  private kick(pkg: string): void {
    if (this.stopped) return;
    const ref = this.store.db.getRef(pkg);
    const run = this.running.get(pkg);
    if (run !== undefined && ref !== null && run.digest !== ref.digest) run.abort.abort();
    if (this.queued.has(pkg)) return;
    this.queued.add(pkg);
    void this.withLock(pkg, async () => {
      this.queued.delete(pkg);
      if (!this.stopped) await this.reconcile(pkg);
    });
  }

  private retryLater(pkg: string): void {
    const n = (this.failures.get(pkg) ?? 0) + 1;
    this.failures.set(pkg, n);
    clearTimeout(this.retryTimers.get(pkg));
    this.retryTimers.set(pkg, setTimeout(() => {
      this.retryTimers.delete(pkg);
      this.kick(pkg);
    }, backoffDelayMs(n, { baseMs: 500, capMs: 30_000 })));
  }

  private async reconcile(pkg: string): Promise<void> {
    const store = this.store;
    const ref = store.db.getRef(pkg);
    if (ref === null) return;
    const status = store.db.getStatus(pkg);
    try {
      if (ref.digest === null) {
        if ((status === null || status.state === 'absent') && !existsSync(packageDir(store.root, pkg))) return;
        store.setStatus(pkg, 'deleting', { seq: ref.seq, digest: null });
        await store.removePackage(pkg);
        store.setStatus(pkg, 'absent', { seq: ref.seq, digest: null });
        this.repairs.delete(pkg);
        this.updateWatches();
        this.log.info('package deleted', { package: pkg, seq: ref.seq });
        return;
      }
      const repairs = this.repairs.get(pkg);
      const held = status !== null && status.digest === ref.digest && (status.state === 'ready' || status.state === 'invalid');
      if (held && repairs !== undefined && repairs.size > 0 && existsSync(versionDir(store.root, pkg, ref.digest))) {
        await this.repair(pkg, ref, repairs);
        return;
      }
      if (status?.state === 'ready' && status.digest === ref.digest) return;
      await this.sync(pkg, ref);
      this.failures.delete(pkg);
    } catch (err) {
      if (err instanceof AbortedError || this.stopped) return;
      this.log.warn('package work failed; will retry', { package: pkg, seq: ref.seq, err: errorMessage(err) });
      const now = store.db.getStatus(pkg);
      store.setStatus(pkg, now?.state === 'ready' && now.digest === ref.digest ? 'invalid' : now?.state === 'invalid' ? 'invalid' : 'syncing', {
        seq: ref.seq, digest: ref.digest, reason: errorMessage(err), bytesDone: now?.bytesDone, bytesTotal: now?.bytesTotal, chunksDone: now?.chunksDone, chunksTotal: now?.chunksTotal,
      });
      this.retryLater(pkg);
    }
  }

  /** The manifest for a ref: held, or from whoever announced it, the owner, then the other sources. */
  private manifestFor(pkg: string, ref: PackageRef & { digest: string }, signal: AbortSignal): Promise<Manifest> {
    const order = [this.announcers.get(pkg), ref.owner, ...this.sourcesFor(pkg, ref).map((s) => s.id)];
    const links = [...new Set(order)].map((id) => (id === undefined ? undefined : this.peers?.get(id))).filter((l) => l !== undefined);
    return fetchManifest(this.store, ref, links, signal, this.log);
  }

  private async sync(pkg: string, ref: PackageRef): Promise<void> {
    const store = this.store;
    const digest = ref.digest!;
    const abort = new AbortController();
    this.running.set(pkg, { digest, abort });
    const target = versionDir(store.root, pkg, digest);
    const inPlace = existsSync(target);
    const dir = inPlace ? target : stagingDir(store.root, pkg, digest);
    store.activeStaging.add(dir);
    try {
      const started = Date.now();
      const manifest = await this.manifestFor(pkg, { ...ref, digest }, abort.signal);
      const manifestMs = Date.now() - started;
      const totals = manifestTotals(manifest);
      const prev = store.db.getStatus(pkg);
      const baseDigest = prev?.state === 'ready' && prev.digest !== digest ? prev.digest : null;
      const baseManifest = baseDigest === null ? null : store.manifest(baseDigest);
      store.setStatus(pkg, 'syncing', { seq: ref.seq, digest, bytesTotal: totals.bytes, chunksTotal: totals.chunks });
      const stats = await assembleVersion({
        dir, manifest, store, base: baseDigest !== null && baseManifest !== null ? { digest: baseDigest, manifest: baseManifest } : null,
        sources: () => this.sourcesFor(pkg, ref), concurrency: this.config.packages.fetchConcurrency, batchBytes: BATCH_BYTES,
        throttle: this.throttle === null ? undefined : (n) => this.throttle!.take(n),
        onProgress: (p) => {
          if (!abort.signal.aborted && !this.stopped) store.setStatus(pkg, 'syncing', { seq: ref.seq, digest, ...p });
        },
        signal: abort.signal, log: this.log.child({ package: pkg }),
      });
      if (!inPlace) {
        await mkdir(versionsDir(store.root, pkg), { recursive: true });
        await rename(dir, target);
        await fsyncPath(versionsDir(store.root, pkg));
      }
      await store.activate(pkg, digest, manifest);
      this.updateWatches();
      store.setStatus(pkg, 'ready', { seq: ref.seq, digest, bytesDone: totals.bytes, bytesTotal: totals.bytes, chunksDone: totals.chunks, chunksTotal: totals.chunks });
      this.repairs.delete(pkg);
      this.log.info('package ready', { package: pkg, seq: ref.seq, digest, ms: Date.now() - started, manifestMs, bytes: totals.bytes, chunks: totals.chunks, ...stats });
    } finally {
      this.running.delete(pkg);
      store.activeStaging.delete(dir);
    }
  }

  private async repair(pkg: string, ref: PackageRef, files: Map<string, string>): Promise<void> {
    const store = this.store;
    const digest = ref.digest!;
    const paths = new Set(files.keys());
    this.repairs.delete(pkg);
    const abort = new AbortController();
    this.running.set(pkg, { digest, abort });
    try {
      const manifest = store.manifest(digest);
      if (manifest === null) throw new NetbootError('MANIFEST_MISSING', `manifest ${digest} is not held`);
      await store.deactivate(pkg); // never serve a damaged file while it is being repaired
      const stats = await assembleVersion({
        dir: versionDir(store.root, pkg, digest), manifest, only: paths, store, base: null,
        sources: () => this.sourcesFor(pkg, ref), concurrency: this.config.packages.fetchConcurrency, batchBytes: BATCH_BYTES,
        onProgress: () => {}, signal: abort.signal, log: this.log.child({ package: pkg }),
      });
      if ((this.repairs.get(pkg)?.size ?? 0) > 0) {
        this.log.info('package partly repaired; more damage queued', { package: pkg, digest, files: [...paths], ...stats });
        return; // the next reconcile (already queued) finishes the job before serving again
      }
      await store.reactivate(pkg, digest);
      // Damage reported during the switch has queued `current`'s removal after it: not Ready yet.
      if ((this.repairs.get(pkg)?.size ?? 0) > 0) return;
      this.watcher?.refresh(versionDir(store.root, pkg, digest));
      const totals = manifestTotals(manifest);
      store.setStatus(pkg, 'ready', { seq: ref.seq, digest, bytesDone: totals.bytes, bytesTotal: totals.bytes, chunksDone: totals.chunks, chunksTotal: totals.chunks });
      this.log.info('package repaired', { package: pkg, digest, files: [...paths], ...stats });
    } catch (err) {
      const again = this.repairs.get(pkg) ?? new Map<string, string>();
      for (const [p, r] of files) if (!again.has(p)) again.set(p, r);
      this.repairs.set(pkg, again);
      throw err;
    } finally {
      this.running.delete(pkg);
    }
  }

  // ---- damage ---------------------------------------------------------------------------------

  /** A file of a held version is damaged: take the package out of service and repair that file. */
  private scheduleRepair(pkg: string, digest: string, path: string, reason: string): void {
    if (this.stopped || (this.store.currentDigest(pkg) !== digest && this.store.db.getStatus(pkg)?.state !== 'invalid')) return;
    let files = this.repairs.get(pkg);
    if (files === undefined) {
      files = new Map();
      this.repairs.set(pkg, files);
    }
    if (files.has(path)) return;
    files.set(path, reason);
    this.log.warn('package file damaged; repairing it', { package: pkg, digest, path, reason });
    const s = this.store.db.getStatus(pkg);
    this.store.setStatus(pkg, 'invalid', { seq: s?.seq, digest, reason: `${path}: ${reason}` });
    void this.store.deactivate(pkg).catch((err) => this.log.error('cannot take damaged package out of service', { package: pkg, err: errorMessage(err) }));
    this.kick(pkg);
  }

  private corrupt(c: CorruptChunk): void {
    const s = this.store.db.getStatus(c.package);
    if (s !== null && s.digest === c.version && (s.state === 'ready' || s.state === 'invalid')) {
      this.scheduleRepair(c.package, c.version, c.path, c.reason);
      return;
    }
    // A damaged copy in a replaced version: drop that version now rather than repair it.
    void this.withLock(c.package, async () => {
      if (this.store.db.versionsOf(c.package).some((v) => v.digest === c.version && v.retiredAtMs !== null)) {
        this.store.db.removeVersion(c.package, c.version);
        await removeTree(versionDir(this.store.root, c.package, c.version));
        this.log.warn('removed a replaced version with a damaged file', { package: c.package, digest: c.version, path: c.path });
      }
    });
  }

  private async touched(pkg: string, digest: string, rel: string): Promise<void> {
    if (this.stopped || this.running.has(pkg) || this.store.currentDigest(pkg) !== digest) return;
    const m = this.store.manifest(digest);
    if (m === null) return;
    const dir = versionDir(this.store.root, pkg, digest);
    const files = m.files.filter((f) => f.path === rel || f.path.startsWith(rel + '/'));
    for (const f of files) {
      const p = await verifyFile(dir, f);
      if (p !== null) this.scheduleRepair(pkg, digest, p.path, p.reason);
    }
  }

  /** Watches every version `current` points at (called right after each switch). */
  private updateWatches(): void {
    if (this.watcher !== null && !this.stopped) this.watcher.set(readyVersions(this.store, this.config.paths.data));
  }

  private async collectGarbage(): Promise<void> {
    if (this.stopped) return;
    try {
      const removed = await this.store.collectGarbage(Date.now(), this.config.packages.gcGraceMs);
      if (removed.length > 0) this.log.info('package garbage collected', { removed });
    } catch (err) {
      this.log.warn('package garbage collection failed', { err: errorMessage(err) });
    }
  }

  private statusChanged(s: PackageStatus): void {
    const key = `${s.state}|${s.digest}|${s.seq}`;
    if (this.notified.get(s.package) === key) return;
    this.notified.set(s.package, key);
    this.log.info('package status', { package: s.package, state: s.state, seq: s.seq, digest: s.digest, reason: s.reason });
    try {
      this.options.onStatusChange?.(s);
    } catch (err) {
      this.log.error('status hook failed', { err: errorMessage(err) });
    }
  }

  // ---- control socket (the CLI) ----------------------------------------------------------------

  /** Routes for the Interface's control socket. */
  controlRoutes(): Record<string, ControlHandler> {
    return {
      'GET /packages': (req) => this.describe(req.query.get('id')),
      'POST /packages/publish': (req) => ({ job: this.startPublish(req.body).job.id }),
      'GET /packages/jobs': (req) => {
        const job = this.jobs.get(req.query.get('id') ?? '');
        if (job === undefined) throw new HttpError(404, 'no such publish job');
        return job;
      },
      'POST /packages/rm': (req) => this.remove(req.body),
      'POST /packages/verify': (req) => this.verify(req.body),
    };
  }

  /** A manifest held here, decoded. */
  manifest(digest: string): Manifest | null {
    return this.store.manifest(digest);
  }

  describe(id: string | null): unknown {
    const db = this.store.db;
    const refs = db.allRefs().filter((r) => id === null || r.package === id);
    if (id !== null && refs.length === 0) throw new HttpError(404, `no package ${id}`);
    return {
      server: this.config.site.id,
      links: this.peers?.describe() ?? [],
      served: Object.fromEntries(this.http?.served ?? []),
      packages: refs.map((ref) => ({
        ref,
        statuses: [db.getStatus(ref.package), ...db.peerStatusesOf(ref.package)].filter((s) => s !== null),
        path: readyPackagePath(this.config.paths.data, ref.package),
      })),
    };
  }

  private startPublish(body: unknown): { job: PublishJob; settled: Promise<void> } {
    const b = (body ?? {}) as { dir?: unknown; id?: unknown; kind?: unknown };
    if (typeof b.dir !== 'string' || !isAbsolute(b.dir)) throw new HttpError(400, 'dir: an absolute path is required');
    if (!isPackageId(b.id)) throw new HttpError(400, 'id: letters, digits, ".", "_" and "-" (up to 128), not starting with "."');
    if (!isPackageKind(b.kind)) throw new HttpError(400, 'kind: image, driver or preboot');
    const ref = this.store.db.getRef(b.id);
    if (ref !== null && ref.digest !== null && ref.owner !== this.config.site.id) {
      throw new HttpError(409, `package ${b.id} is owned by ${ref.owner}; publish it there (or remove it there first)`);
    }
    return this.jobs.start(b.dir, b.id, b.kind);
  }

  /** Publishes directly (tests, bench): same path as the CLI's job. */
  async publish(dir: string, pkg: string, kind: 'image' | 'driver' | 'preboot'): Promise<PackageRef> {
    const { job, settled } = this.startPublish({ dir, id: pkg, kind });
    await settled;
    if (job.state !== 'done') throw new NetbootError('PUBLISH_FAILED', job.error ?? 'publish did not finish');
    return job.ref!;
  }

  async remove(body: unknown): Promise<PackageRef> {
    const id = (body as { id?: unknown } | null)?.id;
    if (!isPackageId(id)) throw new HttpError(400, 'id: a package id is required');
    return this.withLock(id, async () => {
      const ref = this.store.db.getRef(id);
      if (ref === null || ref.digest === null) throw new HttpError(404, `no package ${id}`);
      if (ref.owner !== this.config.site.id) throw new HttpError(409, `package ${id} is owned by ${ref.owner}; remove it there`);
      const tomb: PackageRef = { ...ref, seq: ref.seq + 1, digest: null, updatedAt: new Date().toISOString() };
      this.store.putRef(tomb);
      this.log.info('package removed (tombstone)', { package: id, seq: tomb.seq });
      this.kick(id);
      return tomb;
    });
  }

  async verify(body: unknown): Promise<unknown> {
    const id = (body as { id?: unknown } | null)?.id;
    if (!isPackageId(id)) throw new HttpError(400, 'id: a package id is required');
    return this.withLock(id, async () => {
      const s = this.store.db.getStatus(id);
      if (s === null || s.digest === null || (s.state !== 'ready' && s.state !== 'invalid')) throw new HttpError(409, `package ${id} is not held here (${s?.state ?? 'absent'})`);
      const m = this.store.manifest(s.digest);
      if (m === null) throw new HttpError(500, `manifest ${s.digest} missing`);
      const problems = await verifyVersion(versionDir(this.store.root, id, s.digest), m);
      for (const p of problems) this.scheduleRepair(id, s.digest, p.path, `verify: ${p.reason}`);
      const totals = manifestTotals(m);
      return { package: id, digest: s.digest, files: m.files.length, bytes: totals.bytes, chunks: totals.chunks, problems, repairing: problems.length > 0 };
    });
  }
}
