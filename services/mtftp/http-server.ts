// Boot HTTP: the same read-only view MTFTP serves over TFTP (the TFTP root jail, `netboot/` paths
// resolved per machine by the boot hooks, files of Ready package versions), over HTTP/1.1 for
// iPXE (kernels, initrds, WIMs: TCP instead of lock-step TFTP) and UEFI HTTP Boot firmware.
//
// - GET and HEAD only; `Content-Length` always; one `Range` (`bytes=a-b`, `a-`, `-n`) answers
//   206, an unsatisfiable one 416; several ranges, or a malformed header, are ignored (RFC 9110
//   14.2 lets a server ignore Range): the whole file, 200.
// - The path is percent-decoded once (invalid UTF-8 or a bad escape: 400), leading slashes are
//   dropped (shim asks for `//grubx64.efi`), then it goes through request-target.ts exactly as a
//   TFTP file name: `..`, NUL, drive letters and over-long paths are refused, files must be
//   regular and really inside the root. The client hears 404 (or 403); the log says why.
// - A complete 200 GET of a `netboot/` path is reported to the boot hooks (`fetched`), as a
//   TFTP transfer's last ACK is: that is what consumes a `once` boot. HEAD and ranges never do.
// - Bounded: connections overall and per client address (more are closed at once), a header
//   deadline, an idle deadline (a client sending nothing or not reading), a response deadline.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { errorMessage } from '../../platform/runtime/errors.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import type { BlockSource } from './block-ring.ts';
import type { BootHooks } from './boot-hooks.ts';
import { resolveTarget } from './request-target.ts';
import { TFTP_ERROR } from '../../protocols/tftp/tftp-codec.ts';
import type { TftpRoot } from './tftp-root.ts';

export interface HttpBootOptions {
  readonly bind: string;
  readonly port: number;
  readonly root: TftpRoot;
  readonly hooks: BootHooks;
  readonly log: Logger;
  readonly maxConnections: number;
  readonly maxConnectionsPerClient: number;
  readonly idleTimeoutMs: number;
  readonly maxResponseMs: number;
}

/** Bytes read from the file per write: large enough for TCP, small enough to bound memory per connection. */
const CHUNK = 256 * 1024;

export type ByteRange = { readonly start: number; readonly end: number };

