// The site's side of an agent's capture or backup (POST /pkg/uploads/<id>/..., TCP 490): the
// package routes (packages/http-routes.ts) have checked the job's secret and that its job writes
// this package; here the upload itself. One capture per job secret, staged in a
// PackageImageWriter (nothing visible until the commit; an abandoned capture publishes nothing):
//   missing  {"digests":[...]} (1 to 4096)        -> {"missing":[...]}: what the site does not hold
//   chunks   chunk frames (packages/chunk-frames.ts), at most 64 MiB a request
//            -> {"stored", "bytes"}; a frame carries the chunk raw or raw-deflated (the agent
//            deflates what pays, packages/chunk-deflate.ts); a deflated one is inflated never
//            beyond the largest chunk (MAX_FRAME_DATA, the largest chunkBytes of a disk image),
//            and every chunk is checked against its digest (of the raw bytes) as it arrives
//   commit   disk.json (images/disk-image.ts)     -> {"package", "version", "seq", "kept"}
//            every chunk it names must be held (409 lists those that are not); a backup keeps
//            the newest `keep` versions of backup-<mac> and retires the older ones
//   abort    drops what the capture staged
// Answers: 400 a malformed body (a deflated frame that is not deflate, or inflates too far); 409 a commit naming chunks the site lacks, or a package of
// another kind or owner; 413 a body too large; 422 a chunk whose bytes do not match its digest.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { NetbootError, errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { InflateError, inflateAtMost } from '../packages/chunk-deflate.ts';
import { FrameParser, MAX_FRAME_DATA } from '../packages/chunk-frames.ts';
import { isDigest, sha256Hex } from '../packages/digest.ts';
import type { PackageStore } from '../packages/package-store.ts';
import { allChunks, decodeDiskImage } from './disk-image.ts';
import { PackageImageWriter } from './package-image.ts';

export const MAX_UPLOAD_DIGESTS = 4096;
export const MAX_CHUNKS_BODY_BYTES = 64 * 1024 * 1024;
export const MAX_DESCRIPTION_BYTES = 256 * 1024 * 1024;
/** A capture nobody touched for this long is dropped (its agent died or its job ended). */
const IDLE_MS = 30 * 60 * 1000;

/** What the upload routes need to know of the job behind a secret (state/jobs.ts JobBook.captureOf). */
export interface CaptureJobs {
  captureOf(secret: string): { readonly package: string; readonly task: 'capture' | 'backup'; readonly keep: number | null } | null;
}

/** The package store, under the package's lock (PackageService.withStore). */
export type WithStore = <T>(pkg: string, fn: (store: PackageStore) => Promise<T>) => Promise<T>;

interface Session {
  readonly pkg: string;
  readonly writer: PackageImageWriter;
  /** Puts run one after another (a pack file is appended at its end). */
  queue: Promise<void>;
  usedMs: number;
  chunksIn: number;
  /** Bytes of the chunks stored (raw), and of the chunk requests' bodies as received (the wire). */
  bytesIn: number;
  wireBytesIn: number;
  /** The answer to the commit, kept so a commit repeated after a lost answer gets it again. */
  committed: { readonly descriptionDigest: string; readonly answer: Record<string, unknown> } | null;
}

class UploadError extends Error {
  constructor(readonly status: number, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
  }
}

