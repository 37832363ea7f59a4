// The agent's end of a capture: a ChunkSink for captureDisk that sends the site only the chunks
// it lacks. Chunks are gathered into batches (up to 256 chunks or 16 MiB); for each batch the
// site is asked which it lacks (POST /pkg/uploads/<id>/missing), and only those are sent, framed,
// in one request (POST /pkg/uploads/<id>/chunks). Up to two batches are under way (one deflating
// while the one before it is on the wire) while the next is read from the disk. Encodings:
// - `deflate`: each chunk sent is raw-deflated where that pays (packages/chunk-deflate.ts: a 4 KiB
//   probe, level 1, kept if it saves a tenth), in libuv's threadpool, and only once the site said
//   it lacks it (a second capture deflates nothing it does not send);
// - `raw` (the default): every chunk as it is (as agents before deflate sent them);
// - `auto`: both tried, and the one that moves the capture faster kept: windows of
//   4 batches, each raw or deflated, measured in chunk bytes the site took a second (the whole
//   pipeline: the disk, the hashing, zlib, the wire and the site); the other is tried again every
//   8th window. zlib's level 1 runs at about 80 MB/s a core here: a 2-core agent on a 1 Gbit/s
//   link is slower deflating than sending raw; on a slower link, or with more cores, deflate wins.
// `commit` publishes disk.json once everything is there (POST .../commit).
import { compressed } from '../../packages/chunk-deflate.ts';
import { encodeFrameHeader } from '../../packages/chunk-frames.ts';
import type { ChunkSink } from '../chunk-store.ts';
import { encodeDiskImage, type DiskImage } from '../disk-image.ts';
import type { UploadEncoding } from './options.ts';
import { SiteError, type SiteClient } from './site-client.ts';

const BATCH_CHUNKS = 256;
const BATCH_BYTES = 16 * 1024 * 1024;
/**
 * Chunks deflated at once. zlib's async calls share libuv's threadpool (4 threads) with the
 * disk's reads: a batch's 256 deflates queued at once would hold the capture's next reads back.
 */
const DEFLATE_PARALLEL = 2;
/** Batches under way at once (asked about, deflated, on the wire). */
const IN_FLIGHT = 2;
/** Digests remembered as held (repeated chunks, e.g. zeroed ones, are not asked about again). */
const KNOWN_LIMIT = 1_000_000;

export interface CommitAnswer {
  readonly package: string;
  readonly version: string;
  readonly seq: number;
  readonly kept: readonly string[] | null;
}

export interface UploadOptions {
  readonly encoding?: UploadEncoding;
  /** Chunks deflated at once (default 2). */
  readonly deflateParallel?: number;
  /** Batches under way at once (default 2). */
  readonly inFlight?: number;
}

export class UploadSink implements ChunkSink {
  private pending = new Map<string, Buffer>();
  private pendingBytes = 0;
  private known = new Set<string>();
  /** Digests of the batches under way (not asked about again while they go). */
  private sending = new Set<string>();
  private inFlight: Promise<void>[] = [];
  readonly encoding: UploadEncoding;
  private readonly deflateParallel: number;
  private readonly maxInFlight: number;
  /** `auto`: the arm tried now, and each arm's chunk bytes a ms (moving averages; 0: not tried yet). */
  private autoDeflate = false;
  private readonly rates = { raw: 0, deflate: 0 };
  private windowSince = Date.now();
  private windowBytes = 0;
  private windowBatches = 0;
  private windows = 0;
  /** False once a site from before deflated uploads refused a deflated frame: all raw from then on. */
  private siteInflates = true;
  chunksOffered = 0;
  chunksSent = 0;
  /** Of the chunks sent, those that went deflated. */
  chunksDeflated = 0;
  /** Bytes of the chunks sent (their data, raw). */
  bytesSent = 0;
  /** Bytes of the chunk requests' bodies (frames as sent, deflated where that paid): the wire. */
  frameBytesSent = 0;
  /** Request bodies sent (chunks, digest lists, the description). */
  bytesTransferred = 0;

  constructor(private readonly client: SiteClient, private readonly pkg: string, opts: UploadOptions = {}) {
    this.encoding = opts.encoding ?? 'raw';
    this.deflateParallel = opts.deflateParallel ?? DEFLATE_PARALLEL;
    this.maxInFlight = opts.inFlight ?? IN_FLIGHT;
  }

  private path(action: string): string {
    return `/pkg/uploads/${encodeURIComponent(this.pkg)}/${action}`;
  }

  async has(digest: string): Promise<boolean> {
    return this.known.has(digest) || this.pending.has(digest) || this.sending.has(digest);
  }

