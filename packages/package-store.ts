// The packages held on this server: materialised versions on disk plus their index in SQLite.
// Every change to a ref or to this server's status is written, then reported through `onRecord`
// (the feed pushes it to subscribers). No networking here.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NetbootError } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { sha256Hex } from './digest.ts';
import { fsyncPath, removeLink, removeTree, switchLink, walkTree } from './fs-tree.ts';
import { currentLink, packageDir, packagesRoot, segmentsDir, stagingDir, stagingRoot, stateDir, versionDir, versionsDir } from './layout.ts';
import { decodeManifest, decodeManifestTop, manifestTotals, partDigests, type Manifest, type ManifestFile, type PackageKind } from './manifest.ts';
import type { PackageRef, PackageStatus, StatusState } from './model.ts';
import { PackageDb, type ChunkLocation, type FeedRecord } from './package-db.ts';
import { buildVersion, type PublishProgress } from './publish.ts';
import { matchesVersion, sameContent } from './publish-unchanged.ts';
import { Snapshots } from './snapshots.ts';
import { DEFAULT_SEGMENT_RULE, isSegmented, readFileRange, readRange, segmentNames, type SegmentRule } from './segments.ts';

export interface CorruptChunk {
  readonly package: string;
  readonly version: string;
  readonly path: string;
  readonly reason: string;
}

/** What the store reports (given at construction by the composition root). */
export interface StoreEvents {
  onRecord(record: FeedRecord): void;
  onCorrupt(c: CorruptChunk): void;
}

export class PackageStore {
  readonly root: string;
  readonly db: PackageDb;
  /** Called after every committed ref or local status change. */
  onRecord: (record: FeedRecord) => void = () => {};
  /** Called when a stored chunk does not hash to its name (the file needs repair). */
  onCorrupt: (c: CorruptChunk) => void = () => {};
  /** Staging folders in use (publish or sync): garbage collection leaves them alone. */
  readonly activeStaging = new Set<string>();
  private readonly manifests = new Map<string, Manifest>();
  /** The last change of each package's `current` link: changes apply in the order asked for. */
  private readonly linkChanges = new Map<string, Promise<void>>();

  /** Which files are stored as segments here (segments.ts); tests lower the size. */
  readonly segments: SegmentRule;

  constructor(dataDir: string, readonly serverId: string, private readonly log: Logger, events: Partial<StoreEvents> = {}, opts: { segments?: SegmentRule } = {}) {
    this.root = packagesRoot(dataDir);
    this.segments = opts.segments ?? DEFAULT_SEGMENT_RULE;
    this.db = new PackageDb(stateDir(this.root));
    if (events.onRecord !== undefined) this.onRecord = events.onRecord;
    if (events.onCorrupt !== undefined) this.onCorrupt = events.onCorrupt;
  }

  close(): void {
    this.db.close();
  }

  /** A held manifest with its parts resolved (manifests are immutable: the last few are cached). */
  manifest(digest: string): Manifest | null {
    const cached = this.manifests.get(digest);
    if (cached !== undefined) return cached;
    const body = this.db.getManifest(digest);
    if (body === null) return null;
    const m = decodeManifest(body, (d) => this.db.getManifest(d));
    this.manifests.set(digest, m);
    if (this.manifests.size > 16) this.manifests.delete(this.manifests.keys().next().value as string);
    return m;
  }

  /** Whether a file of this manifest is stored as segments here. */
  segmented(m: Pick<Manifest, 'kind'>, f: Pick<ManifestFile, 'size'>): boolean {
    return isSegmented(this.segments, m.kind, f);
  }

  /** Stores a manifest's parts, then the manifest: a held manifest always has its parts. */
  putManifest(encoded: { digest: string; body: Buffer; parts: ReadonlyMap<string, Buffer> }): void {
    this.db.transaction(() => {
      for (const [d, bytes] of encoded.parts) this.db.putManifest(d, bytes);
      this.db.putManifest(encoded.digest, encoded.body);
    });
  }

  /** The digest `current` points at, if the package is Ready here. */
  currentDigest(pkg: string): string | null {
    const s = this.db.getStatus(pkg);
    return s !== null && s.state === 'ready' ? s.digest : null;
  }

