// A disk image package as the agent reads it from the site's package routes (/pkg/, TCP 490,
// with its job's secret): the version (the job's, or the ref's current one), its manifest (parts
// resolved), disk.json from its chunks, and a ChunkSource for deployImage that fetches chunks one
// at a time (GET /pkg/chunks/<d>) or many in one request (POST /pkg/chunks, framed). Everything
// is verified against its digest here or by the caller: the site is not trusted blindly.
import { inflateRawSync } from 'node:zlib';
import { NetbootError } from '../../platform/runtime/errors.ts';
import { FrameParser } from '../../packages/chunk-frames.ts';
import { isDigest, sha256Hex } from '../../packages/digest.ts';
import { MAX_MANIFEST_BYTES, decodeManifestTop, partDigests, resolveManifest, type Manifest } from '../../packages/manifest.ts';
import type { ChunkSource } from '../chunk-store.ts';
import { decodeDiskImage, type DiskImage } from '../disk-image.ts';
import type { SiteClient } from './site-client.ts';

const DISK_JSON = 'disk.json';
/** Chunks asked for in one POST /pkg/chunks (the route takes up to 4096). */
const BATCH = 512;

export interface RemoteImage {
  readonly image: DiskImage;
  /** The version's digest (64 hex). */
  readonly digest: string;
  /** Bytes of manifest and description fetched. */
  readonly bytesFetched: number;
}

export async function readRemoteImage(client: SiteClient, pkg: string, version: string | undefined): Promise<RemoteImage> {
  let digest = version?.replace(/^sha256:/, '');
  if (digest === undefined) {
    const ref = (await client.json<{ digest: string | null }>('GET', `/pkg/refs/${encodeURIComponent(pkg)}`)).value;
    if (ref.digest === null || !isDigest(ref.digest)) throw new NetbootError('PACKAGE_NOT_READY', `package ${pkg} has no current version (removed)`);
    digest = ref.digest;
  }
  let fetched = 0;
  const blob = async (d: string): Promise<Buffer> => {
    const r = await client.call('GET', `/pkg/manifests/${d}`, { maxBytes: MAX_MANIFEST_BYTES });
    fetched += r.body.length;
    if (sha256Hex(r.body) !== d) throw new NetbootError('MANIFEST_TAMPERED', `manifest ${d} does not match its digest`);
    return r.body;
  };
  const top = decodeManifestTop(await blob(digest));
  if (top.package !== pkg) throw new NetbootError('MANIFEST_TAMPERED', `version ${digest} is of package ${top.package}, not ${pkg}`);
  if (top.kind !== 'image') throw new NetbootError('NOT_A_DISK_IMAGE', `package ${pkg} is a ${top.kind} package, not a disk image`);
  const entry = top.files.find((f) => f.path === DISK_JSON);
  if (entry === undefined) throw new NetbootError('NOT_A_DISK_IMAGE', `package ${pkg} version ${digest} holds no ${DISK_JSON}`);
  const parts = new Map<string, Buffer>();
  for (const d of partDigests({ ...top, files: [entry] })) parts.set(d, await blob(d));
  const manifest: Manifest = resolveManifest({ ...top, files: [entry] }, (d) => parts.get(d) ?? null);
  const source = new RemoteChunks(client);
  const pieces: Buffer[] = [];
  for (const c of manifest.files[0]!.chunks) {
    const bytes = await source.get(c.digest);
    if (bytes === null || sha256Hex(bytes) !== c.digest) throw new NetbootError('CHUNK_CORRUPT', `${pkg}/${DISK_JSON}: chunk ${c.digest} missing or damaged`);
    pieces.push(bytes);
  }
  fetched += source.bytesFetched;
  return { image: decodeDiskImage(Buffer.concat(pieces)), digest, bytesFetched: fetched };
}

export class RemoteChunks implements ChunkSource {
  bytesFetched = 0;

  constructor(private readonly client: SiteClient) {}

  async get(digest: string): Promise<Buffer | null> {
    const r = await this.client.call('GET', `/pkg/chunks/${digest}`, { accept: [404], maxBytes: 17 * 1024 * 1024 });
    if (r.status === 404) return null;
    this.bytesFetched += r.body.length;
    return r.body;
  }

  async getMany(digests: readonly string[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    for (let i = 0; i < digests.length; i += BATCH) {
      const slice = digests.slice(i, i + BATCH);
      const r = await this.client.call('POST', '/pkg/chunks', { body: JSON.stringify({ digests: slice, encoding: 'deflate' }), contentType: 'application/json', maxBytes: (slice.length + 1) * 17 * 1024 * 1024 });
      this.bytesFetched += r.body.length;
      const parser = new FrameParser();
      for (const f of parser.push(r.body)) {
        if (f.data === null) continue;
        out.set(f.digest, f.deflated ? inflateRawSync(f.data, { maxOutputLength: 16 * 1024 * 1024 }) : Buffer.from(f.data));
      }
      parser.end();
    }
    return out;
  }
}