export class CaptureUploads {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly jobs: CaptureJobs, private readonly withStore: WithStore, private readonly log: Logger, private readonly now: () => number = Date.now) {}

  async handle(secret: string, pkg: string, action: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.sweep();
      const job = this.jobs.captureOf(secret);
      if (job === null || job.package !== pkg) throw new UploadError(403, `this job may not write package ${pkg}`);
      const answer = await this.act(secret, job, action, req);
      send(res, 200, answer);
    } catch (err) {
      req.resume();
      if (err instanceof UploadError) {
        this.log.warn('capture upload refused', { package: pkg, action, status: err.status, reason: err.message });
        send(res, err.status, { error: err.message, ...err.extra }, err.status === 413);
        return;
      }
      this.log.error('capture upload failed', { package: pkg, action, err: errorMessage(err) });
      send(res, 500, { error: errorMessage(err) });
    }
  }

  private async act(secret: string, job: NonNullable<ReturnType<CaptureJobs['captureOf']>>, action: string, req: IncomingMessage): Promise<Record<string, unknown>> {
    const pkg = job.package;
    if (action === 'abort') {
      await this.drop(secret);
      return { aborted: true };
    }
    const s = await this.session(secret, pkg);
    s.usedMs = this.now();
    if (s.committed !== null && action !== 'commit') throw new UploadError(409, 'this job\'s capture was already committed');
    if (action === 'missing') {
      const digests = digestList(await readBody(req, MAX_UPLOAD_DIGESTS * 80 + 1024));
      const missing: string[] = [];
      for (const d of digests) if (!(await s.writer.has(d))) missing.push(d);
      return { missing };
    }
    if (action === 'chunks') {
      const r = await this.receiveChunks(s, req);
      s.usedMs = this.now();
      return r;
    }
    // commit
    const body = await readBody(req, MAX_DESCRIPTION_BYTES);
    const descriptionDigest = sha256Hex(body);
    if (s.committed !== null) {
      if (s.committed.descriptionDigest === descriptionDigest) return s.committed.answer;
      throw new UploadError(409, 'this job\'s capture was already committed');
    }
    let image;
    try {
      image = decodeDiskImage(body);
    } catch (err) {
      throw new UploadError(400, `disk.json: ${errorMessage(err)}`);
    }
    if (image.inventory.madeBy !== job.task) throw new UploadError(400, `disk.json: inventory.madeBy is ${JSON.stringify(image.inventory.madeBy)}, this job is a ${job.task}`);
    await s.queue;
    const missing: string[] = [];
    let count = 0;
    for (const c of new Set(allChunks(image).map((x) => x.digest))) {
      if (await s.writer.has(c)) continue;
      count++;
      if (missing.length < 100) missing.push(c);
    }
    if (count > 0) throw new UploadError(409, `the capture names ${count} chunk(s) the site does not hold: upload them first`, { missing, count });
    const started = this.now();
    let committed;
    try {
      committed = await this.withStore(pkg, async (store) => {
        const held = new Set(store.db.versionsOf(pkg).filter((v) => v.retiredAtMs === null).map((v) => v.digest));
        const r = await s.writer.commit(image);
        const kept = job.keep === null ? null : keepNewest(store, pkg, job.keep, held, this.now());
        return { ...r, kept };
      });
    } catch (err) {
      this.sessions.delete(secret);
      if (err instanceof NetbootError && ['PACKAGE_KIND', 'PACKAGE_OWNER', 'CHUNK_MISSING'].includes(err.code)) throw new UploadError(409, err.message);
      throw err;
    }
    const answer = {
      package: pkg, version: `sha256:${committed.digest}`, seq: committed.ref.seq, kept: committed.kept,
      chunksUploaded: s.chunksIn, bytesUploaded: s.bytesIn, bytesReceived: s.wireBytesIn, bytesLinked: s.writer.bytesLinked, bytesCopied: s.writer.bytesCopied,
    };
    s.committed = { descriptionDigest, answer };
    this.log.info('capture published', { ...answer, task: job.task, ms: this.now() - started });
    return answer;
  }

  private async session(secret: string, pkg: string): Promise<Session> {
    const have = this.sessions.get(secret);
    if (have !== undefined && have.pkg === pkg) return have;
    const writer = await this.withStore(pkg, async (store) => new PackageImageWriter(store, pkg));
    const s: Session = { pkg, writer, queue: Promise.resolve(), usedMs: this.now(), chunksIn: 0, bytesIn: 0, wireBytesIn: 0, committed: null };
    this.sessions.set(secret, s);
    return s;
  }

  /** Frames as they arrive: each checked against its digest, then put (in order) into the capture. */
  private async receiveChunks(s: Session, req: IncomingMessage): Promise<Record<string, unknown>> {
    const parser = new FrameParser();
    let size = 0;
    let stored = 0;
    let bytes = 0;
    for await (const piece of req) {
      size += (piece as Buffer).length;
      if (size > MAX_CHUNKS_BODY_BYTES) throw new UploadError(413, `body larger than ${MAX_CHUNKS_BODY_BYTES} bytes: send fewer chunks a request`);
      let frames;
      try {
        frames = parser.push(piece as Buffer);
      } catch (err) {
        throw new UploadError(400, `chunk frames: ${errorMessage(err)}`);
      }
      for (const f of frames) {
        if (f.data === null) throw new UploadError(400, `chunk ${f.digest}: a frame must carry the chunk's bytes (raw or deflated)`);
        let data: Buffer;
        if (f.deflated) {
          try {
            data = await inflateAtMost(f.data, MAX_FRAME_DATA);
          } catch (err) {
            if (err instanceof InflateError) throw new UploadError(400, `chunk ${f.digest}: its deflated frame ${err.message}: refused`);
            throw err;
          }
        } else data = Buffer.from(f.data);
        const actual = sha256Hex(data);
        if (actual !== f.digest) throw new UploadError(422, `chunk ${f.digest}: its bytes${f.deflated ? ' (inflated)' : ''} hash to ${actual}: refused`);
        const put = s.queue.then(() => s.writer.put(f.digest, data));
        s.queue = put.catch(() => {});
        await put;
        stored++;
        bytes += data.length;
      }
    }
    try {
      parser.end();
    } catch (err) {
      throw new UploadError(400, `chunk frames: ${errorMessage(err)}`);
    }
    s.chunksIn += stored;
    s.bytesIn += bytes;
    s.wireBytesIn += size;
    return { stored, bytes };
  }

  private async drop(secret: string): Promise<void> {
    const s = this.sessions.get(secret);
    this.sessions.delete(secret);
    if (s !== undefined && s.committed === null) {
      await s.queue;
      await s.writer.abort();
    }
  }

  /** Drops captures whose job ended (its secret writes nothing now) or that lay idle too long. */
  private async sweep(): Promise<void> {
    for (const [secret, s] of [...this.sessions]) {
      if (this.jobs.captureOf(secret) === null || this.now() - s.usedMs > IDLE_MS) {
        if (s.committed === null) this.log.info('capture dropped unpublished', { package: s.pkg, reason: this.jobs.captureOf(secret) === null ? 'job ended' : 'idle' });
        await this.drop(secret);
      }
    }
  }

  /** Drops every unpublished capture (the Interface stops). */
  async close(): Promise<void> {
    for (const secret of [...this.sessions.keys()]) await this.drop(secret);
  }
}

