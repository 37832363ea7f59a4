// A stand-in for the management server (outside the product), speaking real HTTP on loopback.
// It records every request and answers with whatever the test sets.
import { createServer, type Server } from 'node:http';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly body: unknown;
}

export interface Answer {
  readonly status: number;
  readonly body: string;
}

export class ManagementStandIn {
  readonly requests: RecordedRequest[] = [];
  /** The answer to GET /pxe/startup. */
  startup: () => Answer | Promise<Answer> = () => ({ status: 200, body: JSON.stringify(validStartupAnswer()) });
  register: () => Answer = () => ({ status: 200, body: '{}' });
  private server: Server | null = null;

  /** `port` 0 (the usual): the kernel picks one at start(), and `port` then says which. */
  constructor(private wanted = 0) {}

  get port(): number {
    return this.wanted;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  count(method: string, path: string): number {
    return this.requests.filter((r) => r.method === method && r.path === path).length;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', this.url);
        const text = Buffer.concat(chunks).toString('utf8');
        this.requests.push({ method: req.method ?? '', path: url.pathname, query: url.searchParams, body: text === '' ? null : JSON.parse(text) });
        const route = `${req.method} ${url.pathname}`;
        const answer = route === 'GET /pxe/startup' ? this.startup() : route === 'POST /pxe/register' ? this.register() : { status: 404, body: '{"error":"no route"}' };
        void Promise.resolve(answer).then((a) => {
          res.writeHead(a.status, { 'content-type': 'application/json' });
          res.end(a.body);
        });
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.wanted, '127.0.0.1', () => resolve());
    });
    this.wanted = (server.address() as { port: number }).port; // a restart keeps the port
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export function validStartupAnswer(): Record<string, unknown> {
  return {
    config: { respond: 'all', unknown: { type: 'local' }, responseDelayMs: 0, bootFiles: { bios: 'undionly.kpxe', 'efi-x64': 'ipxe.efi' } },
    clients: [
      { mac: '52-54-00-12-34-56', name: 'LAB-PC-01', action: { type: 'boot', image: 'linuxpe-x64', once: true } },
      { mac: '52:54:00:AB:CD:EF', action: { type: 'local' } },
    ],
    images: [{ id: 'linuxpe-x64', name: 'Linux (x64)', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img'], cmdline: 'console=ttyS0' }],
    predefinedComputers: [{ mac: '52:54:00:00:00:01', name: 'NEW-PC' }],
  };
}
