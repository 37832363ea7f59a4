// A damaged copy is never served: with watching off, the first request for a corrupted chunk
// is refused (and triggers the repair); the scrub finds damage nobody asked about; `verify`
// finds it on demand.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { readyPackagePath } from '../../packages/layout.ts';
import { waitFor } from '../helpers/env.ts';
import { InProcessNode, makeSites, signedFetch, waitReady } from './sites.ts';

let env: Awaited<ReturnType<typeof makeSites>>;
let A: InProcessNode;
let B: InProcessNode;
let C: InProcessNode;
let src: string;

before(async () => {
  // Nothing watches; only C scrubs (B must meet its damage through a request).
  env = await makeSites(['a', 'b', 'c'], {
    extra: '[packages]\nwatch = false\n',
    extraFor: (id) => (id === 'c' ? 'scrub_interval_ms = 300\nscrub_rate_mib = 200\n' : 'scrub_interval_ms = 0\n'),
  });
  [A, B, C] = (await Promise.all(env.sites.map((s) => new InProcessNode(s).start()))) as [InProcessNode, InProcessNode, InProcessNode];
  src = join(env.sites[0]!.dir, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'big.bin'), randomBytes(2 * 1024 * 1024));
  writeFileSync(join(src, 'small.txt'), 'small file\n');
  await waitFor('links up', () => [A, B, C].every((n) => n.describe().links.every((l) => l.connected)) || undefined);
  const ref = await A.service.publish(src, 'drv', 'driver');
  await Promise.all([waitReady(B, 'drv', ref.digest!), waitReady(C, 'drv', ref.digest!)]);
});

after(async () => {
  await Promise.all([A, B, C].map((n) => n?.stop()));
  env?.cleanup();
});

/** Flips one byte of a file in place, as a failing disk would. */
function corrupt(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, offset);
  b[0] = b[0]! ^ 0xff;
  writeSync(fd, b, 0, 1, offset);
  closeSync(fd);
}

test('a corrupted chunk is never served: the request is refused and the file repaired', async () => {
  const digest = B.status('drv')!.digest!;
  const m = B.service.manifest(digest)!;
  const big = m.files.find((f) => f.path === 'big.bin')!;
  const chunk = big.chunks[3]!;
  const offset = big.chunks.slice(0, 3).reduce((n, c) => n + c.size, 0);
  corrupt(join(readyPackagePath(B.site.config.paths.data, 'drv')!, 'big.bin'), offset + 10);
  const res = await signedFetch(B.site.config.interface.port, `/pkg/chunks/${chunk.digest}`, 'a', env.keyFile);
  await res.arrayBuffer();
  assert.equal(res.status, 404, 'with nothing watching, the first request meets the damage and is refused');
  await waitFor('B repaired drv', () => (B.status('drv')?.state === 'ready' && readyPackagePath(B.site.config.paths.data, 'drv') !== null ? true : undefined));
  assert.deepEqual(readFileSync(join(readyPackagePath(B.site.config.paths.data, 'drv')!, 'big.bin')), readFileSync(join(src, 'big.bin')));
  const again = await signedFetch(B.site.config.interface.port, `/pkg/chunks/${chunk.digest}`, 'a', env.keyFile);
  assert.equal(again.status, 200);
  assert.equal(again.headers.get('etag'), `"${chunk.digest}"`);
  assert.equal(again.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.equal(createHash('sha256').update(Buffer.from(await again.arrayBuffer())).digest('hex'), chunk.digest);
  const ranged = await signedFetch(B.site.config.interface.port, `/pkg/chunks/${chunk.digest}`, 'a', env.keyFile, { headers: { range: 'bytes=10-19' } });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers.get('content-range'), `bytes 10-19/${chunk.size}`);
  assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), readFileSync(join(src, 'big.bin')).subarray(offset + 10, offset + 20));
});

test('the scrub finds damage nobody asked about and repairs it', async () => {
  const dir = readyPackagePath(C.site.config.paths.data, 'drv')!;
  const repairs = C.logged('package repaired').length;
  corrupt(join(dir, 'small.txt'), 3);
  await waitFor('scrub repaired small.txt', () => (C.logged('package repaired').length > repairs && C.status('drv')?.state === 'ready' ? true : undefined), 10_000);
  assert.match(String(C.logged('package file damaged; repairing it').at(-1)!.reason), /^scrub: /);
  assert.equal(readFileSync(join(readyPackagePath(C.site.config.paths.data, 'drv')!, 'small.txt'), 'utf8'), 'small file\n');
});

test('verify re-hashes everything on demand and repairs what it finds', async () => {
  const clean = (await B.service.verify({ id: 'drv' })) as { problems: unknown[]; files: number };
  assert.deepEqual(clean.problems, []);
  assert.equal(clean.files, 2);
  corrupt(join(readyPackagePath(B.site.config.paths.data, 'drv')!, 'big.bin'), 1_500_000);
  const found = (await B.service.verify({ id: 'drv' })) as { problems: Array<{ path: string; reason: string }>; repairing: boolean };
  assert.equal(found.problems.length, 1);
  assert.equal(found.problems[0]!.path, 'big.bin');
  assert.match(found.problems[0]!.reason, /^1 chunk\(s\) do not match their digest/);
  assert.equal(found.repairing, true);
  await waitFor('B repaired drv', () => (B.status('drv')?.state === 'ready' && readyPackagePath(B.site.config.paths.data, 'drv') !== null ? true : undefined));
  assert.deepEqual(((await B.service.verify({ id: 'drv' })) as { problems: unknown[] }).problems, []);
});
