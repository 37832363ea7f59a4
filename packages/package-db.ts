// The package component's durable state: its own SQLite database (WAL) beside the packages.
// Refs and this server's statuses carry a `log_seq` from one counter, so a subscriber's cursor
// names exactly what it has seen; the epoch changes only if the database is recreated, which
// tells a subscriber to start over from 0.
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Manifest, ManifestFile } from './manifest.ts';
import { segmentsOf } from './segments.ts';
import type { PackageRef, PackageStatus } from './model.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refs (
  package TEXT PRIMARY KEY, seq INTEGER NOT NULL, digest TEXT, owner TEXT NOT NULL, kind TEXT NOT NULL,
  updated_at TEXT NOT NULL, log_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS manifests (digest TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
  package TEXT NOT NULL, digest TEXT NOT NULL, retired_at_ms INTEGER, PRIMARY KEY (package, digest));
CREATE TABLE IF NOT EXISTS chunk_loc (
  digest TEXT NOT NULL, package TEXT NOT NULL, version TEXT NOT NULL, path TEXT NOT NULL,
  offset INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunk_loc_digest ON chunk_loc (digest);
CREATE INDEX IF NOT EXISTS chunk_loc_version ON chunk_loc (package, version);
CREATE TABLE IF NOT EXISTS segment_chunk (
  package TEXT NOT NULL, segment TEXT NOT NULL, path TEXT NOT NULL, offset INTEGER NOT NULL, digest TEXT NOT NULL,
  size INTEGER NOT NULL, PRIMARY KEY (package, segment, offset)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS segment_chunk_digest ON segment_chunk (digest);
CREATE TABLE IF NOT EXISTS local_status (package TEXT PRIMARY KEY, body TEXT NOT NULL, log_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS peer_status (server TEXT NOT NULL, package TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (server, package));
CREATE TABLE IF NOT EXISTS peer_cursor (peer TEXT PRIMARY KEY, epoch TEXT NOT NULL, cursor INTEGER NOT NULL);
`;

export interface ChunkLocation {
  readonly package: string;
  /** '' for a chunk in a segment (it belongs to every version using the segment). */
  readonly version: string;
  readonly path: string;
  /** In the file; in the segment when `segment` is set. */
  readonly offset: number;
  readonly size: number;
  /** The segment (segments.ts) the chunk lies in, in the package's segments folder. */
  readonly segment?: string;
}

export interface VersionRow {
  readonly package: string;
  readonly digest: string;
  /** null while it is the package's current version. */
  readonly retiredAtMs: number | null;
}

export type FeedRecord = { readonly type: 'ref'; readonly logSeq: number; readonly ref: PackageRef } | { readonly type: 'status'; readonly logSeq: number; readonly status: PackageStatus };

interface RefRow {
  package: string;
  seq: number;
  digest: string | null;
  owner: string;
  kind: string;
  updated_at: string;
  log_seq: number;
}

const toRef = (r: RefRow): PackageRef => ({ package: r.package, seq: r.seq, digest: r.digest, owner: r.owner, kind: r.kind as PackageRef['kind'], updatedAt: r.updated_at });

export class PackageDb {
  readonly epoch: string;
  private readonly db: Database.Database;
  private readonly st;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.db = new Database(join(dir, 'packages.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    const db = this.db;
    this.st = {
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      putMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      getRef: db.prepare<[string], RefRow>('SELECT * FROM refs WHERE package = ?'),
      allRefs: db.prepare<[], RefRow>('SELECT * FROM refs ORDER BY package'),
      refsAfter: db.prepare<[number], RefRow>('SELECT * FROM refs WHERE log_seq > ? ORDER BY log_seq'),
      putRef: db.prepare(`INSERT INTO refs (package, seq, digest, owner, kind, updated_at, log_seq) VALUES (@package, @seq, @digest, @owner, @kind, @updatedAt, @logSeq)
        ON CONFLICT (package) DO UPDATE SET seq = excluded.seq, digest = excluded.digest, owner = excluded.owner, kind = excluded.kind,
          updated_at = excluded.updated_at, log_seq = excluded.log_seq`),
      getManifest: db.prepare<[string], { body: Buffer }>('SELECT body FROM manifests WHERE digest = ?'),
      putManifest: db.prepare('INSERT OR IGNORE INTO manifests (digest, body) VALUES (?, ?)'),
      deleteManifest: db.prepare('DELETE FROM manifests WHERE digest = ?'),
      allManifestDigests: db.prepare<[], { digest: string }>('SELECT digest FROM manifests'),
      putVersion: db.prepare('INSERT INTO versions (package, digest, retired_at_ms) VALUES (?, ?, NULL) ON CONFLICT (package, digest) DO UPDATE SET retired_at_ms = NULL'),
      hasVersion: db.prepare<[string, string], { digest: string }>('SELECT digest FROM versions WHERE package = ? AND digest = ?'),
      retireOthers: db.prepare('UPDATE versions SET retired_at_ms = ? WHERE package = ? AND digest != ? AND retired_at_ms IS NULL'),
      setRetired: db.prepare('UPDATE versions SET retired_at_ms = ? WHERE package = ? AND digest = ?'),
      retireAll: db.prepare('UPDATE versions SET retired_at_ms = ? WHERE package = ? AND retired_at_ms IS NULL'),
      versionsOf: db.prepare<[string], { package: string; digest: string; retiredAtMs: number | null }>('SELECT package, digest, retired_at_ms AS retiredAtMs FROM versions WHERE package = ?'),
      allVersions: db.prepare<[], { package: string; digest: string; retiredAtMs: number | null }>('SELECT package, digest, retired_at_ms AS retiredAtMs FROM versions'),
      deleteVersion: db.prepare('DELETE FROM versions WHERE package = ? AND digest = ?'),
      insertLoc: db.prepare('INSERT INTO chunk_loc (digest, package, version, path, offset, size) VALUES (?, ?, ?, ?, ?, ?)'),
      deleteLocs: db.prepare('DELETE FROM chunk_loc WHERE package = ? AND version = ?'),
      locsOf: db.prepare<[string, number], ChunkLocation>('SELECT package, version, path, offset, size FROM chunk_loc WHERE digest = ? LIMIT ?'),
      segLocsOf: db.prepare<[string, number], ChunkLocation>("SELECT package, '' AS version, path, offset, size, segment FROM segment_chunk WHERE digest = ? LIMIT ?"),
      hasSegment: db.prepare<[string, string], { offset: number }>('SELECT offset FROM segment_chunk WHERE package = ? AND segment = ? LIMIT 1'),
      insertSegChunk: db.prepare('INSERT OR IGNORE INTO segment_chunk (package, segment, path, offset, digest, size) VALUES (?, ?, ?, ?, ?, ?)'),
      deleteSegment: db.prepare('DELETE FROM segment_chunk WHERE package = ? AND segment = ?'),
      deleteSegments: db.prepare('DELETE FROM segment_chunk WHERE package = ?'),
      getStatus: db.prepare<[string], { body: string }>('SELECT body FROM local_status WHERE package = ?'),
      allStatuses: db.prepare<[], { body: string }>('SELECT body FROM local_status ORDER BY package'),
      statusesAfter: db.prepare<[number], { body: string; log_seq: number }>('SELECT body, log_seq FROM local_status WHERE log_seq > ? ORDER BY log_seq'),
      putStatus: db.prepare('INSERT INTO local_status (package, body, log_seq) VALUES (?, ?, ?) ON CONFLICT (package) DO UPDATE SET body = excluded.body, log_seq = excluded.log_seq'),
      putPeerStatus: db.prepare('INSERT INTO peer_status (server, package, body) VALUES (?, ?, ?) ON CONFLICT (server, package) DO UPDATE SET body = excluded.body'),
      peerStatusesOf: db.prepare<[string], { body: string }>('SELECT body FROM peer_status WHERE package = ? ORDER BY server'),
      allPeerStatuses: db.prepare<[], { body: string }>('SELECT body FROM peer_status ORDER BY package, server'),
      getCursor: db.prepare<[string], { epoch: string; cursor: number }>('SELECT epoch, cursor FROM peer_cursor WHERE peer = ?'),
      putCursor: db.prepare('INSERT INTO peer_cursor (peer, epoch, cursor) VALUES (?, ?, ?) ON CONFLICT (peer) DO UPDATE SET epoch = excluded.epoch, cursor = excluded.cursor'),
    };
    let epoch = this.st.getMeta.get('epoch')?.value;
    if (epoch === undefined) {
      epoch = randomUUID();
      this.st.putMeta.run('epoch', epoch);
    }
    this.epoch = epoch;
  }

  close(): void {
    this.db.close();
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  get lastLogSeq(): number {
    return Number(this.st.getMeta.get('log_seq')?.value ?? 0);
  }

  private nextLogSeq(): number {
    const n = this.lastLogSeq + 1;
    this.st.putMeta.run('log_seq', String(n));
    return n;
  }

  getRef(pkg: string): PackageRef | null {
    const r = this.st.getRef.get(pkg);
    return r === undefined ? null : toRef(r);
  }

  allRefs(): PackageRef[] {
    return this.st.allRefs.all().map(toRef);
  }

  /** Stores a ref and gives it the next log position; returns that position. */
  putRef(ref: PackageRef): number {
    return this.transaction(() => {
      const logSeq = this.nextLogSeq();
      this.st.putRef.run({ ...ref, logSeq });
      return logSeq;
    });
  }

  getManifest(digest: string): Buffer | null {
    return this.st.getManifest.get(digest)?.body ?? null;
  }

  putManifest(digest: string, body: Buffer): void {
    this.st.putManifest.run(digest, body);
  }

  deleteManifest(digest: string): void {
    this.st.deleteManifest.run(digest);
  }

  manifestDigests(): string[] {
    return this.st.allManifestDigests.all().map((r) => r.digest);
  }

  /**
   * Records a materialised version as current, indexing where each of its chunks lies. Chunks of
   * segmented files are indexed per segment, once for every version using it: a new version of
   * an 8 GiB image adds the rows of its few new segments, not 130,000.
   */
  addVersion(pkg: string, digest: string, manifest: Manifest, nowMs: number, segmented: (f: ManifestFile) => boolean = () => false): void {
    this.transaction(() => {
      if (this.st.hasVersion.get(pkg, digest) === undefined) {
        for (const f of manifest.files) {
          if (segmented(f)) {
            for (const seg of segmentsOf(f.chunks)) {
              if (this.st.hasSegment.get(pkg, seg.name) !== undefined) continue;
              let at = 0;
              for (const c of seg.chunks) {
                this.st.insertSegChunk.run(pkg, seg.name, f.path, at, c.digest, c.size);
                at += c.size;
              }
            }
            continue;
          }
          let offset = 0;
          for (const c of f.chunks) {
            this.st.insertLoc.run(c.digest, pkg, digest, f.path, offset, c.size);
            offset += c.size;
          }
        }
      }
      this.st.putVersion.run(pkg, digest);
      this.st.retireOthers.run(nowMs, pkg, digest);
    });
  }

  retireAll(pkg: string, nowMs: number): void {
    this.st.retireAll.run(nowMs, pkg);
  }

  /** Keeps a held version (null) or retires it from `atMs` (garbage collected after the grace time). */
  setRetired(pkg: string, digest: string, atMs: number | null): void {
    this.st.setRetired.run(atMs, pkg, digest);
  }

  versionsOf(pkg: string): VersionRow[] {
    return this.st.versionsOf.all(pkg);
  }

  allVersions(): VersionRow[] {
    return this.st.allVersions.all();
  }

  removeVersion(pkg: string, digest: string): void {
    this.transaction(() => {
      this.st.deleteLocs.run(pkg, digest);
      this.st.deleteVersion.run(pkg, digest);
    });
  }

  chunkLocations(digest: string, limit = 8): ChunkLocation[] {
    const locs = this.st.locsOf.all(digest, limit);
    return locs.length >= limit ? locs : [...locs, ...this.st.segLocsOf.all(digest, limit - locs.length)];
  }

  /** A segment file is gone (collected): its chunks are no longer there. */
  removeSegment(pkg: string, name: string): void {
    this.st.deleteSegment.run(pkg, name);
  }

  removeSegments(pkg: string): void {
    this.st.deleteSegments.run(pkg);
  }

  getStatus(pkg: string): PackageStatus | null {
    const r = this.st.getStatus.get(pkg);
    return r === undefined ? null : (JSON.parse(r.body) as PackageStatus);
  }

  allStatuses(): PackageStatus[] {
    return this.st.allStatuses.all().map((r) => JSON.parse(r.body) as PackageStatus);
  }

  putStatus(status: PackageStatus): number {
    return this.transaction(() => {
      const logSeq = this.nextLogSeq();
      this.st.putStatus.run(status.package, JSON.stringify(status), logSeq);
      return logSeq;
    });
  }

  putPeerStatus(status: PackageStatus): void {
    this.st.putPeerStatus.run(status.server, status.package, JSON.stringify(status));
  }

  peerStatusesOf(pkg: string): PackageStatus[] {
    return this.st.peerStatusesOf.all(pkg).map((r) => JSON.parse(r.body) as PackageStatus);
  }

  allPeerStatuses(): PackageStatus[] {
    return this.st.allPeerStatuses.all().map((r) => JSON.parse(r.body) as PackageStatus);
  }

  getCursor(peer: string): { epoch: string; cursor: number } | null {
    return this.st.getCursor.get(peer) ?? null;
  }

  putCursor(peer: string, epoch: string, cursor: number): void {
    this.st.putCursor.run(peer, epoch, cursor);
  }

  /** Everything that changed after `cursor`, in log order: what a subscriber missed. */
  changesSince(cursor: number): FeedRecord[] {
    const refs: FeedRecord[] = this.st.refsAfter.all(cursor).map((r) => ({ type: 'ref', logSeq: r.log_seq, ref: toRef(r) }));
    const statuses: FeedRecord[] = this.st.statusesAfter.all(cursor).map((r) => ({ type: 'status', logSeq: r.log_seq, status: JSON.parse(r.body) as PackageStatus }));
    return [...refs, ...statuses].sort((a, b) => a.logSeq - b.logSeq);
  }
}
