// TCP 490: one HTTP server for everything the Interface offers on the network. WebSocket
// upgrades are routed by path (/feed for local processes; peers get their own paths later);
// plain HTTP requests by prefix. The listener owns the socket; routes own their protocol.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../platform/runtime/logger.ts';

export type UpgradeRoute = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
export type HttpRoute = (req: IncomingMessage, res: ServerResponse) => void;

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export class PortServer {
  private server: Server | null = null;
  private readonly upgrades = new Map<string, UpgradeRoute>();
  private readonly routes: Array<[string, HttpRoute]> = [];

  constructor(private readonly bind: string, private readonly port: number, private readonly log: Logger) {}

  upgrade(path: string, route: UpgradeRoute): void {
    this.upgrades.set(path, route);
  }

  http(prefix: string, route: HttpRoute): void {
    this.routes.push([prefix, route]);
  }

  get boundPort(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a !== null ? a.port : this.port;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
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
      route(req, socket, head);
    });
    server.on('clientError', (err, socket) => {
      this.log.debug('bad HTTP request on the interface port', { err });
      socket.destroy();
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
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
