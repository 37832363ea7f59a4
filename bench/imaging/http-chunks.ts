// A stand-in for the site's chunk API in the bench: an HTTP server on loopback over one pack file
// with an index in memory, as the package store keeps a capture's new chunks (POST /chunks: framed chunks, each verified; POST /get: digests in, framed chunks
// out; also raw uploads/downloads for the partclone pipeline), and the client side as a
// ChunkSink/ChunkSource that batches up to 4 MiB per request. Frames: 32-byte digest, 4-byte
// length, bytes. Counts bytes on the wire. Also the agent's upload routes
// (POST /pkg/uploads/<id>/missing|chunks|commit|abort, as images/capture-uploads.ts answers them,
// over the same pack file): the agent's own UploadSink captures into it, its frames raw or
// deflated (inflated never beyond the largest chunk, each verified); the secret is not checked.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ChunkSink, ChunkSource } from '../../images/chunk-store.ts';
import { inflateAtMost } from '../../packages/chunk-deflate.ts';
import { FrameParser, MAX_FRAME_DATA } from '../../packages/chunk-frames.ts';

const BATCH = 4 * 1024 * 1024;

function frames(list: readonly [string, Buffer][]): Buffer {
  const parts: Buffer[] = [];
  for (const [d, b] of list) {
    const h = Buffer.alloc(36);
    Buffer.from(d, 'hex').copy(h);
    h.writeUInt32BE(b.length, 32);
    parts.push(h, b);
  }
  return Buffer.concat(parts);
}

function unframe(buf: Buffer): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  for (let o = 0; o + 36 <= buf.length; ) {
    const d = buf.subarray(o, o + 32).toString('hex');
    const n = buf.readUInt32BE(o + 32);
    out.push([d, buf.subarray(o + 36, o + 36 + n)]);
    o += 36 + n;
  }
  return out;
}

async function body(req: http.IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of req) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

class PackStore {
  private readonly fd: number;
  private size = 0;
  private readonly index = new Map<string, { at: number; length: number }>();
  constructor(path: string) {
    this.fd = openSync(path, 'w+');
  }
  async put(d: string, b: Buffer): Promise<void> {
    if (this.index.has(d)) return;
    writeSync(this.fd, b, 0, b.length, this.size);
    this.index.set(d, { at: this.size, length: b.length });
    this.size += b.length;
  }
  has(d: string): boolean {
    return this.index.has(d);
  }
  async get(d: string): Promise<Buffer | null> {
    const e = this.index.get(d);
    if (e === undefined) return null;
    const b = Buffer.alloc(e.length);
    readSync(this.fd, b, 0, e.length, e.at);
    return b;
  }
  close(): void {
    closeSync(this.fd);
  }
}

export class BenchServer {
  store: PackStore;
  private packs = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Chunk bytes received through the upload routes, raw (after inflating). */
  chunkBytesIn = 0;
  private server: http.Server | null = null;
  port = 0;
  constructor(readonly dir: string) {
    this.store = new PackStore(join(dir, 'pack'));
  }

