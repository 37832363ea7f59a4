// The package component of the Interface: serves packages to peers on TCP 490 (/pkg/..., and
// the /pkg-feed push channel), follows every peer's feed, and keeps each package here at its
// ref: syncing new versions, deleting tombstoned ones, repairing damaged files, collecting old
// versions. One operation at a time per package (publish, sync, repair, delete), in order.
// Built by buildPackages (package-parts.ts) with its parts; start/stop only.
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAbsolute } from 'node:path';
import type { Duplex } from 'node:stream';
import { backoffDelayMs } from '../platform/runtime/backoff.ts';
import type { Config } from '../platform/runtime/config.ts';
import { HttpError, type ControlHandler } from '../platform/local/control.ts';
import { NetbootError, errorMessage } from '../platform/runtime/errors.ts';
import type { Lifecycle } from '../platform/runtime/lifecycle.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import type { PeerKeys } from '../platform/trust/peer-keys.ts';
import type { ChunkSource } from './chunk-fetch.ts';
import { chunkingDescription } from './chunker.ts';
import { AbortedError } from './placement.ts';
import { isPackageId } from './digest.ts';
import type { PackageFeedServer } from './feed-server.ts';
import { removeTree } from './fs-tree.ts';
import { readySources, type AgentAccess, type AgentUploads, type PackageHttp } from './http-routes.ts';
import { packageDir, readyPackagePath, versionDir } from './layout.ts';
import { isPackageKind, manifestTotals, type Manifest, type PackageKind } from './manifest.ts';
import { fetchManifest } from './manifest-fetch.ts';
import { refIsNewer, type PackageRef, type PackageStatus } from './model.ts';
import type { FeedRecord } from './package-db.ts';
import type { CorruptChunk, PackageStore } from './package-store.ts';
import type { PackagePeers } from './package-peers.ts';
import { repairVersion, syncVersion, type WorkContext } from './package-sync.ts';
import type { PublishJob, PublishJobs } from './publish-jobs.ts';
import type { PublishProgress } from './publish.ts';
import type { Scrubber } from './scrub.ts';
import { probeReflinks } from './snapshots.ts';
import { readyVersions, SEGMENTS_REL, verifyFile, verifyVersion, type RateLimiter, type VersionWatcher } from './verify.ts';
import { segmentsOf } from './segments.ts';

/** What the package component needs from the Interface's TCP 490 listener. */
export interface PortRoutes {
  http(prefix: string, route: (req: IncomingMessage, res: ServerResponse) => void): void;
  upgrade(path: string, route: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): void;
}

export interface PackageHooks {
  /** Called when this server's state for a package changes (not on every progress step). */
  readonly onStatusChange?: (status: PackageStatus) => void;
  /** Checks a folder before it is published (e.g. a driver package's driver.json); throws to refuse. */
  readonly checkPublish?: (dir: string, kind: PackageKind) => void;
  /** Imaging agents' job secrets on the package routes (the Interface's JobBook); none: peers only. */
  readonly agents?: AgentAccess;
  /** Where an agent's capture uploads go (/pkg/uploads/, images/capture-uploads.ts); none: uploads refused. */
  readonly uploads?: AgentUploads;
}

/** The parts the package component runs (package-parts.ts builds them). */
export interface PackageParts {
  readonly port: PortRoutes;
  readonly store: PackageStore;
  readonly keys: PeerKeys;
  readonly http: PackageHttp;
  readonly feed: PackageFeedServer;
  readonly peers: PackagePeers;
  readonly jobs: PublishJobs;
  /** [packages] fetch_rate_kib > 0. */
  readonly throttle: RateLimiter | null;
  /** [packages] watch. */
  readonly watcher: VersionWatcher | null;
  /** [packages] scrub_interval_ms > 0. */
  readonly scrubber: Scrubber | null;
}

const GC_EVERY_MS = 60_000;

export class PackageService implements Lifecycle {
  private readonly store: PackageStore;
  private readonly locks = new Map<string, Promise<void>>();
  private readonly queued = new Set<string>();
  private readonly active = new Map<string, { digest: string | null; abort: AbortController }>();
  private readonly repairs = new Map<string, Map<string, string>>();
  private readonly announcers = new Map<string, string>();
  private readonly failures = new Map<string, number>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private readonly notified = new Map<string, string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private phase: 'new' | 'running' | 'stopped' = 'new';

  constructor(private readonly config: Config, private readonly log: Logger, private readonly parts: PackageParts, private readonly hooks: PackageHooks = {}) {
    this.store = parts.store;
  }

  /** Started and not stopped: the control routes answer only then. */
  get running(): boolean {
    return this.phase === 'running';
  }

