// A disk image as a package version in the content-addressed package store (packages/): the
// version folder holds `disk.json` (the description with its inventory: disk-image.ts) and pack
// files, `packs/<name>`, each the concatenation of chunks, listed in the manifest as an ordinary
// file whose chunk list is exactly those chunks. No manifest change was needed: the chunks are
// ours (fixed 64 KiB windows, not the store's content-defined cut), and the manifest already
// lists any chunk sizes per file (long lists in content-defined parts, so an unchanged pack's
// list is the same parts in the next version's manifest).
// A capture writes the chunks the store does not hold into new packs; the packs of earlier
// versions (of any package) holding the rest are hard-linked into the new version, so what two
// captures share is stored once here, and a replica's assembly hard-links identical files too
// (packages/assemble.ts, step 1). A pack that has become mostly dead (under half of it still
// used) is not linked: its live chunks are copied into the new pack instead, so old data does not
// pile up. The writer is a ChunkSink: `has` answers from the store's chunk index, so a capture
// sends only chunks the site does not hold; nothing is visible until `commit` (an interrupted
// capture publishes nothing: `abort`, or the staging folder is collected later).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { NetbootError } from '../platform/runtime/errors.ts';
import { chunkSizes } from '../packages/chunker.ts';
import { sha256Hex } from '../packages/digest.ts';
import { fsyncPath, removeTree } from '../packages/fs-tree.ts';
import { stagingDir, versionDir, versionsDir } from '../packages/layout.ts';
import { encodeManifest, manifestTotals, type ChunkRef, type Manifest, type ManifestFile } from '../packages/manifest.ts';
import type { PackageRef } from '../packages/model.ts';
import type { PackageStore } from '../packages/package-store.ts';
import type { ChunkSink, ChunkSource } from './chunk-store.ts';
import { allChunks, decodeDiskImage, encodeDiskImage, type DiskImage } from './disk-image.ts';

export const DISK_JSON = 'disk.json';
/** A new pack is started past this size. */
const PACK_BYTES = 256 * 1024 * 1024;

interface OpenPack {
  readonly path: string;
  readonly fh: FileHandle;
  readonly chunks: ChunkRef[];
  size: number;
}

export class PackageImageWriter implements ChunkSink {
  readonly staging: string;
  private readonly name = `${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomBytes(4).toString('hex')}`;
  private readonly staged = new Set<string>();
  private readonly packs: { path: string; chunks: ChunkRef[] }[] = [];
  private pack: OpenPack | null = null;
  bytesPut = 0;
  bytesLinked = 0;
  bytesCopied = 0;

  constructor(private readonly store: PackageStore, readonly pkg: string) {
    this.staging = stagingDir(store.root, pkg, `capture-${this.name}`);
    store.activeStaging.add(this.staging);
  }

  async has(digest: string): Promise<boolean> {
    return this.staged.has(digest) || this.store.db.chunkLocations(digest, 1).length > 0;
  }

  async put(digest: string, bytes: Buffer): Promise<void> {
    if (this.staged.has(digest)) return;
    if (sha256Hex(bytes) !== digest) throw new NetbootError('CHUNK_CORRUPT', `chunk ${digest} put with bytes that do not match it: refused`);
    await this.append(digest, bytes);
    this.bytesPut += bytes.length;
  }

  private async append(digest: string, bytes: Buffer): Promise<void> {
    if (this.pack !== null && this.pack.size + bytes.length > PACK_BYTES) await this.closePack();
    if (this.pack === null) {
      const path = `packs/${this.name}-${this.packs.length + 1}`;
      await mkdir(join(this.staging, 'packs'), { recursive: true });
      this.pack = { path, fh: await open(join(this.staging, path), 'wx', 0o644), chunks: [], size: 0 };
    }
    await this.pack.fh.write(bytes, 0, bytes.length, this.pack.size);
    this.pack.size += bytes.length;
    this.pack.chunks.push({ digest, size: bytes.length });
    this.staged.add(digest);
  }

  private async closePack(): Promise<void> {
    if (this.pack === null) return;
    await this.pack.fh.sync();
    await this.pack.fh.close();
    this.packs.push({ path: this.pack.path, chunks: this.pack.chunks });
    this.pack = null;
  }

  /**
   * Brings every chunk the image needs that this capture did not put into the staging folder:
   * earlier packs (hard links) where at least half of a pack is still needed, else verified copies.
   */
  private async adoptRest(needed: ReadonlyMap<string, number>): Promise<void> {
    const candidates = new Map<string, { pkg: string; version: string; path: string; chunks: readonly ChunkRef[]; live: number; size: number }>();
    for (const digest of needed.keys()) {
      if (this.staged.has(digest)) continue;
      const loc = this.store.db.chunkLocations(digest).find((l) => l.path.startsWith('packs/'));
      if (loc === undefined) continue; // copied below
      const key = `${loc.package}/${loc.version}/${loc.path}`;
      if (!candidates.has(key)) {
        const file = this.store.manifest(loc.version)?.files.find((f) => f.path === loc.path);
        if (file === undefined) continue;
        candidates.set(key, { pkg: loc.package, version: loc.version, path: loc.path, chunks: file.chunks, live: 0, size: file.size });
      }
    }
    // How much of each pack is still needed (a chunk counted in the first pack that holds it).
    const counted = new Set<string>();
    for (const c of candidates.values()) {
      for (const ch of c.chunks) {
        if (needed.has(ch.digest) && !this.staged.has(ch.digest) && !counted.has(ch.digest)) {
          counted.add(ch.digest);
          c.live += ch.size;
        }
      }
    }
    const taken = new Set<string>();
    for (const c of [...candidates.values()].sort((a, b) => b.live - a.live)) {
      if (c.live * 2 < c.size || taken.has(c.path)) continue;
      try {
        await mkdir(join(this.staging, 'packs'), { recursive: true });
        await link(join(versionDir(this.store.root, c.pkg, c.version), c.path), join(this.staging, c.path));
      } catch {
        continue; // gone, or another file system: its chunks are copied below
      }
      taken.add(c.path);
      this.packs.push({ path: c.path, chunks: [...c.chunks] });
      for (const ch of c.chunks) {
        if (needed.has(ch.digest) && !this.staged.has(ch.digest)) this.bytesLinked += ch.size;
        this.staged.add(ch.digest);
      }
    }
    for (const digest of needed.keys()) {
      if (this.staged.has(digest)) continue;
      const bytes = await this.store.readChunk(digest);
      if (bytes === null) throw new NetbootError('CHUNK_MISSING', `chunk ${digest} was reported held but no good copy is left`);
      await this.append(digest, bytes);
      this.bytesCopied += bytes.length;
    }
  }