  async start(host = '127.0.0.1'): Promise<void> {
    this.server = http.createServer((req, res) => {
      void this.handle(req, res).catch((err: Error) => {
        res.statusCode = 500;
        res.end(err.message);
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, host, r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    if (req.method === 'POST' && url === '/reset') {
      // A new, empty store (a first capture then writes everything, as on a site that holds none of it).
      this.store.close();
      rmSync(join(this.dir, `pack${this.packs === 0 ? '' : `-${this.packs}`}`), { force: true });
      this.store = new PackStore(join(this.dir, `pack-${++this.packs}`));
      res.end('ok');
    } else if (req.method === 'GET' && url === '/stats') {
      res.end(JSON.stringify({ bytesIn: this.bytesIn, bytesOut: this.bytesOut, chunkBytesIn: this.chunkBytesIn }));
    } else if (req.method === 'POST' && url.startsWith('/pkg/uploads/')) {
      await this.upload(url.split('/')[4] ?? '', req, res);
    } else if (req.method === 'POST' && url === '/chunks') {
      const b = await body(req);
      this.bytesIn += b.length;
      for (const [d, bytes] of unframe(b)) {
        if (createHash('sha256').update(bytes).digest('hex') !== d) throw new Error(`chunk ${d} does not match`);
        await this.store.put(d, Buffer.from(bytes));
      }
      res.end('ok');
    } else if (req.method === 'POST' && url === '/get') {
      const digests = JSON.parse((await body(req)).toString()) as string[];
      const list: [string, Buffer][] = [];
      for (const d of digests) {
        const b = await this.store.get(d);
        if (b !== null) list.push([d, b]);
      }
      const out = frames(list);
      this.bytesOut += out.length;
      res.setHeader('content-length', out.length);
      res.end(out);
    } else if (req.method === 'PUT' && url.startsWith('/raw/')) {
      await pipeline(req, createWriteStream(join(this.dir, url.slice(5))));
      this.bytesIn += statSync(join(this.dir, url.slice(5))).size;
      res.end('ok');
    } else if (req.method === 'GET' && url.startsWith('/raw/')) {
      const path = join(this.dir, url.slice(5));
      this.bytesOut += statSync(path).size;
      await pipeline(createReadStream(path), res);
    } else {
      res.statusCode = 404;
      res.end();
    }
  }

  /** The agent's capture upload (images/capture-uploads.ts's answers, without the package store). */
  private async upload(action: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const answer = (v: unknown): void => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(v));
    };
    if (action === 'missing') {
      const b = await body(req);
      this.bytesIn += b.length;
      return answer({ missing: (JSON.parse(b.toString()) as { digests: string[] }).digests.filter((d) => !this.store.has(d)) });
    }
    if (action === 'chunks') {
      const parser = new FrameParser();
      let stored = 0;
      let bytes = 0;
      for await (const piece of req) {
        this.bytesIn += (piece as Buffer).length;
        for (const f of parser.push(piece as Buffer)) {
          const data = f.deflated ? await inflateAtMost(f.data!, MAX_FRAME_DATA) : Buffer.from(f.data!);
          if (createHash('sha256').update(data).digest('hex') !== f.digest) throw new Error(`chunk ${f.digest} does not match`);
          await this.store.put(f.digest, data);
          stored++;
          bytes += data.length;
        }
      }
      parser.end();
      this.chunkBytesIn += bytes;
      return answer({ stored, bytes });
    }
    const b = await body(req);
    this.bytesIn += b.length;
    if (action === 'commit') return answer({ package: 'bench', version: `sha256:${createHash('sha256').update(b).digest('hex')}`, seq: 1, kept: null });
    return answer({ aborted: true });
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server?.close(() => r()));
    this.store.close();
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function request(port: number, path: string, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-length': data.length } }, (res) => {
      // A body of known length lands in shared memory: the hash workers read it without a copy.
      const length = Number(res.headers['content-length'] ?? NaN);
      const into = res.statusCode === 200 && Number.isSafeInteger(length) ? Buffer.from(new SharedArrayBuffer(length)) : null;
      let at = 0;
      const parts: Buffer[] = [];
      res.on('data', (p: Buffer) => {
        if (into !== null && at + p.length <= length) p.copy(into, at);
        else parts.push(p);
        at += p.length;
      });
      res.on('end', () => (res.statusCode !== 200 ? reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(parts).toString()}`)) : into !== null && at === length ? resolve(into) : reject(new Error(`short body: ${at} of ${length} bytes`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** A sink that knows which chunks the site holds (the previous version's list) and batches puts. */
export class HttpChunkSink implements ChunkSink {
  private pending: [string, Buffer][] = [];
  private pendingBytes = 0;
  private readonly known: Set<string>;
  private inFlight: Promise<unknown> = Promise.resolve();
  constructor(readonly port: number, known: Iterable<string>) {
    this.known = new Set(known);
  }
  async has(d: string): Promise<boolean> {
    return this.known.has(d);
  }
  async put(d: string, b: Buffer): Promise<void> {
    this.known.add(d);
    this.pending.push([d, b]);
    this.pendingBytes += b.length;
    if (this.pendingBytes >= BATCH) await this.flush();
  }
  async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    await this.inFlight; // one batch on the wire while the next is read and hashed
    if (batch.length > 0) this.inFlight = request(this.port, '/chunks', frames(batch));
  }
  async close(): Promise<void> {
    await this.flush();
    await this.inFlight;
  }
}

export class HttpChunkSource implements ChunkSource {
  constructor(readonly port: number) {}
  async get(d: string): Promise<Buffer | null> {
    return (await this.getMany([d])).get(d) ?? null;
  }
  async getMany(digests: readonly string[]): Promise<Map<string, Buffer>> {
    return new Map(unframe(await request(this.port, '/get', Buffer.from(JSON.stringify(digests)))));
  }
}