/**
 * A backup package keeps its newest `keep` versions (by when each was made): of the versions
 * held before this commit (`held`) and the new current one, those stay, the older ones are
 * retired and garbage collected after the grace time. Returns the versions kept, newest first.
 */
export function keepNewest(store: PackageStore, pkg: string, keep: number, held: ReadonlySet<string>, nowMs: number): string[] {
  const current = store.db.getRef(pkg)?.digest ?? null;
  const versions = store.db.versionsOf(pkg)
    .filter((v) => v.digest === current || held.has(v.digest))
    .map((v) => ({ digest: v.digest, made: v.digest === current ? Number.POSITIVE_INFINITY : Date.parse(store.manifest(v.digest)?.createdAt ?? '') || 0 }))
    .sort((a, b) => b.made - a.made);
  const kept = versions.slice(0, keep).map((v) => v.digest);
  for (const v of store.db.versionsOf(pkg)) {
    if (kept.includes(v.digest)) store.db.setRetired(pkg, v.digest, null);
    else if (v.retiredAtMs === null) store.db.setRetired(pkg, v.digest, nowMs);
  }
  return kept.map((d) => `sha256:${d}`);
}

function digestList(body: Buffer): string[] {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw new UploadError(400, 'body: not JSON');
  }
  const d = (v as { digests?: unknown } | null)?.digests;
  if (!Array.isArray(d) || d.length === 0 || d.length > MAX_UPLOAD_DIGESTS || !d.every(isDigest)) {
    throw new UploadError(400, `body must be {"digests":[...]} with 1 to ${MAX_UPLOAD_DIGESTS} SHA-256 digests (64 lowercase hex)`);
  }
  return d as string[];
}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw new UploadError(413, `body of ${declared} bytes is larger than ${maxBytes}`);
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > maxBytes) throw new UploadError(413, `body larger than ${maxBytes} bytes`);
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

function send(res: ServerResponse, status: number, body: unknown, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...(close ? { connection: 'close' } : {}) }).end(text);
}
