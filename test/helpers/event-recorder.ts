// A management-server stand-in that only records the outbox's events (POST /pxe/events) and
// answers 200: for tests of the Interface's jobs and the imaging agent, over real HTTP on loopback.
import { createServer, type Server } from 'node:http';

export interface Mgmt {
  readonly url: string;
  readonly events: Array<Record<string, unknown>>;
  close(): void;
}

export async function management(): Promise<Mgmt> {
  const events: Array<Record<string, unknown>> = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.url === '/pxe/events') events.push(...(JSON.parse(body) as { events: Array<Record<string, unknown>> }).events);
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, events, close: () => { server.closeAllConnections(); server.close(); } };
}