  setStatus(pkg: string, state: StatusState, fields: Partial<Omit<PackageStatus, 'server' | 'package' | 'state' | 'updatedAt'>> = {}): PackageStatus {
    const prev = this.db.getStatus(pkg);
    const status: PackageStatus = {
      server: this.serverId, package: pkg, state,
      seq: fields.seq ?? prev?.seq ?? 0, digest: fields.digest !== undefined ? fields.digest : prev?.digest ?? null,
      bytesDone: fields.bytesDone ?? 0, bytesTotal: fields.bytesTotal ?? 0, chunksDone: fields.chunksDone ?? 0, chunksTotal: fields.chunksTotal ?? 0,
      reason: fields.reason ?? null, updatedAt: new Date().toISOString(),
    };
    const logSeq = this.db.putStatus(status);
    this.onRecord({ type: 'status', logSeq, status });
    return status;
  }

  putRef(ref: PackageRef): void {
    const logSeq = this.db.putRef(ref);
    this.onRecord({ type: 'ref', logSeq, ref });
  }

  /**
   * Publishes `source` as the next version of `pkg` owned by this server: copy + hash into
   * staging, move into place, index, switch `current`, then (last) move the ref. The same content
   * as the current version (publish-unchanged.ts) is `unchanged`: nothing written, the ref stays.
   */
  async publish(source: string, pkg: string, kind: PackageKind, progress: PublishProgress): Promise<{ ref: PackageRef; hashMs: number; unchanged: boolean }> {
    const prev = this.db.getRef(pkg);
    if (prev !== null && prev.digest !== null && prev.kind !== kind) {
      throw new NetbootError('PACKAGE_KIND', `package ${pkg} is a ${prev.kind} package, not ${kind}`);
    }
    const current = prev !== null && prev.digest !== null && prev.owner === this.serverId && this.currentDigest(pkg) === prev.digest && existsSync(versionDir(this.root, pkg, prev.digest)) ? this.manifest(prev.digest) : null;
    // A source with segmented files is not read twice: building writes only segments not held,
    // and the same content is found by comparing the manifests.
    const segmentedSource = current !== null && (await walkTree(source)).files.some((f) => this.segmented({ kind }, f));
    if (current !== null && !segmentedSource) {
      const started = performance.now();
      if (await matchesVersion(source, current, progress)) return this.unchanged(prev!, current, performance.now() - started);
      Object.assign(progress, { filesDone: 0, bytesDone: 0 });
    }
    const name = randomBytes(6).toString('hex');
    const staging = stagingDir(this.root, pkg, `publish-${name}`);
    const snapDir = stagingDir(this.root, pkg, `origin-${name}`);
    this.activeStaging.add(staging);
    this.activeStaging.add(snapDir);
    const snapshots = segmentedSource || (current === null && (await walkTree(source)).files.some((f) => this.segmented({ kind }, f)))
      ? new Snapshots(this.root, pkg, snapDir, current === null ? null : { digest: prev!.digest!, manifest: current })
      : null;
    try {
      const built = await buildVersion(source, staging, { package: pkg, kind, owner: this.serverId, createdAt: new Date().toISOString() }, progress, this.segments, snapshots);
      if (current !== null && sameContent(built.manifest, current)) {
        await snapshots?.keep(prev!.digest!); // the same bytes as the current version
        return this.unchanged(prev!, current, built.hashMs); // changed back while read
      }
      const dest = versionDir(this.root, pkg, built.digest);
      if (existsSync(dest)) {
        await removeTree(staging); // the same content again: the held copy is it
      } else {
        await mkdir(versionsDir(this.root, pkg), { recursive: true });
        await rename(staging, dest);
        await fsyncPath(versionsDir(this.root, pkg));
      }
      this.putManifest(built.encoded);
      await this.activate(pkg, built.digest, built.manifest);
      await snapshots?.keep(built.digest);
      const ref: PackageRef = { package: pkg, seq: (prev?.seq ?? 0) + 1, digest: built.digest, owner: this.serverId, kind, updatedAt: new Date().toISOString() };
      const totals = manifestTotals(built.manifest);
      this.setStatus(pkg, 'ready', { seq: ref.seq, digest: ref.digest, bytesDone: totals.bytes, bytesTotal: totals.bytes, chunksDone: totals.chunks, chunksTotal: totals.chunks });
      this.putRef(ref);
      this.log.info('package published', { package: pkg, seq: ref.seq, digest: ref.digest, files: built.manifest.files.length, bytes: totals.bytes, chunks: totals.chunks, hashMs: Math.round(built.hashMs), largeFiles: built.modes, snapshots: snapshots === null ? 'none' : snapshots.cloned > 0 ? 'reflinked' : 'not possible here (no reflinks)', bytesHashed: built.bytesHashed, segmentsHeld: built.segmentsHeld, segmentsWritten: built.segmentsWritten, segmentBytesWritten: built.segmentBytesWritten });
      return { ref, hashMs: built.hashMs, unchanged: false };
    } finally {
      await removeTree(staging);
      await snapshots?.discard();
      this.activeStaging.delete(staging);
      this.activeStaging.delete(snapDir);
    }
  }

