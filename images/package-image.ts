// A disk image as a package version in the content-addressed package store (packages/): the
// version folder holds `disk.json` (the description with its inventory: disk-image.ts) and one
// file per chunk, `chunks/<first two hex digits>/<digest>`, each listed in the manifest as a
// file of exactly one chunk. No manifest change was needed: the chunks are ours (fixed windows,
// not the store's content-defined cut), and the manifest already allows any chunk of 1 B-16 MiB.
// Why a file per chunk and not one packed file per partition: a new capture holds mostly the
// chunks of the previous one, and a chunk file already held (by any version of any package) is
// hard-linked into the new version, so what two captures share is stored once on this server,
// and a replica's assembly hard-links identical files too (packages/assemble.ts, step 1).
// The writer is a ChunkSink: `has` answers from the store's chunk index, so a capture sends only
// chunks the site does not hold; nothing is visible until `commit` (an interrupted capture
// publishes nothing: `abort`, or the staging folder is collected later).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NetbootError } from '../platform/runtime/errors.ts';
import { sha256Hex } from '../packages/digest.ts';
import { fsyncPath, removeTree } from '../packages/fs-tree.ts';
import { stagingDir, versionDir, versionsDir } from '../packages/layout.ts';
import { encodeManifest, manifestTotals, type ChunkRef, type Manifest, type ManifestFile } from '../packages/manifest.ts';
import type { PackageRef } from '../packages/model.ts';
import type { PackageStore } from '../packages/package-store.ts';
import type { ChunkSink, ChunkSource } from './chunk-store.ts';
import { allChunks, decodeDiskImage, encodeDiskImage, type DiskImage } from './disk-image.ts';

export const DISK_JSON = 'disk.json';
const chunkPath = (digest: string): string => `chunks/${digest.slice(0, 2)}/${digest}`;
/** disk.json is listed in pieces of this size (the manifest's chunks are at most 16 MiB). */
const DESCRIPTION_PIECE = 4 * 1024 * 1024;

export class PackageImageWriter implements ChunkSink {
  readonly staging: string;
  private readonly staged = new Set<string>();
  bytesPut = 0;
  bytesLinked = 0;
  bytesCopied = 0;

  constructor(private readonly store: PackageStore, readonly pkg: string) {
    this.staging = stagingDir(store.root, pkg, `capture-${randomBytes(6).toString('hex')}`);
    store.activeStaging.add(this.staging);
  }

  async has(digest: string): Promise<boolean> {
    return this.staged.has(digest) || this.store.db.chunkLocations(digest, 1).length > 0;
  }

  async put(digest: string, bytes: Buffer): Promise<void> {
    if (this.staged.has(digest)) return;
    if (sha256Hex(bytes) !== digest) throw new NetbootError('CHUNK_CORRUPT', `chunk ${digest} put with bytes that do not match it: refused`);
    await this.writeChunk(digest, bytes);
    this.bytesPut += bytes.length;
  }

  private async writeChunk(digest: string, bytes: Buffer): Promise<void> {
    const p = join(this.staging, chunkPath(digest));
    await mkdir(join(this.staging, 'chunks', digest.slice(0, 2)), { recursive: true });
    await writeFile(p, bytes, { mode: 0o644 });
    this.staged.add(digest);
  }

  /** Brings a chunk held elsewhere in the store into the staging folder: a hard link, else a verified copy. */
  private async adopt(digest: string, length: number): Promise<void> {
    for (const loc of this.store.db.chunkLocations(digest)) {
      if (loc.offset !== 0 || loc.path !== chunkPath(digest)) continue;
      try {
        await mkdir(join(this.staging, 'chunks', digest.slice(0, 2)), { recursive: true });
        await link(join(versionDir(this.store.root, loc.package, loc.version), loc.path), join(this.staging, chunkPath(digest)));
        this.staged.add(digest);
        this.bytesLinked += length;
        return;
      } catch {
        // gone or on another file system: copy it instead
      }
    }
    const bytes = await this.store.readChunk(digest);
    if (bytes === null) throw new NetbootError('CHUNK_MISSING', `chunk ${digest} was reported held but no good copy is left`);
    await this.writeChunk(digest, bytes);
    this.bytesCopied += length;
  }

  /** Publishes the capture as the package's next version (ref moved last, as for any publish). */
  async commit(image: DiskImage): Promise<{ ref: PackageRef; digest: string }> {
    try {
      const chunks = new Map<string, number>();
      for (const c of allChunks(image)) chunks.set(c.digest, c.length);
      for (const [d, len] of chunks) if (!this.staged.has(d)) await this.adopt(d, len);
      const description = encodeDiskImage(image);
      await mkdir(this.staging, { recursive: true });
      await writeFile(join(this.staging, DISK_JSON), description, { mode: 0o644 });
      const pieces: ChunkRef[] = [];
      for (let at = 0; at < description.length; at += DESCRIPTION_PIECE) {
        const piece = description.subarray(at, at + DESCRIPTION_PIECE);
        pieces.push({ digest: sha256Hex(piece), size: piece.length });
      }
      const files: ManifestFile[] = [
        { path: DISK_JSON, size: description.length, mode: 0o644, chunks: pieces },
        ...[...chunks].map(([digest, size]) => ({ path: chunkPath(digest), size, mode: 0o644, chunks: [{ digest, size }] })),
      ];
      const prefixes = [...new Set([...chunks.keys()].map((d) => d.slice(0, 2)))].sort();
      const dirs = chunks.size === 0 ? [] : [{ path: 'chunks', mode: 0o755 }, ...prefixes.map((p) => ({ path: `chunks/${p}`, mode: 0o755 }))];
      for (const d of dirs) await fsyncPath(join(this.staging, d.path));
      await fsyncPath(this.staging);
      const prev = this.store.db.getRef(this.pkg);
      if (prev !== null && prev.digest !== null && prev.kind !== 'image') throw new NetbootError('PACKAGE_KIND', `package ${this.pkg} is a ${prev.kind} package, not a disk image`);
      if (prev !== null && prev.digest !== null && prev.owner !== this.store.serverId) throw new NetbootError('PACKAGE_OWNER', `package ${this.pkg} is owned by ${prev.owner}`);
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
