// The bench's chunk API stand-in (http-chunks.ts) as its own process, as the site server is: the
// deploy or capture measured does not share its event loop or its core with the server. Prints
// the port on its first line; GET /stats answers the bytes received and sent so far.
// Run: node --import tsx bench/imaging/serve.ts DIR [HOST]   (HOST: the address to listen on, default 127.0.0.1)
import { BenchServer } from './http-chunks.ts';

const server = new BenchServer(process.argv[2]!);
await server.start(process.argv[3]);
process.stdout.write(`${server.port}\n`);
process.on('SIGTERM', () => {
  void server.stop().then(() => process.exit(0));
});