  private get stopped(): boolean {
    return this.phase !== 'running';
  }

  async start(): Promise<void> {
    const { config, log, store } = this;
    const { port, http, feed, peers, scrubber } = this.parts;
    this.phase = 'running';
    port.http('/pkg/', http.handle);
    port.upgrade('/pkg-feed', feed.handleUpgrade);
    // A crash may have left a Ready status without its `current` link (mid-repair): re-verify.
    for (const s of store.db.allStatuses()) {
      if (s.state === 'ready' && readyPackagePath(config.paths.data, s.package) === null) {
        store.setStatus(s.package, 'invalid', { seq: s.seq, digest: s.digest, reason: 'current version not in place after a restart; verifying' });
      }
    }
    peers.start();
    for (const ref of store.db.allRefs()) this.kick(ref.package);
    this.updateWatches();
    this.timers.push(setInterval(() => void this.collectGarbage(), Math.max(1000, Math.min(GC_EVERY_MS, config.packages.gcGraceMs))));
    this.timers.push(setInterval(() => void this.antiEntropy(), config.packages.antiEntropyMs));
    scrubber?.start();
    // How a new version shares what it does not change: large image files as segments (any
    // filesystem); other files cloned from the previous version where the filesystem shares
    // blocks (reflinks), else copied in runs; large sources read from reflinked snapshots.
    const reflinks = await probeReflinks(store.root).catch(() => false);
    log.info('packages serving', { packages: store.db.allRefs().length, peers: peers.size, chunking: chunkingDescription(), reflinks, versions: reflinks ? 'large image files in shared segments; other files reflinked from the previous version; publish compares reflinked snapshots by extent' : 'large image files in shared segments; other files copied from the previous version (no reflinks here); publish reads large files whole' });
  }

  async stop(): Promise<void> {
    if (this.phase === 'stopped') return;
    const started = this.phase === 'running';
    this.phase = 'stopped';
    if (started) {
      for (const t of this.timers) clearInterval(t);
      for (const t of this.retryTimers.values()) clearTimeout(t);
      for (const r of this.active.values()) r.abort.abort();
      this.parts.peers.stop();
      await Promise.allSettled([...this.locks.values(), this.parts.scrubber?.stop()]);
      await this.parts.watcher?.stop();
      this.parts.feed.stop();
    }
    this.store.close();
  }

  // ---- what the parts report ------------------------------------------------------------------

  onRecord(r: FeedRecord): void {
    this.parts.feed.broadcast(r);
    if (r.type === 'status') this.statusChanged(r.status);
  }

  /** A feed link came up: anything still to do may now find a source. */
  linkUp(): void {
    for (const ref of this.store.db.allRefs()) if (this.needsWork(ref)) this.kick(ref.package);
  }

  /** A sync or repair runs for the package (the scrubber skips it). */
  busy(pkg: string): boolean {
    return this.active.has(pkg);
  }

  runPublish(dir: string, pkg: string, kind: PackageKind, progress: PublishProgress): Promise<{ ref: PackageRef; hashMs: number }> {
    return this.withLock(pkg, async () => {
      const r = await this.store.publish(dir, pkg, kind, progress);
      this.repairs.delete(pkg);
      this.updateWatches();
      return r;
    });
  }

  /** Runs `fn` on the store under the package's lock (disk image import and export: images/image-routes.ts). */
  withStore<T>(pkg: string, fn: (store: PackageStore) => Promise<T>): Promise<T> {
    return this.withLock(pkg, async () => {
      const r = await fn(this.store);
      this.updateWatches();
      return r;
    });
  }

  // ---- peers --------------------------------------------------------------------------------

  adoptRef(ref: PackageRef, from: string): void {
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
    await this.parts.peers.antiEntropy();
    if (this.stopped) return;
    for (const ref of this.store.db.allRefs()) if (this.needsWork(ref)) this.kick(ref.package);
  }

  private sourcesFor(pkg: string, ref: PackageRef): ChunkSource[] {
    return this.parts.peers.ranked(ref, this.announcers.get(pkg));
  }

  /** Servers Ready at the package's current digest (GET /pkg/sources/<id>). */
  sources(pkg: string): ReturnType<typeof readySources> {
    return readySources(this.store, this.parts.keys, pkg);
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
    const run = this.active.get(pkg);
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
        await repairVersion(this.work(pkg, ref), repairs);
        return;
      }
      if (status?.state === 'ready' && status.digest === ref.digest) return;
      await syncVersion(this.work(pkg, ref));
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