/**
 * One `Range` header against a file of `size` bytes: the range (inclusive end), `unsatisfiable`,
 * or null to ignore it (absent, malformed, not bytes, or several ranges).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (m === null) return null;
  const [, a, b] = m;
  if (a === '' && b === '') return null;
  // Digits beyond 15 overflow nothing we could serve; treat them as the huge numbers they are.
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    return size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** The request target's path as text for request-target.ts, or why it is a bad request. */
export function requestPath(url: string | undefined): { path: string } | { bad: string } {
  if (url === undefined || !url.startsWith('/')) return { bad: 'request target is not an absolute path' };
  const raw = url.split(/[?#]/, 1)[0] ?? '';
  let text: string;
  try {
    text = decodeURIComponent(raw);
  } catch {
    return { bad: 'bad percent-encoding (or not UTF-8)' };
  }
  // Leading separators all mean the root here (shim asks for `//grubx64.efi`); TFTP's UNC rule
  // does not apply to a URL path.
  const path = text.replace(/^[/\\]+/, '');
  if (path === '') return { bad: 'empty path' };
  return { path };
}

export class HttpBootServer implements Lifecycle {
  private server: Server | null = null;
  private readonly perClient = new Map<string, number>();
  private readonly sockets = new Set<Socket>();
  private boundPort = 0;
  private responses = 0;

  constructor(private readonly opts: HttpBootOptions) {}

  get port(): number {
    return this.boundPort;
  }

  get connections(): number {
    return this.sockets.size;
  }

  /** Responses being sent now. */
  get activeResponses(): number {
    return this.responses;
  }

  async start(): Promise<void> {
    const o = this.opts;
    const server = createServer({ keepAlive: true, requestTimeout: o.idleTimeoutMs * 2, headersTimeout: o.idleTimeoutMs }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        o.log.error('HTTP request handler failed', { peer: req.socket.remoteAddress, err });
        if (!res.headersSent) this.plain(res, 500, 'internal error');
        else res.destroy();
      });
    });
    server.maxConnections = o.maxConnections;
    server.keepAliveTimeout = o.idleTimeoutMs;
    // Inactivity in either direction (no request, or a client not reading what it asked for):
    // with no 'timeout' listener node destroys the socket.
    server.timeout = o.idleTimeoutMs;
    server.on('connection', (socket: Socket) => this.admit(socket));
    server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
      o.log.debug('HTTP client error', { peer: socket.remoteAddress, reason: err.code ?? err.message });
      if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.bind, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => o.log.error('HTTP server error', { err }));
    this.server = server;
    const addr = server.address();
    this.boundPort = typeof addr === 'object' && addr !== null ? addr.port : o.port;
    o.log.info('serving Boot HTTP', { bind: o.bind, port: this.boundPort });
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private admit(socket: Socket): void {
    const address = socket.remoteAddress ?? '?';
    const n = (this.perClient.get(address) ?? 0) + 1;
    if (n > this.opts.maxConnectionsPerClient) {
      this.opts.log.warn('HTTP connection refused: too many from this client', { peer: address, limit: this.opts.maxConnectionsPerClient });
      socket.destroy();
      return;
    }
    this.perClient.set(address, n);
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      const left = (this.perClient.get(address) ?? 1) - 1;
      if (left <= 0) this.perClient.delete(address);
      else this.perClient.set(address, left);
    });
  }

  private plain(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
    const body = Buffer.from(`${text}\n`);
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length, ...extra });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { log, root, hooks } = this.opts;
    const peer = { address: req.socket.remoteAddress ?? '?', port: req.socket.remotePort ?? 0 };
    const method = req.method ?? '';
    if (method !== 'GET' && method !== 'HEAD') return this.plain(res, 405, 'method not allowed', { Allow: 'GET, HEAD' });
    const target = requestPath(req.url);
    if ('bad' in target) {
      log.info('HTTP request refused', { peer: `${peer.address}:${peer.port}`, url: cut(req.url), reason: target.bad });
      return this.plain(res, 400, 'bad request');
    }
    // resolveTarget takes a TFTP file name (bytes as latin1); give it the path's UTF-8 bytes.
    const resolved = await resolveTarget(Buffer.from(target.path, 'utf8').toString('latin1'), 'octet', peer, root, hooks);
    if (!resolved.ok) {
      log.info('HTTP request refused', { peer: `${peer.address}:${peer.port}`, path: cut(resolved.path ?? target.path), reason: resolved.reason });
      return resolved.code === TFTP_ERROR.ACCESS_VIOLATION ? this.plain(res, 403, 'forbidden') : this.plain(res, 404, 'not found');
    }
    const source = resolved.source;
    const size = source.size;
    try {
      const range = method === 'GET' || method === 'HEAD' ? parseRange(req.headers.range, size) : null;
      const common = {
        'Accept-Ranges': 'bytes',
        'Content-Type': resolved.generated ? 'text/plain; charset=utf-8' : 'application/octet-stream',
        'Cache-Control': 'no-store',
      };
      if (range === 'unsatisfiable') return this.plain(res, 416, 'range not satisfiable', { 'Content-Range': `bytes */${size}` });
      const start = range === null ? 0 : range.start;
      const end = range === null ? size - 1 : range.end;
      const length = end - start + 1;
      res.writeHead(range === null ? 200 : 206, {
        ...common,
        'Content-Length': length,
        ...(range === null ? {} : { 'Content-Range': `bytes ${start}-${end}/${size}` }),
      });
      if (method === 'HEAD') {
        res.end();
        return;
      }
      const began = Date.now();
      const complete = await this.send(res, source, start, length);
      const whole = complete && range === null;
      log.info('HTTP sent', { peer: `${peer.address}:${peer.port}`, path: resolved.path, bytes: complete ? length : undefined, complete, ...(range === null ? {} : { range: `${start}-${end}` }) });
      if (whole && resolved.virtual) {
        try {
          hooks.fetched({ path: resolved.path, resolvedPath: resolved.resolvedPath, address: peer.address, port: peer.port, bytes: length, durationMs: Date.now() - began });
        } catch (err) {
          log.warn('fetched hook failed', { err });
        }
      }
    } finally {
      await source.close().catch(() => undefined);
    }
  }

  /** Writes `length` bytes from `start`, waiting for the client to read; true when all were sent and flushed. */
  private async send(res: ServerResponse, source: BlockSource, start: number, length: number): Promise<boolean> {
    this.responses++;
    let gone = false;
    const onClose = (): void => {
      gone = true;
      wake();
    };
    let wake: () => void = () => undefined;
    res.on('close', onClose);
    const deadline = setTimeout(() => {
      this.opts.log.warn('HTTP response took too long: connection closed', { peer: res.req.socket.remoteAddress, limitMs: this.opts.maxResponseMs });
      res.destroy();
    }, this.opts.maxResponseMs);
    try {
      let at = start;
      const stop = start + length;
      while (at < stop && !gone) {
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, stop - at));
        const got = await source.readv([buf], at);
        if (got <= 0) {
          // The file shrank under us: the promised length cannot be met.
          res.destroy();
          return false;
        }
        at += got;
        if (!res.write(got === buf.length ? buf : buf.subarray(0, got))) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            res.once('drain', resolve);
          });
          res.off('drain', wake);
        }
      }
      if (gone) return false;
      await new Promise<void>((resolve) => {
        wake = resolve;
        res.end(() => resolve());
      });
      return !gone || res.writableFinished;
    } catch (err) {
      this.opts.log.warn('HTTP send failed', { reason: errorMessage(err) });
      res.destroy();
      return false;
    } finally {
      clearTimeout(deadline);
      res.off('close', onClose);
      this.responses--;
    }
  }
}

/** A client-chosen string for the log: bounded. */
function cut(s: string | undefined): string {
  if (s === undefined) return '';
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}
