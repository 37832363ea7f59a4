// `netboot image import|export` through a running Interface's control socket: a raw disk file
// imported into a disk image package and exported back (same partition table, same files); a
// missing package fails clearly; an imaging agent's job secret reads its own job's package on the
// package routes and is refused (403) for another, while peers' signed requests go on working.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import type { InterfaceService } from '../../services/interface/interface-service.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { inProcess } from '../cli/cli-run.ts';
import { signedFetch } from '../packages/sites.ts';
import { makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';
import { extCat, gptDisk, makeTree, MiB, sha, sh, type GptDisk } from './disks.ts';

const MAC = '52:54:00:12:34:57';
const JOB = 'a1b2c3d4-0000-4000-8000-0000000000e1';

let site: TestSite;
let svc: InterfaceService;
let src: GptDisk;
let hashes: Map<string, string>;
let cfg: string[];
let keyDir: string;
let keyFile: string;

before(async () => {
  keyDir = mkdtempSync(join(tmpdir(), 'imagecli-key-'));
  keyFile = join(keyDir, 'site.key');
  writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  site = await makeTestSite(`[interface]\nsettle_ms = 10\n[site]\nkey_file = "${keyFile}"\n[[peers]]\nid = "site-b"\naddress = "127.0.0.1:9"\n`, 'imagecli');
  hashes = makeTree(join(site.dir, 'tree'), 12, 300 * 1024);
  src = gptDisk(join(site.dir, 'vm.img'), 48 * MiB, join(site.dir, 'tree'));
  svc = buildInterface(site.config, createMemoryLogger());
  await svc.start();
  cfg = ['--config', site.configPath];
});

after(async () => {
  await svc.stop();
  site.cleanup();
  rmSync(keyDir, { recursive: true, force: true });
});

const run = (args: string[]) => inProcess([...args, ...cfg]);

test('netboot image import, then export: the same partition table and files, in a sparse file', async () => {
  const imp = await run(['image', 'import', src.path, '--id', 'lab-gold']);
  assert.equal(imp.code, 0, imp.stderr);
  const m = /^imported .* as lab-gold seq 1 sha256:([0-9a-f]{64}): a 48\.0 MiB disk, 512-byte sectors \(GPT header at byte 512\), /.exec(imp.stdout);
  assert.ok(m !== null, imp.stdout);
  const out = join(site.dir, 'export.img');
  const exp = await run(['image', 'export', `lab-gold@sha256:${m[1]}`, out]);
  assert.equal(exp.code, 0, exp.stderr);
  assert.match(exp.stdout, new RegExp(`^exported lab-gold sha256:${m[1]} to `));
  assert.equal(statSync(out).size, 48 * MiB);
  assert.ok(statSync(out).blocks * 512 < 48 * MiB, 'the export is sparse');
  assert.equal(sh('sfdisk', ['-d', out]).replace(/export\.img/g, 'X'), sh('sfdisk', ['-d', src.path]).replace(/vm\.img/g, 'X'));
  for (const [name, h] of hashes) assert.equal(sha(extCat(out, src.rootStart, name)), h, name);
  // The current version by default; a second import of the same disk stores nothing new.
  const again = await run(['image', 'import', src.path, '--id', 'lab-gold', '--sector-bytes', '512']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, / seq 2 .*, 512-byte sectors \(given\), .*, 0\.0 MiB new stored \(0 of \d+ chunks\)/);
  const cur = await run(['image', 'export', 'lab-gold', join(site.dir, 'current.img')]);
  assert.equal(cur.code, 0, cur.stderr);
});

test('netboot image export of a missing package, version or file fails clearly (exit 1, nothing written)', async () => {
  const missing = await run(['image', 'export', 'no-such-image', join(site.dir, 'x.img')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^netboot image export: no package no-such-image\n$/);
  const version = await run(['image', 'export', `lab-gold@${'0'.repeat(64)}`, join(site.dir, 'y.img')]);
  assert.equal(version.code, 1);
  assert.match(version.stderr, /^netboot image export: package lab-gold version 0{64} is not held here\n$/);
  const badVersion = await run(['image', 'export', 'lab-gold@latest', join(site.dir, 'z.img')]);
  assert.equal(badVersion.code, 1);
  assert.match(badVersion.stderr, /version: a version digest/);
  assert.throws(() => statSync(join(site.dir, 'x.img')));
  const noFile = await run(['image', 'import', join(site.dir, 'absent.img'), '--id', 'other']);
  assert.equal(noFile.code, 1);
  assert.match(noFile.stderr, /^netboot image import: .*ENOENT.*absent\.img/);
  const usage = await run(['image', 'import', src.path]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--id/);
  const sector = await run(['image', 'import', src.path, '--id', 'other', '--sector-bytes', '1024']);
  assert.equal(sector.code, 2);
  assert.match(sector.stderr, /^netboot image import: --sector-bytes is 512 or 4096, not 1024\n/);
});

test('a job secret reads its own job\'s package on the package routes and is refused (403) for another', async () => {
  await run(['image', 'import', src.path, '--id', 'other-image']);
  const sent = await run(['job', 'deploy', '--mac', MAC, '--preboot', 'linuxpe-x64', '--package', 'lab-gold', '--job-id', JOB]);
  assert.equal(sent.code, 0, sent.stderr);
  const secret = await waitFor('the job applied', () => svc.state.state().jobs?.find((j) => j.jobId === JOB)?.secret);
  const base = `http://127.0.0.1:${svc.boundPort}/pkg`;
  const get = (path: string, auth = `Bearer ${secret}`, init: RequestInit = {}) => fetch(`${base}${path}`, { ...init, headers: { authorization: auth, ...(init.headers ?? {}) } });

  const ref = await get('/refs/lab-gold');
  assert.equal(ref.status, 200);
  const { digest } = (await ref.json()) as { digest: string };
  const manifest = await get(`/manifests/${digest}`);
  assert.equal(manifest.status, 200);
  const files = ((await manifest.json()) as { files: Array<{ path: string; chunks?: Array<{ digest: string }> }> }).files;
  const chunk = files.find((f) => f.chunks !== undefined && f.chunks.length > 0)!.chunks![0]!.digest;
  assert.equal((await get(`/chunks/${chunk}`)).status, 200);
  const batch = await get('/chunks', `Bearer ${secret}`, { method: 'POST', body: JSON.stringify({ digests: [chunk] }), headers: { 'content-type': 'application/json' } });
  assert.equal(batch.status, 200);
  await batch.arrayBuffer();

  const otherRef = await get('/refs/other-image');
  assert.equal(otherRef.status, 403);
  assert.match(((await otherRef.json()) as { error: string }).error, /may not read package other-image/);
  const described = await controlCall<{ packages: Array<{ ref: { digest: string } }> }>(controlSocketPath(site.config.paths.data, 'interface'), 'GET', '/packages?id=other-image');
  assert.equal((await get(`/manifests/${described.packages[0]!.ref.digest}`)).status, 403, 'another package\'s manifest');
  assert.equal((await get('/sources/other-image')).status, 403);
  assert.equal((await get('/refs')).status, 403, 'the list of every package is not an agent\'s');
  assert.equal((await get(`/chunks/${'ab'.repeat(32)}`)).status, 403, 'a chunk no readable package holds');
  assert.equal((await get('/refs/lab-gold', `Bearer ${'0'.repeat(64)}`)).status, 403, 'a secret of no job');
  assert.equal((await get('/refs/lab-gold', 'Bearer nothex')).status, 401, 'neither a secret nor a peer signature');
  // A peer's signed requests read everything, as before.
  assert.equal((await signedFetch(svc.boundPort, '/pkg/refs/other-image', 'site-b', keyFile)).status, 200);
  assert.equal((await signedFetch(svc.boundPort, '/pkg/refs', 'site-b', keyFile)).status, 200);

  // Once the job ended its secret reads nothing.
  assert.ok(svc.jobs.report(secret, null, { kind: 'started' }).ok);
  assert.ok(svc.jobs.report(secret, null, { kind: 'failed', reason: 'test', phase: 'write' }).ok);
  assert.equal((await get('/refs/lab-gold')).status, 403);
});
