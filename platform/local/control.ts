// Each service's local control socket: HTTP over a Unix socket at <data>/run/<service>.sock.
// Only local processes with file access can reach it. Used by the CLI (status, explain, state),
// by the supervisor, and between services on one host (MTFTP -> server).
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, request, type Agent, type IncomingMessage, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { NetbootError, errorMessage } from '../runtime/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import { METRICS_CONTENT_TYPE, metricsRegistry, metricsText } from '../metrics/registry.ts';

export type ServiceName = 'interface' | 'server' | 'mtftp' | 'signal';
export const SERVICES: readonly ServiceName[] = ['interface', 'server', 'mtftp', 'signal'];

/**
 * What every service's `GET /status` answers (each adds its own fields). `state` is `serving`
 * only once everything the service serves is up: the supervisor starts the next service then.
 */
export interface ServiceStatusBody {
  readonly service: ServiceName;
  readonly pid: number;
  /** The server says `waiting-for-state` until the Interface's state is complete. */
  readonly state: 'starting' | 'waiting-for-state' | 'serving' | 'stopping';
  readonly ports: Readonly<Record<string, number | null>>;
  /**
   * Start-up checks that would fail every request, as one line each (a missing TFTP root, boot
   * files named in the PXE config that are not there): the service runs, and says so here.
   */
  readonly warnings: readonly string[];
}

export function controlSocketPath(dataDir: string, service: ServiceName): string {
  return join(dataDir, 'run', `${service}.sock`);
}

export interface ControlRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly body: unknown;
}

/** A handler returns a JSON-able body (200), or throws HttpError. */
export type ControlHandler = (req: ControlRequest) => unknown | Promise<unknown>;

export class HttpError extends NetbootError {
  constructor(readonly status: number, message: string) {
    super(`HTTP_${status}`, message);
  }
}

export class ControlServer {
  private server: Server | null = null;
  constructor(
    private readonly socketPath: string,
    private readonly routes: Record<string, ControlHandler>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    mkdirSync(dirname(this.socketPath), { recursive: true });
    metricsRegistry(); // process metrics count from here
    rmSync(this.socketPath, { force: true }); // a stale socket from a crashed run
    const server = createServer((req, res) => {
      // Every service's own Prometheus registry, in text (the web server merges them).
      if (req.method === 'GET' && req.url === '/metrics') return void metricsText().then((text) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(text), (err: unknown) => res.writeHead(500).end(errorMessage(err)));
      void this.handle(req).then(({ status, body }) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    this.server = server;
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    try {
      const url = new URL(req.url ?? '/', 'http://local');
      const handler = this.routes[`${req.method} ${url.pathname}`];
      if (handler === undefined) throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = null;
      if (text !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          throw new HttpError(400, 'body is not JSON');
        }
      }
      return { status: 200, body: await handler({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body }) };
    } catch (err) {
      if (err instanceof HttpError) return { status: err.status, body: { error: err.message } };
      this.log.error('control request failed', { err });
      return { status: 500, body: { error: errorMessage(err) } };
    }
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }
}

/** Calls a control socket; throws NetbootError('CONTROL_UNREACHABLE') if nobody listens. */
/** `agent`: a keep-alive agent for callers on a hot path (MTFTP asks the server per boot file). */
export async function controlCall<T>(socketPath: string, method: string, path: string, body?: unknown, timeoutMs = 5000, agent?: Agent): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const req = request({ socketPath, method, path, agent, headers: { 'content-type': 'application/json' }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return reject(new NetbootError('CONTROL_BAD_REPLY', `${socketPath}: reply is not JSON`));
        }
        if ((res.statusCode ?? 500) >= 400) {
          const msg = (parsed as { error?: string }).error ?? `status ${res.statusCode}`;
          return reject(new HttpError(res.statusCode ?? 500, msg));
        }
        resolve(parsed as T);
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(new NetbootError('CONTROL_UNREACHABLE', `${socketPath}: ${errorMessage(err)}`)));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
