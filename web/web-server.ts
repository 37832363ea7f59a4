// The site server's one HTTP address for people and monitoring ([web], default 127.0.0.1:9490):
//   GET /metrics        every service's Prometheus metrics, merged, each labelled `service`
//   GET /               the live status page (one inline document: no external asset)
//   GET /events         the page's live feed (server-sent events: a `snapshot` on every change)
//   GET /snapshot.json  the same view once, as JSON
// Read-only. Clients on loopback are served; any other client must present the token of
// `[web] token_file` (`Authorization: Bearer <token>` or `?token=`), and is refused when none is
// configured. It runs in the Interface process (always present, under `netboot run` or systemd,
// and off the PXE path), and is only a client of the services' control sockets, so it holds
// no state of its own. Where it listens is written to <data>/run/web.json (port 0 in tests).
import { timingSafeEqual } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { controlCall, controlSocketPath, type ServiceName } from '../platform/local/control.ts';
import { mergeExpositions } from '../platform/metrics/merge.ts';
import { METRICS_CONTENT_TYPE } from '../platform/metrics/registry.ts';
import { writeFileAtomic } from '../platform/runtime/atomic-file.ts';
import type { Config } from '../platform/runtime/config.ts';
import { NetbootError, errorMessage } from '../platform/runtime/errors.ts';
import type { Lifecycle } from '../platform/runtime/lifecycle.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { derivedMetrics } from './derived-metrics.ts';
import { LiveFeed } from './live-feed.ts';
import { collectSnapshot, jobItems, packageViews, peerViews, serviceMetrics } from './site-snapshot.ts';
import { STATUS_PAGE } from './status-page.ts';

const BIND_RETRY_MS = 5000;
/** Browsers, `curl`, Prometheus: a few at a time; the cap keeps a runaway client from piling up streams. */
const MAX_CONNECTIONS = 256;

export function webInfoPath(dataDir: string): string {
  return join(dataDir, 'run', 'web.json');
}

export interface WebInfo {
  readonly url: string;
  readonly pid: number;
}

export class WebServer implements Lifecycle {
  private server: Server | null = null;
  private token: Buffer | null = null;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;
  readonly feed: LiveFeed;

  constructor(private readonly config: Config, private readonly log: Logger) {
    this.feed = new LiveFeed(config, () => collectSnapshot(config), log);
  }

  get port(): number | null {
    return (this.server?.address() as AddressInfo | null)?.port ?? null;
  }

  async start(): Promise<void> {
    const web = this.config.web;
    if (!web.enabled) return;
    // A bad token file must not take the Interface (and so PXE) down: remote clients are refused.
    if (web.tokenFile !== null) {
      try {
        const text = readFileSync(web.tokenFile, 'utf8').trim();
        if (text.length < 16) throw new NetbootError('WEB_TOKEN', 'the token is shorter than 16 characters');
        this.token = Buffer.from(text);
      } catch (err) {
        this.log.error('[web] token_file unusable: clients not on loopback are refused', { file: web.tokenFile, reason: errorMessage(err) });
      }
    }
    this.listen();
  }

  /** A busy port does not take the Interface down: it is logged and tried again. */
  private listen(): void {
    const { bind, port } = this.config.web;
    const server = createServer((req, res) => void this.handle(req, res));
    server.maxConnections = MAX_CONNECTIONS;
    server.once('error', (err) => {
      this.log.error('cannot listen for the metrics and status page; retrying', { err, bind, port, retryMs: BIND_RETRY_MS });
      if (!this.stopped) this.retry = setTimeout(() => this.listen(), BIND_RETRY_MS);
    });
    server.listen(port, bind, () => {
      if (this.stopped) return void server.close();
      this.server = server;
      server.on('error', (err) => this.log.error('web server error', { err }));
      const url = `http://${bind === '0.0.0.0' ? '127.0.0.1' : bind}:${this.port}`;
      try {
        writeFileAtomic(webInfoPath(this.config.paths.data), `${JSON.stringify({ url, pid: process.pid } satisfies WebInfo)}\n`);
      } catch (err) {
        this.log.warn('cannot write run/web.json', { err });
      }
      this.log.info(`metrics and status page on http://${bind}:${this.port}/`, { bind, port: this.port, remote: this.token === null ? 'refused (no [web] token_file)' : 'with the token' });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.feed.stop();
    const server = this.server;
    this.server = null;
    if (server === null) return;
    rmSync(webInfoPath(this.config.paths.data), { force: true });
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Loopback clients; others with the token. */
  private allowed(req: IncomingMessage, url: URL): 'ok' | 'no-token' | 'bad-token' {
    const from = req.socket.remoteAddress ?? '';
    if (isLoopback(from)) return 'ok';
    if (this.token === null) return 'no-token';
    const auth = req.headers.authorization ?? '';
    const given = auth.startsWith('Bearer ') ? auth.slice(7).trim() : (url.searchParams.get('token') ?? '');
    const g = Buffer.from(given);
    return g.length === this.token.length && timingSafeEqual(g, this.token) ? 'ok' : 'bad-token';
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://web');
      const access = this.allowed(req, url);
      if (access !== 'ok') {
        this.log.info('web request refused', { peer: req.socket.remoteAddress, path: url.pathname, reason: access });
        res.writeHead(access === 'no-token' ? 403 : 401, { 'content-type': 'text/plain; charset=utf-8', ...(access === 'bad-token' ? { 'www-authenticate': 'Bearer' } : {}) });
        res.end(access === 'no-token' ? 'only local clients: set [web] token_file for remote access\n' : 'a valid token is needed (Authorization: Bearer, or ?token=)\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      switch (url.pathname) {
        case '/metrics': {
          const text = await this.metrics();
          res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' }).end(text);
          return;
        }
        case '/':
          res.writeHead(200, {
            'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer',
            // Nothing but this document and our own event stream, even if a value in it were hostile.
            'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
          }).end(STATUS_PAGE);
          return;
        case '/snapshot.json':
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(await collectSnapshot(this.config)));
          return;
        case '/events':
          this.feed.subscribe(res);
          return;
        default:
          res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      }
    } catch (err) {
      this.log.error('web request failed', { err });
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${errorMessage(err)}\n`);
    }
  }

  /** Every service's exposition, merged, then what is derived from the Interface's view. */
  async metrics(): Promise<string> {
    const data = this.config.paths.data;
    const status = (service: ServiceName): Promise<Record<string, unknown> | null> => controlCall<Record<string, unknown>>(controlSocketPath(data, service), 'GET', '/status', undefined, 2000).catch(() => null);
    const [parts, packages, peers, jobs, iface, server] = await Promise.all([serviceMetrics(data), packageViews(data), peerViews(data), jobItems(data), status('interface'), status('server')]);
    const feed = (server?.feed ?? null) as { connected?: unknown; seq?: unknown } | null;
    const merged = mergeExpositions(parts.filter((p) => p.text !== null).map((p) => ({ service: p.service, text: p.text! })));
    const derived = await derivedMetrics({ site: this.config.site.id, up: parts.map((p) => ({ service: p.service, up: p.text !== null })), packages, peers, jobs, nowMs: Date.now(),
      feed: { interfaceSeq: typeof iface?.seq === 'number' ? iface.seq : null, serverSeq: typeof feed?.seq === 'number' ? feed.seq : null, connected: typeof feed?.connected === 'boolean' ? feed.connected : null } });
    return `${merged}${derived}`;
  }
}

export function isLoopback(address: string): boolean {
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\./.test(a);
}