  /** Publishes the capture as the package's next version (ref moved last, as for any publish). */
  async commit(image: DiskImage): Promise<{ ref: PackageRef; digest: string }> {
    try {
      const prev = this.store.db.getRef(this.pkg);
      if (prev !== null && prev.digest !== null && prev.kind !== 'image') throw new NetbootError('PACKAGE_KIND', `package ${this.pkg} is a ${prev.kind} package, not a disk image`);
      if (prev !== null && prev.digest !== null && prev.owner !== this.store.serverId) throw new NetbootError('PACKAGE_OWNER', `package ${this.pkg} is owned by ${prev.owner}`);
      const needed = new Map<string, number>();
      for (const c of allChunks(image)) needed.set(c.digest, c.length);
      await this.adoptRest(needed);
      await this.closePack();
      const description = encodeDiskImage(image);
      await mkdir(this.staging, { recursive: true });
      await writeFile(join(this.staging, DISK_JSON), description, { mode: 0o644 });
      const pieces: ChunkRef[] = [];
      let at = 0;
      for (const size of chunkSizes(description)) {
        pieces.push({ digest: sha256Hex(description.subarray(at, at + size)), size });
        at += size;
      }
      const files: ManifestFile[] = [
        { path: DISK_JSON, size: description.length, mode: 0o644, chunks: pieces },
        ...this.packs.map((p) => ({ path: p.path, size: p.chunks.reduce((n, c) => n + c.size, 0), mode: 0o644, chunks: p.chunks })),
      ];
      const dirs = this.packs.length === 0 ? [] : [{ path: 'packs', mode: 0o755 }];
      if (this.packs.length > 0) await fsyncPath(join(this.staging, 'packs'));
      await fsyncPath(this.staging);
      const manifest: Manifest = { format: 1, hash: 'sha256', package: this.pkg, kind: 'image', owner: this.store.serverId, createdAt: new Date().toISOString(), dirs, files };
      const encoded = encodeManifest(manifest);
      const dest = versionDir(this.store.root, this.pkg, encoded.digest);
      if (!existsSync(dest)) {
        await mkdir(versionsDir(this.store.root, this.pkg), { recursive: true });
        await rename(this.staging, dest);
        await fsyncPath(versionsDir(this.store.root, this.pkg));
      }
      this.store.putManifest(encoded);
      await this.store.activate(this.pkg, encoded.digest, manifest);
      const ref: PackageRef = { package: this.pkg, seq: (prev?.seq ?? 0) + 1, digest: encoded.digest, owner: this.store.serverId, kind: 'image', updatedAt: new Date().toISOString() };
      const totals = manifestTotals(manifest);
      this.store.setStatus(this.pkg, 'ready', { seq: ref.seq, digest: ref.digest, bytesDone: totals.bytes, bytesTotal: totals.bytes, chunksDone: totals.chunks, chunksTotal: totals.chunks });
      this.store.putRef(ref);
      return { ref, digest: encoded.digest };
    } finally {
      await this.abort();
    }
  }

  /** Drops whatever was staged (nothing is published). */
  async abort(): Promise<void> {
    if (this.pack !== null) {
      await this.pack.fh.close().catch(() => {});
      this.pack = null;
    }
    await removeTree(this.staging);
    this.store.activeStaging.delete(this.staging);
  }
}

/** The description of a held version (the current one by default). */
export async function readPackageImage(store: PackageStore, pkg: string, version?: string): Promise<{ image: DiskImage; digest: string }> {
  const digest = version ?? store.currentDigest(pkg);
  if (digest === null || digest === undefined) throw new NetbootError('PACKAGE_NOT_READY', `package ${pkg} has no version ready here`);
  const manifest = store.manifest(digest);
  if (manifest === null || manifest.package !== pkg) throw new NetbootError('PACKAGE_NOT_READY', `package ${pkg} version ${digest} is not held here`);
  const entry = manifest.files.find((f) => f.path === DISK_JSON);
  if (entry === undefined) throw new NetbootError('NOT_A_DISK_IMAGE', `package ${pkg} version ${digest} holds no ${DISK_JSON}`);
  const bytes = await readFile(join(versionDir(store.root, pkg, digest), DISK_JSON));
  let at = 0;
  for (const piece of entry.chunks) {
    if (sha256Hex(bytes.subarray(at, at + piece.size)) !== piece.digest) throw new NetbootError('CHUNK_CORRUPT', `${pkg}/${DISK_JSON} of version ${digest} does not match its manifest`);
    at += piece.size;
  }
  return { image: decodeDiskImage(bytes), digest };
}

/** Chunks for a deploy, from any verified copy held in the store. */
export function packageChunkSource(store: PackageStore): ChunkSource {
  return { get: (digest) => store.readChunk(digest) };
}
