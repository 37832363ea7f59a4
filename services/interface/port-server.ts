// TCP 490: one HTTP server for everything the Interface offers on the network. WebSocket
// upgrades are routed by path (/feed for local processes; peers get their own paths later);
// plain HTTP requests by prefix. The listener owns the socket; routes own their protocol.
// Bounded (issue 16): connections overall and per source address (ConnectionGate), request
// headers by size (MAX_HEADER_BYTES) and by time (a connection that sends no complete request
// head within HEADERS_TIMEOUT_MS is answered 408 and closed); each route bounds its frames (ws
// maxPayload) and the time to its hello.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { errorMessage } from '../../platform/runtime/errors.ts';
import { RateLimitedLog } from '../../platform/runtime/log-limit.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { ConnectionGate, type ConnectionLimits } from '../../platform/trust/connection-gate.ts';

/**
 * `proven()`: the route authenticated the connection (it is then never closed to make room).
 */
export type UpgradeRoute = (req: IncomingMessage, socket: Duplex, head: Buffer, proven?: () => void) => void;

export const MAX_HEADER_BYTES = 16 * 1024;
export const HEADERS_TIMEOUT_MS = 10_000;
const DEFAULT_LIMITS: ConnectionLimits = { maxConnections: 1024, maxConnectionsPerAddress: 64 };
export type HttpRoute = (req: IncomingMessage, res: ServerResponse) => void;

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export class PortServer {
  private server: Server | null = null;
  private readonly upgrades = new Map<string, UpgradeRoute>();
  private readonly routes: Array<[string, HttpRoute]> = [];
  private readonly listening: Array<(port: number) => void> = [];
  private readonly refusals: RateLimitedLog;
  readonly gate: ConnectionGate;

  constructor(private readonly bind: string, private readonly port: number, private readonly log: Logger, limits: Omit<ConnectionLimits, 'keys'> = DEFAULT_LIMITS) {
    this.refusals = new RateLimitedLog(log);
    this.gate = new ConnectionGate({
      maxConnections: limits.maxConnections, maxConnectionsPerAddress: limits.maxConnectionsPerAddress,
      keys: { overall: '[interface] max_connections', perAddress: '[interface] max_connections_per_address' },
    }, this.refusals, 'interface port');
  }

  upgrade(path: string, route: UpgradeRoute): void {
    this.upgrades.set(path, route);
  }

  http(prefix: string, route: HttpRoute): void {
    this.routes.push([prefix, route]);
  }

  /** Called with the bound port once the port listens (e.g. to publish a port the kernel picked). */
  onListening(fn: (port: number) => void): void {
    this.listening.push(fn);
  }

  get boundPort(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a !== null ? a.port : this.port;
  }

  async start(): Promise<void> {
    const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: 300_000, connectionsCheckingInterval: 1000 }, (req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const route = this.routes.find(([prefix]) => path.startsWith(prefix));
      if (route === undefined) {
        res.writeHead(404).end();
        return;
      }
      route[1](req, res);
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', (err) => this.log.debug('upgrade socket error', { err }));
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const route = this.upgrades.get(path);
      if (route === undefined) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      const tcp = req.socket;
      route(req, socket, head, () => this.gate.prove(tcp));
    });
    server.on('connection', (socket: Socket) => void this.gate.admit(socket));
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // A request head too large (431) or too slow (408), or one that does not parse (400).
      const code = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const remote = (socket as Socket).remoteAddress;
      this.refusals.warn('interface port: request refused', { remote, status: code, reason: code === 431 ? `request head larger than ${MAX_HEADER_BYTES} bytes` : code === 408 ? `no complete request head within ${HEADERS_TIMEOUT_MS} ms` : errorMessage(err).slice(0, 80) });
      if (socket.writable) socket.end(`HTTP/1.1 ${code} ${code === 431 ? 'Request Header Fields Too Large' : code === 408 ? 'Request Timeout' : 'Bad Request'}\r\nConnection: close\r\n\r\n`);
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.bind, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.log.info('interface port listening', { bind: this.bind, port: this.boundPort });
    for (const fn of this.listening) fn(this.boundPort);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
