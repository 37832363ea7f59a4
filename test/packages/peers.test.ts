// Only configured peers holding the shared key get anything; a peer serving tampered chunks is
// caught by the digests and the chunks are fetched again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { readyPackagePath } from '../../packages/layout.ts';
import { clientProof, httpAuthHeader, newNonce, readKeyFile } from '../../platform/trust/peer-auth.ts';
import { freeTcpPort, waitFor } from '../helpers/env.ts';
import { InProcessNode, makeSites, signedFetch, waitReady } from './sites.ts';

let env: Awaited<ReturnType<typeof makeSites>>;
let A: InProcessNode;
let C: InProcessNode;
let X: InProcessNode;
let proxy: Server;
let tampered = 0;
let src: string;

/** Stands between C and A, passing everything through but flipping a byte in the first chunk batch. */
async function tamperingProxy(port: number, target: number): Promise<Server> {
  const server = createServer((req, res) => {
    const up = request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      if (req.method === 'POST' && req.url === '/pkg/chunks' && tampered === 0) {
        const parts: Buffer[] = [];
        ur.on('data', (d: Buffer) => parts.push(d));
        ur.on('end', () => {
          const body = Buffer.concat(parts);
          if (body.length > 40) {
            body[40] = body[40]! ^ 0xff; // inside the first chunk's data
            tampered++;
          }
          res.writeHead(ur.statusCode ?? 502, ur.headers).end(body);
        });
        return;
      }
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('upgrade', (req, socket, head) => {
    const up = connect(target, '127.0.0.1', () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(lines.join('\r\n') + '\r\n\r\n');
      up.write(head);
      socket.pipe(up).pipe(socket);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

before(async () => {
  // Picked, not 0: C's config names the proxy's port before the proxy listens.
  const proxyPort = await freeTcpPort();
  env = await makeSites(['a', 'c', 'x'], {
    extra: '[packages]\nscrub_interval_ms = 0\n',
    peersOf: (id) => (id === 'a' ? ['c'] : id === 'c' ? ['a'] : ['a']),
    address: (from, to, port) => (from === 'c' && to === 'a' ? `127.0.0.1:${proxyPort}` : `127.0.0.1:${port}`),
  });
  // x is configured with A as a peer, but its key is not the one A holds.
  const xSite = env.sites[2]!;
  const wrongKey = join(xSite.dir, 'wrong.key');
  writeFileSync(wrongKey, randomBytes(32).toString('hex'), { mode: 0o600 });
  writeFileSync(xSite.configPath, readFileSync(xSite.configPath, 'utf8').replace(`key_file = "${env.keyFile}"`, `key_file = "${wrongKey}"`));
  xSite.config = (await import('../../platform/runtime/config.ts')).loadConfig(xSite.configPath);
  [A, C, X] = (await Promise.all(env.sites.map((s) => new InProcessNode(s).start()))) as [InProcessNode, InProcessNode, InProcessNode];
  proxy = await tamperingProxy(proxyPort, env.sites[0]!.config.interface.port);
  src = join(env.sites[0]!.dir, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'preboot.wim'), randomBytes(1024 * 1024));
});

after(async () => {
  await Promise.all([A, C, X].map((n) => n?.stop()));
  proxy?.closeAllConnections();
  proxy?.close();
  env?.cleanup();
});

test('a peer serving a tampered chunk: rejected, logged, fetched again, and the copy is right', async () => {
  await waitFor('C linked to A through the proxy', () => C.describe().links.every((l) => l.connected) || undefined);
  const ref = await A.service.publish(src, 'winpe', 'preboot');
  await waitReady(C, 'winpe', ref.digest!);
  assert.equal(tampered, 1);
  const rejected = C.logged('rejected a chunk that does not match its digest; fetching it elsewhere');
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0]!.peer, 'a');
  assert.deepEqual(readFileSync(join(readyPackagePath(C.site.config.paths.data, 'winpe')!, 'preboot.wim')), readFileSync(join(src, 'preboot.wim')));
});

test('HTTP requests without a valid signature are refused and logged', async () => {
  const port = env.sites[0]!.config.interface.port;
  const key = readKeyFile(env.keyFile);
  const refused = (): number => A.logged('package request refused').length;
  const before = refused();
  assert.equal((await fetch(`http://127.0.0.1:${port}/pkg/refs`)).status, 401);
  assert.equal((await fetch(`http://127.0.0.1:${port}/pkg/refs`, { headers: { authorization: httpAuthHeader(randomBytes(32), 'c', 'GET', '/pkg/refs') } })).status, 401);
  assert.equal((await fetch(`http://127.0.0.1:${port}/pkg/refs`, { headers: { authorization: httpAuthHeader(key, 'stranger', 'GET', '/pkg/refs') } })).status, 401);
  assert.equal((await fetch(`http://127.0.0.1:${port}/pkg/refs/winpe`, { headers: { authorization: httpAuthHeader(key, 'c', 'GET', '/pkg/refs') } })).status, 401, 'signed for another path');
  const header = httpAuthHeader(key, 'c', 'GET', '/pkg/refs');
  assert.equal((await fetch(`http://127.0.0.1:${port}/pkg/refs`, { headers: { authorization: header } })).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${port}/pkg/refs`, { headers: { authorization: header } })).status, 401, 'a replayed request');
  const reasons = A.logged('package request refused').slice(before).map((r) => r.reason);
  assert.deepEqual(reasons, ['missing or malformed authorization', 'bad request MAC from c', 'unknown peer stranger', 'bad request MAC from c', 'replayed request']);
  assert.equal((await signedFetch(port, '/pkg/refs', 'c', env.keyFile)).status, 200);
});

test('a feed subscriber with the wrong key is refused, and a misconfigured server gets nothing', async () => {
  const port = env.sites[0]!.config.interface.port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/pkg-feed`);
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  const challenge = await new Promise<{ nonce: string; serverId: string }>((resolve) => ws.once('message', (d) => resolve(JSON.parse(d.toString()))));
  assert.equal(challenge.serverId, 'a');
  const nonce = newNonce();
  ws.send(JSON.stringify({ type: 'hello', peerId: 'c', nonce, proof: clientProof(randomBytes(32), 'c', 'a', challenge.nonce, nonce) }));
  assert.equal(await closed, 4401);
  await waitFor('A logged the refusal', () => A.logged('package feed: peer refused').find((r) => r.peer === 'c' && r.reason === 'wrong key (proof does not verify)'));
  // X holds the wrong key: A refuses it, and X never learns of A's package.
  await waitFor('A refused x', () => A.logged('package feed: peer refused').find((r) => r.peer === 'x'));
  assert.equal(X.describe().links[0]!.connected, false);
  assert.deepEqual(X.describe().packages, []);
  assert.equal(A.describe().packages.find((p) => p.ref.package === 'winpe')!.statuses.some((s) => s.server === 'x'), false);
});
