// Three servers replicating packages in-process (real sockets, files and SQLite).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { readyPackagePath } from '../../packages/layout.ts';
import { waitFor } from '../helpers/env.ts';
import { InProcessNode, makeSites, totalServed, waitReady } from './sites.ts';

let env: Awaited<ReturnType<typeof makeSites>>;
let A: InProcessNode;
let B: InProcessNode;
let C: InProcessNode;
let src: string;

function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else out.set(p, createHash('sha256').update(readFileSync(join(dir, p))).digest('hex'));
    }
  };
  walk('');
  return out;
}

function sameTree(n: InProcessNode, expected: Map<string, string>): boolean {
  const dir = readyPackagePath(n.site.config.paths.data, 'win11');
  if (dir === null) return false;
  const got = tree(dir);
  return got.size === expected.size && [...expected].every(([k, v]) => got.get(k) === v);
}

before(async () => {
  env = await makeSites(['a', 'b', 'c'], { extra: '[packages]\nscrub_interval_ms = 0\n' });
  [A, B, C] = (await Promise.all(env.sites.map((s) => new InProcessNode(s).start()))) as [InProcessNode, InProcessNode, InProcessNode];
  src = join(env.sites[0]!.dir, 'src');
  mkdirSync(join(src, 'boot/efi'), { recursive: true });
  writeFileSync(join(src, 'disk.img'), randomBytes(6 * 1024 * 1024));
  writeFileSync(join(src, 'boot/efi/bootx64.efi'), randomBytes(900_000));
  writeFileSync(join(src, 'boot/menu.cfg'), 'menu\n');
  await waitFor('all links up', () => [A, B, C].every((n) => n.describe().links.every((l) => l.connected)) || undefined);
});

after(async () => {
  await Promise.all([A, B, C].map((n) => n?.stop()));
  env?.cleanup();
});

test('publish on A: Ready on B and C with identical files; sources list all three', async () => {
  const ref = await A.service.publish(src, 'win11', 'image');
  assert.equal(ref.owner, 'a');
  await Promise.all([waitReady(B, 'win11', ref.digest!), waitReady(C, 'win11', ref.digest!)]);
  const expected = tree(src);
  for (const n of [A, B, C]) {
    const dir = readyPackagePath(n.site.config.paths.data, 'win11');
    assert.ok(dir !== null, `${n.id} has a ready path`);
    assert.deepEqual(tree(dir), expected, `${n.id} holds the same files`);
  }
  await waitFor('A knows B and C are Ready', () => {
    const s = A.service.sources('win11');
    return s !== null && s.sources.length === 3 ? s : undefined;
  });
  assert.deepEqual(A.service.sources('win11')!.sources.map((s) => s.server).sort(), ['a', 'b', 'c']);
});

test('changing one file: only its changed chunks travel', async () => {
  const before = totalServed([A, B, C]);
  const oldRef = A.describe('win11').packages[0]!.ref;
  const img = readFileSync(join(src, 'disk.img'));
  randomBytes(100_000).copy(img, 3_000_000);
  writeFileSync(join(src, 'disk.img'), img);
  const ref = await A.service.publish(src, 'win11', 'image');
  await Promise.all([waitReady(B, 'win11', ref.digest!), waitReady(C, 'win11', ref.digest!)]);
  for (const n of [B, C]) assert.deepEqual(tree(readyPackagePath(n.site.config.paths.data, 'win11')!), tree(src));
  // What is new in this version, by the manifests: each replica needs at most that, once.
  const oldM = A.service.manifest(oldRef.digest!)!;
  const newM = A.service.manifest(ref.digest!)!;
  const oldDigests = new Set(oldM.files.flatMap((f) => f.chunks.map((c) => c.digest)));
  const fresh = new Map(newM.files.flatMap((f) => f.chunks).filter((c) => !oldDigests.has(c.digest)).map((c) => [c.digest, c.size]));
  const freshBytes = [...fresh.values()].reduce((a, b) => a + b, 0);
  assert.ok(fresh.size >= 1 && freshBytes < 700_000, `${fresh.size} new chunks (${freshBytes} bytes) for a 100 KB change in a 6 MiB file`);
  const after = totalServed([A, B, C]);
  assert.ok(after.chunks - before.chunks <= 2 * fresh.size, `${after.chunks - before.chunks} chunks served for ${fresh.size} new ones`);
  assert.ok(after.bytes - before.bytes <= 2 * freshBytes, `${after.bytes - before.bytes} bytes served for ${freshBytes} new`);
  assert.ok(after.chunks - before.chunks >= fresh.size, 'the new chunks did travel');
});

