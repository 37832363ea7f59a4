// The management-server stand-in as its own process, so that it can run inside the server's network
// namespace (Signal reaches it at 127.0.0.1 there). Real HTTP. Answers GET /pxe/startup with the
// JSON in ANSWER_FILE (read afresh on every request, so the test can change it), accepts
// POST /pxe/register and POST /pxe/events, and prints every request as one JSON line on stdout.
// Usage: node --import tsx management-stand-in-main.ts PORT ANSWER_FILE
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';

const [portArg, answerFile] = process.argv.slice(2);
if (portArg === undefined || answerFile === undefined) {
  process.stderr.write('usage: management-stand-in-main.ts PORT ANSWER_FILE\n');
  process.exit(2);
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = null;
    try {
      body = text === '' ? null : JSON.parse(text);
    } catch {
      body = { unparsable: text };
    }
    process.stdout.write(JSON.stringify({ request: { method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), body } }) + '\n');
    const route = `${req.method} ${url.pathname}`;
    let status = 200;
    let answer = '{}';
    if (route === 'GET /pxe/startup') answer = readFileSync(answerFile, 'utf8');
    else if (route !== 'POST /pxe/register' && route !== 'POST /pxe/events') [status, answer] = [404, '{"error":"no route"}'];
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(answer);
  });
});
server.listen(Number(portArg), '127.0.0.1', () => process.stdout.write(JSON.stringify({ listening: Number(portArg) }) + '\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
