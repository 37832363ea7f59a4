// The package routes on TCP 490, every request signed by a configured peer (peer-auth HTTP
// scheme), or made by an imaging agent with its job's secret (`Authorization: Bearer <64 hex>`);
// anyone else gets 401 and a log line. An agent may read only the packages its job needs
// (AgentAccess.mayRead: refs, sources, their versions' manifests and parts, and chunks that one
// of them holds) and gets 403 for anything else, `GET /pkg/refs` included. An agent whose job
// captures a package (AgentAccess.mayWrite) may upload to that package alone, under
// /pkg/uploads/<id>/ (handled by the injected AgentUploads: images/capture-uploads.ts); a peer
// may not (403): peers replicate by fetching, never by pushing.
//   GET  /pkg/refs                 all refs and this server's statuses (not cacheable)
//   GET  /pkg/refs/<id>            one ref
//   GET  /pkg/sources/<id>         servers Ready at the package's current digest
//   GET  /pkg/manifests/<digest>   a manifest or manifest part: immutable, ETag, Range
//   GET  /pkg/chunks/<digest>      immutable, ETag, Range; verified before it is sent
//   POST /pkg/chunks               {"digests":[...], "encoding":"deflate"} -> framed stream (chunk-frames.ts)
//   POST /pkg/uploads/<id>/missing|chunks|commit|abort   an agent's capture (capture-uploads.ts)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { HttpAuthVerifier } from '../platform/trust/peer-auth.ts';
import { compressed } from './chunk-deflate.ts';
import { encodeFrameHeader } from './chunk-frames.ts';
import { isDigest, isPackageId, sha256Hex } from './digest.ts';
import type { PackageStore } from './package-store.ts';
import type { PeerKeys } from '../platform/trust/peer-keys.ts';

export const MAX_BATCH_DIGESTS = 4096;
const UPLOAD_ACTIONS = ['missing', 'chunks', 'commit', 'abort'];
const IMMUTABLE = 'public, max-age=31536000, immutable';

export interface ServedCounters {
  requests: number;
  chunks: number;
  /** Chunk bytes as sent (deflated where that helped), and before compression. */
  bytes: number;
  rawBytes: number;
  /** Manifests and manifest parts: requests and bytes. */
  manifests: number;
  manifestBytes: number;
}

export interface Source {
  readonly server: string;
  readonly address: string | null;
}

/** Servers Ready at a package's current digest (this one first, while it holds it); null: no such package. */
export function readySources(store: PackageStore, keys: PeerKeys, pkg: string): { seq: number; digest: string | null; sources: Source[] } | null {
  const ref = store.db.getRef(pkg);
  if (ref === null) return null;
  const list: Source[] = [];
  if (ref.digest !== null) {
    if (store.currentDigest(pkg) === ref.digest) list.push({ server: store.serverId, address: null });
    for (const s of store.db.peerStatusesOf(pkg)) {
      if (s.state === 'ready' && s.digest === ref.digest) list.push({ server: s.server, address: keys.address(s.server) });
    }
  }
  return { seq: ref.seq, digest: ref.digest, sources: list };
}

/** What an imaging agent's job secret may touch (state/jobs.ts JobBook): injected, packages/ does not import state/. */
export interface AgentAccess {
  mayRead(secret: string, packageId: string): boolean;
  mayWrite(secret: string, packageId: string): boolean;
}

/** The upload side of an agent's capture (images/capture-uploads.ts): injected, packages/ does not import images/. */
export interface AgentUploads {
  /** Answers one upload request; the caller checked that `secret` may write `pkg`. */
  handle(secret: string, pkg: string, action: string, req: IncomingMessage, res: ServerResponse): Promise<void>;
}

const BEARER = /^Bearer ([0-9A-Fa-f]{64})$/;
/** How many of a chunk's locations are looked at to find one in a package the agent may read. */
const AGENT_CHUNK_LOCATIONS = 10_000;

export class PackageHttp {
  private readonly verifier: HttpAuthVerifier;
  /** What this server has sent, per peer: lets tests and operators see what a change cost. */
  readonly served = new Map<string, ServedCounters>();

  constructor(
    private readonly store: PackageStore,
    private readonly keys: PeerKeys,
    private readonly log: Logger,
    private readonly agents: AgentAccess | null = null,
    private readonly uploads: AgentUploads | null = null,
  ) {
    this.verifier = new HttpAuthVerifier((id) => this.keys.keyFor(id));
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    void this.route(req, res).catch((err) => {
      this.log.error('package request failed', { url: req.url, err: errorMessage(err) });
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
      else res.destroy();
    });
  };

