// bench/peer-jobs: 50 job instructions dropped on A with replicateTo B and C; how long until all
// are applied on both, and the per-instruction latency (drop on A -> applied on the peer).
//   node --import tsx bench/peer-jobs/run.ts [--jobs N]
// Three Interfaces as their own processes (bin/netboot run interface) on loopback. "Applied on B"
// is the moment B's state feed publishes the change, which B does only after its commit.
// Target: all applied < 1 s. (Reference: the suite our users know takes ~36 s per file.)
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from '../../cli/args.ts';
import { freeTcpPort, makeTestSite, waitFor, type TestSite } from '../../test/helpers/env.ts';
import { FeedClient } from '../../test/helpers/feed-client.ts';
import { spawnService, type ServiceProcess } from '../../test/helpers/process.ts';

const JOBS = Number(parseArgs(process.argv.slice(2)).flags.get('jobs') ?? 50);
const ids = ['a', 'b', 'c'];
const ports = new Map<string, number>();
for (const id of ids) ports.set(id, await freeTcpPort());
const sites: TestSite[] = [];
const procs: ServiceProcess[] = [];
const keySite = await makeTestSite('', 'netboot-bench-keys');
const keyFile = join(keySite.dir, 'site.key');
writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });

try {
  for (const id of ids) {
    const peers = ids.filter((p) => p !== id).map((p) => `[[peers]]\nid = "${p}"\naddress = "127.0.0.1:${ports.get(p)}"\n`).join('');
    const site = await makeTestSite(`[log]\nlevel = "warn"\n[site]\nid = "${id}"\nkey_file = "${keyFile}"\n[interface]\nport = ${ports.get(id)}\n${peers}`, `netboot-bench-${id}`);
    mkdirSync(site.config.paths.sbs, { recursive: true });
    sites.push(site);
    procs.push(spawnService(['interface'], site.configPath));
  }
  const feeds = new Map<string, FeedClient>();
  for (const id of ['b', 'c']) {
    const feed = await waitFor(`interface ${id}`, async () => {
      try {
        return await FeedClient.connect(ports.get(id)!, sites[ids.indexOf(id)]!.config.paths.data);
      } catch {
        return undefined;
      }
    }, 20_000, 50);
    feed.send({ type: 'subscribe' });
    await feed.next('snapshot');
    feeds.set(id, feed);
  }
  // Wait until A's links to B and C are authenticated (so we time delivery, not start-up).
  await new Promise((r) => setTimeout(r, 1500));
  const macOf = (i: number) => `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  const staging = join(sites[0]!.dir, 'staging');
  mkdirSync(staging);
  for (let i = 0; i < JOBS; i++) {
    const doc = { sbs: 1, id: `dddddddd-eeee-4fff-8000-${String(i).padStart(12, '0')}`, kind: 'client', issued: new Date(Date.UTC(2026, 10, 22) + i).toISOString(), replicateTo: ['b', 'c'], client: { mac: macOf(i), action: { type: 'boot', image: 'img', once: true } } };
    writeFileSync(join(staging, `job-${i}.sbs`), JSON.stringify(doc));
  }
  const arrivals = new Map<string, Map<string, number>>([['b', new Map()], ['c', new Map()]]);
  for (const [id, feed] of feeds) {
    const seen = arrivals.get(id)!;
    const check = setInterval(() => {
      for (const m of feed.messages.splice(0)) {
        if (m.type === 'change' && m.change.table === 'clients' && m.change.op === 'put' && !seen.has(m.change.client.mac)) seen.set(m.change.client.mac, performance.now());
      }
    }, 1);
    check.unref();
  }
  const dropAt = new Map<string, number>();
  const t0 = performance.now();
  for (let i = 0; i < JOBS; i++) {
    dropAt.set(macOf(i), performance.now());
    renameSync(join(staging, `job-${i}.sbs`), join(sites[0]!.config.paths.sbs, `job-${i}.sbs`));
  }
  await waitFor('all jobs on B and C', () => ([...arrivals.values()].every((m) => m.size >= JOBS) ? true : undefined), 60_000, 1);
  const total = Math.max(...[...arrivals.values()].flatMap((m) => [...m.values()])) - t0;
  const lat = [...arrivals.values()].flatMap((m) => [...m].map(([mac, t]) => t - dropAt.get(mac)!)).sort((x, y) => x - y);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))]!.toFixed(1);
  console.log(`peer-jobs: ${JOBS} jobs dropped on A with replicateTo B and C (three Interface processes, loopback)`);
  console.log(`  all ${JOBS} applied on both B and C after ${total.toFixed(0)} ms   [target < 1000 ms]`);
  console.log(`  per instruction, drop on A -> applied on peer: p50 ${pct(50)} ms, p99 ${pct(99)} ms (includes A's ${sites[0]!.config.interface.settleMs} ms settle time)`);
  for (const f of feeds.values()) f.close();
} finally {
  for (const p of procs) await p.kill('SIGTERM');
  for (const s of sites) s.cleanup();
  keySite.cleanup();
}