  private unchanged(ref: PackageRef, manifest: Manifest, hashMs: number): { ref: PackageRef; hashMs: number; unchanged: true } {
    const totals = manifestTotals(manifest);
    this.log.info('package unchanged: same content as the current version, nothing written', { package: ref.package, seq: ref.seq, digest: ref.digest, files: manifest.files.length, bytes: totals.bytes, hashMs: Math.round(hashMs) });
    return { ref, hashMs, unchanged: true };
  }

  /** Makes a complete, verified version folder current: index its chunks, switch the link. */
  async activate(pkg: string, digest: string, manifest: Manifest): Promise<void> {
    this.db.addVersion(pkg, digest, manifest, Date.now(), (f) => this.segmented(manifest, f));
    await this.changeLink(pkg, () => switchLink(currentLink(this.root, pkg), `versions/${digest}`, packageDir(this.root, pkg)));
  }

  /** Takes the package out of service here (`current` removed); its files stay for repair. */
  deactivate(pkg: string): Promise<void> {
    return this.changeLink(pkg, async () => {
      if (existsSync(packageDir(this.root, pkg))) await removeLink(currentLink(this.root, pkg), packageDir(this.root, pkg));
    });
  }

  /** Re-points `current` at a version already held (after a repair). */
  reactivate(pkg: string, digest: string): Promise<void> {
    return this.changeLink(pkg, () => switchLink(currentLink(this.root, pkg), `versions/${digest}`, packageDir(this.root, pkg)));
  }

  /**
   * Runs a change of `current` after the ones asked for before it. Damage takes a package out
   * of service at once, outside the per-package work queue; without this, that removal could
   * land after the repair had put the package back, leaving it Ready with no `current`.
   */
  private changeLink(pkg: string, change: () => Promise<void>): Promise<void> {
    const next = (this.linkChanges.get(pkg) ?? Promise.resolve()).then(change);
    const settled = next.catch(() => {});
    this.linkChanges.set(pkg, settled);
    void settled.then(() => {
      if (this.linkChanges.get(pkg) === settled) this.linkChanges.delete(pkg);
    });
    return next;
  }

  /** Deletes every version of a package held here (a tombstone arrived, or was made here). */
  async removePackage(pkg: string): Promise<void> {
    await this.deactivate(pkg);
    this.db.retireAll(pkg, Date.now());
    for (const v of this.db.versionsOf(pkg)) {
      await removeTree(versionDir(this.root, pkg, v.digest));
      this.db.removeVersion(pkg, v.digest);
    }
    this.db.removeSegments(pkg);
    await removeTree(packageDir(this.root, pkg));
  }

  /**
   * A chunk's bytes from any version held here, checked against its name first: a corrupted
   * copy is reported and never returned. null if no good copy is held.
   */
  async readChunk(digest: string, skip?: (loc: ChunkLocation) => boolean): Promise<Buffer | null> {
    for (const loc of this.db.chunkLocations(digest)) {
      if (skip?.(loc)) continue;
      const data = await this.readLocation(loc);
      if (data !== null && sha256Hex(data) === digest) return data;
      const reason = data === null ? 'unreadable or short' : 'content does not match its digest';
      this.log.warn('stored chunk is damaged; not using it', { digest, package: loc.package, version: loc.version, path: loc.path, offset: loc.offset, segment: loc.segment, reason });
      // A segment belongs to the versions using it: the current one is repaired.
      const version = loc.segment !== undefined ? (this.currentDigest(loc.package) ?? '') : loc.version;
      this.onCorrupt({ package: loc.package, version, path: loc.path, reason: loc.segment !== undefined ? `segment ${loc.segment}: ${reason}` : reason });
    }
    return null;
  }