  private counters(peer: string): ServedCounters {
    let c = this.served.get(peer);
    if (c === undefined) {
      c = { requests: 0, chunks: 0, bytes: 0, rawBytes: 0, manifests: 0, manifestBytes: 0 };
      this.served.set(peer, c);
    }
    return c;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    let peer: string;
    let secret: string | null = null;
    const bearer = this.agents === null ? null : BEARER.exec(req.headers.authorization ?? '');
    try {
      if (bearer !== null && bearer !== undefined) {
        secret = bearer[1]!.toLowerCase();
        peer = 'agents';
      } else peer = this.verifier.verify(req.headers.authorization, method, url);
    } catch (err) {
      this.log.warn('package request refused', { remote: req.socket.remoteAddress, method, url, reason: errorMessage(err) });
      req.resume();
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'NetbootPeer' }).end('unauthorized\n');
      return;
    }
    const counters = this.counters(peer);
    counters.requests++;
    const path = url.split('?')[0]!;
    const parts = path.split('/').slice(2); // ['', 'pkg', ...]
    const [what, arg] = parts;
    if (what === 'uploads') return this.upload(req, res, secret, parts);
    const batch = method === 'POST' && what === 'chunks' && parts.length === 1 ? await readDigestList(req) : null;
    if (secret !== null) {
      const refused = this.agentRefusal(secret, method, what, arg, parts.length, batch);
      if (refused !== null) {
        this.log.warn('agent package request refused', { remote: req.socket.remoteAddress, method, url, reason: refused });
        req.resume();
        return json(res, 403, { error: refused });
      }
    }
    if (method === 'GET' && what === 'refs' && parts.length === 1) {
      return json(res, 200, { server: this.store.serverId, epoch: this.store.db.epoch, refs: this.store.db.allRefs(), statuses: this.store.db.allStatuses() });
    }
    if (method === 'GET' && what === 'refs' && parts.length === 2 && isPackageId(arg)) {
      const ref = this.store.db.getRef(arg);
      return ref === null ? json(res, 404, { error: `no package ${arg}` }) : json(res, 200, ref);
    }
    if (method === 'GET' && what === 'sources' && parts.length === 2 && isPackageId(arg)) {
      const s = readySources(this.store, this.keys, arg);
      return s === null ? json(res, 404, { error: `no package ${arg}` }) : json(res, 200, { package: arg, ...s });
    }
    if (method === 'GET' && what === 'manifests' && parts.length === 2 && isDigest(arg)) {
      const body = this.store.db.getManifest(arg);
      if (body === null || sha256Hex(body) !== arg) return json(res, 404, { error: 'manifest not held here' });
      counters.manifests++;
      counters.manifestBytes += body.length;
      return immutable(req, res, arg, body, 'application/json');
    }
    if (method === 'GET' && what === 'chunks' && parts.length === 2 && isDigest(arg)) {
      const data = await this.store.readChunk(arg);
      if (data === null) return json(res, 404, { error: 'chunk not held here' });
      counters.chunks++;
      counters.bytes += data.length;
      counters.rawBytes += data.length;
      return immutable(req, res, arg, data, 'application/octet-stream');
    }
    if (method === 'POST' && what === 'chunks' && parts.length === 1) {
      const list = batch;
      if (list === null) return json(res, 400, { error: `body must be {"digests":[...]} with 1 to ${MAX_BATCH_DIGESTS} SHA-256 digests` });
      res.writeHead(200, { 'content-type': 'application/x-netboot-chunks', 'cache-control': 'no-store' });
      for (const d of list.digests) {
        const data = await this.store.readChunk(d);
        if (res.destroyed) return;
        const packed = data !== null && list.deflate ? await compressed(data) : null;
        const body = packed ?? data;
        const more = res.write(encodeFrameHeader(d, body === null ? null : body.length, packed !== null)) && (body === null || res.write(body));
        if (body !== null) {
          counters.chunks++;
          counters.bytes += body.length;
          counters.rawBytes += data!.length;
        }
        if (!more) await drained(res);
      }
      res.end();
      return;
    }
    json(res, 404, { error: `no route ${method} ${path}` });
  }

  /** /pkg/uploads/<id>/<action>: an agent's capture, for the one package its job writes. */
  private async upload(req: IncomingMessage, res: ServerResponse, secret: string | null, parts: readonly string[]): Promise<void> {
    const [, pkg, action] = parts;
    const refuse = (status: number, error: string): void => {
      this.log.warn('package upload refused', { remote: req.socket.remoteAddress, url: req.url, status, reason: error });
      req.resume();
      json(res, status, { error });
    };
    if (secret === null) return refuse(403, 'uploads are made by an imaging agent with its job\'s secret (Authorization: Bearer); peers fetch, they do not push');
    if (req.method !== 'POST' || parts.length !== 3 || !isPackageId(pkg) || action === undefined || !UPLOAD_ACTIONS.includes(action)) {
      return refuse(404, `no route ${req.method} ${req.url}: POST /pkg/uploads/<id>/${UPLOAD_ACTIONS.join('|')}`);
    }
    if (!this.agents!.mayWrite(secret, pkg)) return refuse(403, `this job may not write package ${pkg} (only an active capture or backup writes, and only its own package)`);
    if (this.uploads === null) return refuse(503, 'this server takes no uploads');
    await this.uploads.handle(secret, pkg, action, req, res);
  }

  /** Why an agent's request is refused (403), or null when its job may read what it asks for. */
  private agentRefusal(secret: string, method: string, what: string | undefined, arg: string | undefined, n: number, batch: { digests: string[] } | null): string | null {
    const may = (pkg: string): boolean => this.agents!.mayRead(secret, pkg);
    const pkgRoute = (what === 'refs' || what === 'sources') && n === 2 && isPackageId(arg);
    if (method === 'GET' && pkgRoute) return may(arg) ? null : `this job may not read package ${arg}`;
    if (method === 'GET' && what === 'manifests' && n === 2 && isDigest(arg)) return this.readableManifest(may, arg) ? null : 'this job may not read that manifest';
    if (method === 'GET' && what === 'chunks' && n === 2 && isDigest(arg)) return this.readableChunk(may, arg) ? null : 'this job may not read that chunk';
    if (method === 'POST' && what === 'chunks' && n === 1) {
      if (batch === null) return null; // 400 below
      const bad = batch.digests.find((d) => !this.readableChunk(may, d));
      return bad === undefined ? null : `this job may not read chunk ${bad}`;
    }
    return 'an imaging agent may read only its job\'s packages (refs/<id>, sources/<id>, their manifests and chunks)';
  }

  /** A version manifest of a package the agent may read, or a part one of them lists. */
  private readableManifest(may: (pkg: string) => boolean, digest: string): boolean {
    for (const ref of this.store.db.allRefs()) {
      if (!may(ref.package)) continue;
      for (const v of this.store.db.versionsOf(ref.package)) {
        if (v.digest === digest) return true;
        if (this.store.db.getManifest(v.digest)?.includes(digest) === true) return true;
      }
    }
    return false;
  }

  private readableChunk(may: (pkg: string) => boolean, digest: string): boolean {
    return this.store.db.chunkLocations(digest, AGENT_CHUNK_LOCATIONS).some((l) => may(l.package));
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

/** Content named by its digest: cacheable forever, conditional and ranged requests honoured. */
function immutable(req: IncomingMessage, res: ServerResponse, digest: string, body: Buffer, type: string): void {
  const etag = `"${digest}"`;
  const headers = { 'content-type': type, 'cache-control': IMMUTABLE, etag, 'accept-ranges': 'bytes' };
  const inm = req.headers['if-none-match'];
  if (inm !== undefined && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
    res.writeHead(304, headers).end();
    return;
  }
  const range = parseRange(req.headers.range, body.length);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${body.length}` }).end();
    return;
  }
  if (range === null) {
    res.writeHead(200, { ...headers, 'content-length': String(body.length) }).end(body);
    return;
  }
  const [start, end] = range;
  res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${body.length}`, 'content-length': String(end - start + 1) }).end(body.subarray(start, end + 1));
}

/** One byte range (RFC 9110 14.2); several ranges or a malformed header get the whole body. */
export function parseRange(header: string | undefined, size: number): [number, number] | null | 'unsatisfiable' {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return [start, end];
}

async function readDigestList(req: IncomingMessage): Promise<{ digests: string[]; deflate: boolean } | null> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BATCH_DIGESTS * 80 + 1024) return null;
    parts.push(c as Buffer);
  }
  try {
    const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as { digests?: unknown; encoding?: unknown };
    const d = body.digests;
    if (!Array.isArray(d) || d.length === 0 || d.length > MAX_BATCH_DIGESTS || !d.every(isDigest)) return null;
    return { digests: d as string[], deflate: body.encoding === 'deflate' };
  } catch {
    return null;
  }
}
