// SIGKILL at random points while a replica builds new versions from shared segments, 20 rounds:
// after every kill, what `current` points at verifies completely, and every segment under its
// final name holds exactly the chunks its name lists (a `.part` is the only thing that may be
// incomplete); after the last round the replica finishes and is Ready at the newest version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { currentLink, packagesRoot, segmentsDir } from '../../packages/layout.ts';
import type { ChunkRef } from '../../packages/manifest.ts';
import { PackageStore } from '../../packages/package-store.ts';
import { segmentsOf } from '../../packages/segments.ts';
import { verifyVersion } from '../../packages/verify.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { waitFor } from '../helpers/env.ts';
import { InProcessNode, makeSites, type Site } from './sites.ts';

const MIB = 1024 * 1024;
const RULE = { segments: { minFileBytes: MIB } };
const ROUNDS = 20;

function startReplica(site: Site): { child: ChildProcess; started: Promise<void>; exited: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'segment-node.ts'), site.id, site.configPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  const started = new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('started\n')) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`replica exited before it started (${code ?? signal})`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, started, exited };
}

test('SIGKILL at random points during shared-segment builds: nothing that does not verify is ever in place', { timeout: 600_000 }, async () => {
  // B fetches slowly (2 MiB/s), so a build of the changed segments takes about a second.
  const env = await makeSites(['a', 'b'], { extra: '[packages]\nscrub_interval_ms = 0\n', extraFor: (id) => (id === 'b' ? 'fetch_rate_kib = 2048\n' : '') });
  const [siteA, siteB] = env.sites as [Site, Site];
  const A = await new InProcessNode(siteA, RULE).start();
  const segs = new Map<string, readonly ChunkRef[]>();
  const digests: string[] = [];
  const bRoot = packagesRoot(siteB.config.paths.data);
  let replica: ReturnType<typeof startReplica> | null = null;
  try {
    const src = join(siteA.dir, 'src');
    mkdirSync(src);
    const img = join(src, 'disk.img');
    writeFileSync(img, Buffer.concat([randomBytes(14 * MIB), Buffer.alloc(2 * MIB), randomBytes(8 * MIB)]));
    const publish = async (): Promise<string> => {
      const ref = await A.service.publish(src, 'img', 'image');
      const m = A.service.manifest(ref.digest!)!;
      for (const f of m.files) for (const s of segmentsOf(f.chunks)) segs.set(s.name, s.chunks);
      digests.push(ref.digest!);
      return ref.digest!;
    };
    await publish();

    const check = async (round: number): Promise<void> => {
      // Every segment under its final name is complete and right.
      const dir = segmentsDir(bRoot, 'img');
      for (const name of existsSync(dir) ? readdirSync(dir) : []) {
        if (name.endsWith('.part') || name.startsWith('.')) continue;
        const chunks = segs.get(name);
        assert.ok(chunks !== undefined, `round ${round}: unknown segment ${name}`);
        const data = readFileSync(join(dir, name));
        assert.equal(data.length, chunks.reduce((n, c) => n + c.size, 0), `round ${round}: segment ${name} size`);
        let off = 0;
        for (const c of chunks) {
          assert.equal(createHash('sha256').update(data.subarray(off, off + c.size)).digest('hex'), c.digest, `round ${round}: segment ${name} at ${off}`);
          off += c.size;
        }
      }
      // What `current` points at verifies completely.
      let target: string | null = null;
      try {
        target = readlinkSync(currentLink(bRoot, 'img'));
      } catch {
        target = null;
      }
      if (target === null) return;
      const store = new PackageStore(siteB.config.paths.data, 'b', createMemoryLogger(), {}, RULE);
      try {
        const digest = target.slice('versions/'.length);
        const m = store.manifest(digest);
        assert.ok(m !== null, `round ${round}: current points at ${digest}, whose manifest is not held`);
        const problems = await verifyVersion(join(bRoot, 'img', target), m, undefined, undefined, (f) => store.segmented(m, f));
        assert.deepEqual(problems, [], `round ${round}: the version in service does not verify`);
      } finally {
        store.close();
      }
    };

    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    let readyRounds = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // A new version: three changes of 200-400 KiB at random places.
      const fd = openSync(img, 'r+');
      for (let k = 0; k < 3; k++) writeSync(fd, randomBytes(200 * 1024 + rand(200 * 1024)), 0, undefined, rand(23 * MIB));
      closeSync(fd);
      await publish();
      replica = startReplica(siteB);
      await replica.started;
      await new Promise((r) => setTimeout(r, rand(1500))); // a random point: not an ordering of steps
      replica.child.kill('SIGKILL');
      await replica.exited;
      replica = null;
      await check(round);
      if (existsSync(currentLink(bRoot, 'img')) && readlinkSync(currentLink(bRoot, 'img')) === `versions/${digests.at(-1)}`) readyRounds++;
    }

    // Finally left alone, it finishes at the newest version, which verifies.
    replica = startReplica(siteB);
    await replica.started;
    const newest = digests.at(-1)!;
    await waitFor('B current at the newest version', () => (existsSync(currentLink(bRoot, 'img')) && readlinkSync(currentLink(bRoot, 'img')) === `versions/${newest}` ? true : undefined), 120_000, 50);
    await waitFor('B Ready', () => (A.describe().packages[0]?.statuses.find((s) => s.server === 'b' && s.state === 'ready' && s.digest === newest) ? true : undefined), 60_000, 50);
    replica.child.kill('SIGKILL');
    await replica.exited;
    replica = null;
    await check(ROUNDS);
    assert.ok(readyRounds < ROUNDS, 'some kills landed before a build was done');
  } finally {
    replica?.child.kill('SIGKILL');
    await replica?.exited;
    await A.stop();
    env.cleanup();
  }
});
