// A replica killed with SIGKILL in the middle of a sync resumes after a restart without fetching
// again what it had already written (real `netboot run interface` processes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { stagingDir, packagesRoot } from '../../packages/layout.ts';
import { waitFor } from '../helpers/env.ts';
import { spawnService, type ServiceProcess } from '../helpers/process.ts';
import { fetchManifest, makeSites, type Described, type Site } from './sites.ts';

const control = (s: Site, path: string, body?: unknown): Promise<unknown> =>
  controlCall(controlSocketPath(s.config.paths.data, 'interface'), body === undefined ? 'GET' : 'POST', path, body);
const describe = async (s: Site): Promise<Described> => (await control(s, '/packages')) as Described;
const statusOn = async (s: Site, pkg: string) => (await describe(s)).packages.find((p) => p.ref.package === pkg)?.statuses.find((x) => x.server === s.id) ?? null;

async function started(s: Site): Promise<ServiceProcess> {
  const p = spawnService(['interface'], s.configPath);
  await waitFor(`${s.id} serving packages`, async () => (await control(s, '/packages').catch(() => undefined)) !== undefined || undefined, 20_000, 50);
  return p;
}

test('SIGKILL mid-sync: after a restart the replica keeps what it had and fetches only the rest', { timeout: 90_000 }, async (t) => {
  // B fetches at 3 MiB/s, so a 12 MiB package takes about four seconds: time to kill it halfway.
  const env = await makeSites(['a', 'b'], { extra: '[packages]\nscrub_interval_ms = 0\n', extraFor: (id) => (id === 'b' ? 'fetch_rate_kib = 3072\n' : '') });
  const [A, B] = env.sites as [Site, Site];
  const procs: ServiceProcess[] = [];
  try {
    procs.push(await started(A));
    let b1 = await started(B);
    procs.push(b1);
    const src = join(A.dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'install.wim'), randomBytes(12 * 1024 * 1024));
    const { job } = (await control(A, '/packages/publish', { dir: src, id: 'wim', kind: 'image' })) as { job: string };
    const done = await waitFor('publish done', async () => {
      const j = (await control(A, `/packages/jobs?id=${job}`)) as { state: string; ref?: { digest: string } };
      return j.state === 'running' ? undefined : j;
    });
    assert.equal(done.state, 'done');
    const digest = done.ref!.digest;
    const total = (await waitFor('B syncing', async () => {
      const s = await statusOn(B, 'wim');
      return s?.state === 'syncing' && s.chunksTotal > 0 && s.chunksDone >= s.chunksTotal / 3 ? s : undefined;
    }, 20_000, 25)).chunksTotal;
    b1.child.kill('SIGKILL');
    await b1.exited;

    // What B has on disk, checked independently against the manifest (fetched as a peer would).
    const manifest = await fetchManifest(A.config.interface.port, digest, 'b', env.keyFile);
    const staged = join(stagingDir(packagesRoot(B.config.paths.data), 'wim', digest), 'install.wim');
    assert.ok(existsSync(staged), 'the partial copy is kept for the restart');
    const fd = openSync(staged, 'r');
    let kept = 0;
    let off = 0;
    for (const c of manifest.files[0]!.chunks) {
      const buf = Buffer.alloc(c.size);
      readSync(fd, buf, 0, c.size, off);
      if (createHash('sha256').update(buf).digest('hex') === c.digest) kept++;
      off += c.size;
    }
    closeSync(fd);
    assert.ok(kept > 0 && kept < total, `B had ${kept} of ${total} chunks when killed`);
    const servedBefore = (await describe(A)).served.b?.chunks ?? 0;

    b1 = await started(B);
    procs.push(b1);
    await waitFor('B Ready after the restart', async () => {
      const s = await statusOn(B, 'wim');
      return s?.state === 'ready' && s.digest === digest ? s : undefined;
    }, 30_000, 50);
    const servedAfter = (await describe(A)).served.b!.chunks - servedBefore;
    t.diagnostic(`killed with ${kept}/${total} chunks on disk; fetched ${servedAfter} after the restart`);
    assert.ok(servedAfter <= total - kept, `fetched ${servedAfter} chunks after the restart; ${total - kept} were missing`);
    assert.ok(servedAfter >= 1);
    const ready = b1.logs.find((l) => l.msg === 'package ready')!;
    assert.ok((ready.verifiedChunks as number) >= kept, 'the chunks already on disk were verified and kept');
    const dir = (await describe(B)).packages[0]!.path!;
    assert.deepEqual(readFileSync(join(dir, 'install.wim')), readFileSync(join(src, 'install.wim')));
  } finally {
    for (const p of procs) await p.kill('SIGKILL');
    env.cleanup();
  }
});