  private async readLocation(loc: ChunkLocation): Promise<Buffer | null> {
    if (loc.segment !== undefined) return readRange(join(segmentsDir(this.root, loc.package), loc.segment), loc.offset, loc.size);
    const m = this.manifest(loc.version);
    const f = m?.files.find((x) => x.path === loc.path);
    if (m !== null && f !== undefined && this.segmented(m, f)) return readFileRange(versionDir(this.root, loc.package, loc.version), f, true, loc.offset, loc.size);
    try {
      const fh = await open(join(versionDir(this.root, loc.package, loc.version), loc.path), 'r');
      try {
        const buf = Buffer.allocUnsafe(loc.size);
        const { bytesRead } = await fh.read(buf, 0, loc.size, loc.offset);
        return bytesRead === loc.size ? buf : null;
      } finally {
        await fh.close();
      }
    } catch {
      return null;
    }
  }

  /**
   * Removes a package's segments no held version uses (nor its ref's version: a sync may resume
   * it), and unfinished `.part` segments of no such version. Left alone while anything is being
   * assembled for the package (its new segments are not yet referenced by a held version).
   */
  private async collectSegments(ref: PackageRef): Promise<string[]> {
    const dir = segmentsDir(this.root, ref.package);
    const pkgPrefix = packageDir(this.root, ref.package) + '/';
    if ([...this.activeStaging].some((d) => d.startsWith(pkgPrefix))) return [];
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return [];
    }
    const used = new Set<string>();
    const digests = new Set(this.db.versionsOf(ref.package).map((v) => v.digest));
    if (ref.digest !== null) digests.add(ref.digest);
    for (const d of digests) {
      const m = this.manifest(d);
      if (m !== null) for (const n of segmentNames(this.segments, m)) used.add(n);
    }
    const removed: string[] = [];
    for (const name of names) {
      if (used.has(name.replace(/\.part$/, ''))) continue;
      this.db.removeSegment(ref.package, name);
      await rm(join(dir, name), { force: true });
      removed.push(`${ref.package}/segments/${name}`);
    }
    return removed;
  }

  /**
   * Removes versions retired longer than `graceMs` ago, staging folders nobody is assembling,
   * and manifests no ref or version needs. Returns what it removed.
   */
  async collectGarbage(nowMs: number, graceMs: number): Promise<string[]> {
    const removed: string[] = [];
    for (const v of this.db.allVersions()) {
      if (v.retiredAtMs !== null && nowMs - v.retiredAtMs >= graceMs) {
        await removeTree(versionDir(this.root, v.package, v.digest));
        this.db.removeVersion(v.package, v.digest);
        removed.push(`${v.package}/versions/${v.digest}`);
      }
    }
    const refs = this.db.allRefs();
    for (const ref of refs) {
      let names: string[] = [];
      try {
        names = await readdir(stagingRoot(this.root, ref.package));
      } catch {
        continue;
      }
      for (const name of names) {
        const dir = stagingDir(this.root, ref.package, name);
        if (this.activeStaging.has(dir) || (name === ref.digest && ref.digest !== null)) continue; // kept: resumable
        await removeTree(dir);
        removed.push(`${ref.package}/staging/${name}`);
      }
    }
    for (const ref of refs) removed.push(...(await this.collectSegments(ref)));
    const needed = new Set<string>();
    for (const r of refs) if (r.digest !== null) needed.add(r.digest);
    for (const v of this.db.allVersions()) needed.add(v.digest);
    for (const d of [...needed]) {
      const body = this.db.getManifest(d);
      if (body !== null) for (const p of partDigests(decodeManifestTop(body))) needed.add(p);
    }
    for (const d of this.db.manifestDigests()) {
      if (!needed.has(d)) {
        this.db.deleteManifest(d);
        removed.push(`manifest ${d}`);
      }
    }
    return removed;
  }
}