test('a file deleted at B is noticed and restored', async () => {
  const dir = readyPackagePath(B.site.config.paths.data, 'win11')!;
  const expected = tree(src);
  rmSync(join(dir, 'boot/menu.cfg'));
  rmSync(join(dir, 'disk.img'));
  await waitFor('B restored win11', () => (B.status('win11')?.state === 'ready' && sameTree(B, expected) ? true : undefined), 10_000, 100);
});

test('a chunk corrupted at B is noticed and only it is fetched again', async () => {
  const dir = readyPackagePath(B.site.config.paths.data, 'win11')!;
  const expected = tree(src);
  const before = totalServed([A, C]);
  const fd = openSync(join(dir, 'boot/efi/bootx64.efi'), 'r+');
  writeSync(fd, Buffer.from('garbage'), 0, 7, 500_000);
  closeSync(fd);
  await waitFor('B repaired win11', () => (B.status('win11')?.state === 'ready' && sameTree(B, expected) ? true : undefined), 10_000, 100);
  const after = totalServed([A, C]);
  assert.ok(after.bytes - before.bytes <= 2 * 256 * 1024, `${after.bytes - before.bytes} bytes fetched to repair one chunk`);
  const warned = B.logged('package file damaged; repairing it').at(-1)!;
  assert.equal(warned.path, 'boot/efi/bootx64.efi');
});

test('compressible content travels deflated and free space stays sparse; the copies are exact', async () => {
  const dir = join(env.sites[0]!.dir, 'text');
  mkdirSync(dir);
  writeFileSync(join(dir, 'log.txt'), Buffer.from('boot ok; driver loaded; service started\n'.repeat(50_000)));
  writeFileSync(join(dir, 'free-space.img'), Buffer.concat([randomBytes(100_000), Buffer.alloc(4 * 1024 * 1024), randomBytes(100_000)]));
  const served = () => Object.values(A.describe().served).concat(Object.values(B.describe().served), Object.values(C.describe().served)).reduce((n, c) => ({ bytes: n.bytes + c.bytes, raw: n.raw + c.rawBytes }), { bytes: 0, raw: 0 });
  const before = served();
  const ref = await A.service.publish(dir, 'logs', 'driver');
  await Promise.all([waitReady(B, 'logs', ref.digest!), waitReady(C, 'logs', ref.digest!)]);
  const after = served();
  assert.ok(after.raw - before.raw > 0);
  assert.ok(after.bytes - before.bytes < (after.raw - before.raw) / 2, `sent ${after.bytes - before.bytes} bytes for ${after.raw - before.raw} of chunks`);
  for (const n of [B, C]) {
    const got = readyPackagePath(n.site.config.paths.data, 'logs')!;
    assert.deepEqual(readFileSync(join(got, 'log.txt')), readFileSync(join(dir, 'log.txt')));
    assert.deepEqual(readFileSync(join(got, 'free-space.img')), readFileSync(join(dir, 'free-space.img')));
    assert.ok(statSync(join(got, 'free-space.img')).blocks * 512 < 2 * 1024 * 1024, `${n.id}: the zeros are holes`);
  }
});

test('delete at A: gone at B and C', async () => {
  const tomb = await A.service.remove({ id: 'win11' });
  assert.equal(tomb.digest, null);
  for (const n of [A, B, C]) {
    await waitFor(`win11 absent on ${n.id}`, () => (n.status('win11')?.state === 'absent' ? true : undefined));
    assert.equal(readyPackagePath(n.site.config.paths.data, 'win11'), null);
    assert.ok(!existsSync(join(n.site.config.paths.data, 'packages/win11')), `${n.id} removed the folder`);
  }
});