  /** What syncing and repairing one package need from the service. */
  private work(pkg: string, ref: PackageRef): WorkContext {
    return {
      store: this.store, config: this.config, log: this.log, pkg, ref, running: this.active, repairs: this.repairs,
      throttle: this.parts.throttle, isStopped: () => this.stopped, sources: () => this.sourcesFor(pkg, ref),
      manifestFor: (r, signal) => this.manifestFor(pkg, r, signal), updateWatches: () => this.updateWatches(),
      refreshWatch: (dir) => this.parts.watcher?.refresh(dir),
    };
  }

  /** The manifest for a ref: held, or from whoever announced it, the owner, then the other sources. */
  private manifestFor(pkg: string, ref: PackageRef & { digest: string }, signal: AbortSignal): Promise<Manifest> {
    const order = [this.announcers.get(pkg), ref.owner, ...this.sourcesFor(pkg, ref).map((s) => s.id)];
    const links = [...new Set(order)].map((id) => (id === undefined ? undefined : this.parts.peers.get(id))).filter((l) => l !== undefined);
    return fetchManifest(this.store, ref, links, signal, this.log);
  }

  // ---- damage ---------------------------------------------------------------------------------

  /** A file of a held version is damaged: take the package out of service and repair that file. */
  scheduleRepair(pkg: string, digest: string, path: string, reason: string): void {
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

  corrupt(c: CorruptChunk): void {
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

  async touched(pkg: string, digest: string, rel: string): Promise<void> {
    if (this.stopped || this.active.has(pkg) || this.store.currentDigest(pkg) !== digest) return;
    const m = this.store.manifest(digest);
    if (m === null) return;
    const dir = versionDir(this.store.root, pkg, digest);
    // A segment changed: the files of this version that use it (none for another version's).
    const segment = rel.startsWith(`${SEGMENTS_REL}/`) ? rel.slice(SEGMENTS_REL.length + 1) : null;
    const files = segment !== null
      ? m.files.filter((f) => this.store.segmented(m, f) && segmentsOf(f.chunks).some((s) => s.name === segment))
      : m.files.filter((f) => f.path === rel || f.path.startsWith(rel + '/'));
    for (const f of files) {
      const p = await verifyFile(dir, f, undefined, undefined, this.store.segmented(m, f));
      if (p !== null) this.scheduleRepair(pkg, digest, p.path, p.reason);
    }
  }

  /** Watches every version `current` points at (called right after each switch). */
  private updateWatches(): void {
    if (this.parts.watcher !== null && !this.stopped) this.parts.watcher.set(readyVersions(this.store, this.config.paths.data));
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
      this.hooks.onStatusChange?.(s);
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
        const job = this.parts.jobs.get(req.query.get('id') ?? '');
        if (job === undefined) throw new HttpError(404, 'no such publish job');
        return job;
      },
      'POST /packages/rm': (req) => this.remove(req.body),
      'POST /packages/verify': (req) => this.verify(req.body),
    };
  }

  /**
   * The packages of `kind` with a Ready version on this server (the one `current` points at, also
   * while a newer one syncs), unless deleted: id, that version's digest and folder.
   */
  readyOfKind(kind: PackageKind): Array<{ id: string; digest: string; dir: string }> {
    const out: Array<{ id: string; digest: string; dir: string }> = [];
    for (const ref of this.store.db.allRefs()) {
      if (ref.kind !== kind || ref.digest === null) continue;
      const dir = readyPackagePath(this.config.paths.data, ref.package);
      if (dir !== null) out.push({ id: ref.package, digest: dir.slice(dir.lastIndexOf('/') + 1), dir });
    }
    return out;
  }

  /** A package's ref here (its owner, kind and current version), or null. */
  refOf(id: string): PackageRef | null {
    return this.store.db.getRef(id);
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
      links: this.parts.peers.describe(),
      served: Object.fromEntries(this.parts.http.served),
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
    try {
      this.hooks.checkPublish?.(b.dir, b.kind);
    } catch (err) {
      throw new HttpError(400, errorMessage(err));
    }
    const ref = this.store.db.getRef(b.id);
    if (ref !== null && ref.digest !== null && ref.owner !== this.config.site.id) {
      throw new HttpError(409, `package ${b.id} is owned by ${ref.owner}; publish it there (or remove it there first)`);
    }
    return this.parts.jobs.start(b.dir, b.id, b.kind);
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
      const problems = await verifyVersion(versionDir(this.store.root, id, s.digest), m, undefined, undefined, (f) => this.store.segmented(m, f));
      for (const p of problems) this.scheduleRepair(id, s.digest, p.path, `verify: ${p.reason}`);
      const totals = manifestTotals(m);
      return { package: id, digest: s.digest, files: m.files.length, bytes: totals.bytes, chunks: totals.chunks, problems, repairing: problems.length > 0 };
    });
  }
}