  async put(digest: string, bytes: Buffer): Promise<void> {
    this.pending.set(digest, Buffer.from(bytes));
    this.pendingBytes += bytes.length;
    this.chunksOffered++;
    if (this.pending.size >= BATCH_CHUNKS || this.pendingBytes >= BATCH_BYTES) await this.startFlush();
  }

  /** Sends the gathered batch in the background (once fewer than maxInFlight are under way). */
  private async startFlush(): Promise<void> {
    while (this.inFlight.length >= this.maxInFlight) await this.inFlight.shift();
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.pendingBytes = 0;
    for (const d of batch.keys()) this.sending.add(d);
    const p = this.send(batch);
    p.catch(() => {}); // awaited by a later put or by finish
    this.inFlight.push(p);
  }

  /** Whether this batch goes deflated: always, never, or (auto) as the arm under trial says. */
  private deflating(): boolean {
    if (!this.siteInflates) return false;
    return this.encoding === 'auto' ? this.autoDeflate : this.encoding === 'deflate';
  }

  /** auto: a batch of `bytes` is at the site; every 4 batches, the window's rate is kept and the next arm chosen. */
  private settled(bytes: number): void {
    if (this.encoding !== 'auto') return;
    this.windowBytes += bytes;
    if (++this.windowBatches < 4) return;
    const ms = Math.max(1, Date.now() - this.windowSince);
    const arm = this.autoDeflate ? 'deflate' : 'raw';
    this.rates[arm] = average(this.rates[arm], this.windowBytes / ms);
    this.windows++;
    const other = this.autoDeflate ? 'raw' : 'deflate';
    const better = this.rates.deflate > this.rates.raw;
    this.autoDeflate = this.rates[other] === 0 || this.windows % 8 === 0 ? !this.autoDeflate : better;
    this.windowSince = Date.now();
    this.windowBytes = 0;
    this.windowBatches = 0;
  }

  private async send(batch: Map<string, Buffer>): Promise<void> {
    const digests = [...batch.keys()];
    const ask = JSON.stringify({ digests });
    const { value } = await this.client.json<{ missing: string[] }>('POST', this.path('missing'), { digests });
    this.bytesTransferred += ask.length;
    const wanted = value.missing.filter((d) => batch.has(d));
    const deflating = this.deflating();
    const packed = deflating ? await mapLimit(wanted, this.deflateParallel, (d) => compressed(batch.get(d)!)) : wanted.map(() => null);
    /** The request body: each wanted chunk's frame, deflated where `packs` holds its deflated bytes. */
    const framed = (packs: readonly (Buffer | null)[]): Buffer => Buffer.concat(wanted.flatMap((d, i) => {
      const packedData = packs[i] ?? null;
      const data = packedData ?? batch.get(d)!;
      return [encodeFrameHeader(d, data.length, packedData !== null), data];
    }));
    let deflated = packed.filter((p) => p !== null).length;
    let raw = 0;
    for (const d of wanted) raw += batch.get(d)!.length;
    if (wanted.length > 0) {
      let body = framed(packed);
      try {
        await this.client.call('POST', this.path('chunks'), { body });
      } catch (err) {
        // A site from before deflated uploads: "frames must carry the chunk's raw bytes".
        if (!(deflated > 0 && err instanceof SiteError && err.status === 400 && /raw bytes/.test(err.message))) throw err;
        this.siteInflates = false;
        deflated = 0;
        body = framed([]);
        await this.client.call('POST', this.path('chunks'), { body });
      }
      this.chunksSent += wanted.length;
      this.chunksDeflated += deflated;
      this.bytesSent += raw;
      this.bytesTransferred += body.length;
      this.frameBytesSent += body.length;
    }
    let bytes = 0;
    for (const b of batch.values()) bytes += b.length;
    this.settled(bytes);
    if (this.known.size + digests.length > KNOWN_LIMIT) this.known = new Set();
    for (const d of digests) {
      this.known.add(d);
      this.sending.delete(d);
    }
  }

  /** Everything gathered so far is at the site. */
  async finish(): Promise<void> {
    await this.startFlush();
    while (this.inFlight.length > 0) await this.inFlight.shift();
  }

  async commit(image: DiskImage): Promise<CommitAnswer> {
    await this.finish();
    const body = encodeDiskImage(image);
    const r = await this.client.call('POST', this.path('commit'), { body, contentType: 'application/json' });
    this.bytesTransferred += body.length;
    return JSON.parse(r.body.toString('utf8')) as CommitAnswer;
  }

  /** Drops what the site staged for this capture (the job failed). */
  async abort(): Promise<void> {
    await Promise.allSettled(this.inFlight.splice(0));
    await this.client.call('POST', this.path('abort'), { body: '{}', contentType: 'application/json' });
  }
}

/** A moving average (the newest value weighs a third). */
function average(old: number, value: number): number {
  return old === 0 ? value : (2 * old + value) / 3;
}

/** fn over items, at most `limit` at a time, results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
