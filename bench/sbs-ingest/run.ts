// bench/sbs-ingest: how fast a dropped SBS file reaches the PXE server's state feed.
//   node --import tsx bench/sbs-ingest/run.ts [--singles N] [--burst N]
// Runs the Interface as its own process (bin/netboot run interface) on a temp site, subscribes to
// its feed like the PXE server does, and prints drop-to-subscriber latency p50/p99 for single
// files and files/s for a burst. Targets: p99 < 100 ms; burst >= 2,000 files/s.
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../platform/runtime/atomic-file.ts';
import { parseArgs } from '../../cli/args.ts';
import { makeTestSite, waitFor } from '../../test/helpers/env.ts';
import { FeedClient } from '../../test/helpers/feed-client.ts';
import { spawnService } from '../../test/helpers/process.ts';

const args = parseArgs(process.argv.slice(2));
const SINGLES = Number(args.flags.get('singles') ?? 200);
const BURST = Number(args.flags.get('burst') ?? 10_000);

const site = await makeTestSite('[log]\nlevel = "warn"\n', 'netboot-bench');
const proc = spawnService(['interface'], site.configPath);
const sbs = site.config.paths.sbs;
mkdirSync(sbs, { recursive: true });
let n = 0;
const doc = (mac: string) => JSON.stringify({ sbs: 1, id: `bbbbbbbb-cccc-4ddd-8eee-${String(++n).padStart(12, '0')}`, kind: 'client', issued: new Date(Date.UTC(2026, 0, 1) + n).toISOString(), client: { mac, action: { type: 'boot', image: 'img', once: true } } });
const macOf = (i: number) => `02:00:${[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

try {
  const feed = await waitFor('the interface', async () => {
    try {
      return await FeedClient.connect(site.config.interface.port, site.config.paths.data);
    } catch {
      return undefined;
    }
  }, 20_000, 50);
  feed.send({ type: 'subscribe' });
  await feed.next('snapshot');
  const puts = (): number => feed.messages.filter((m) => m.type === 'change').length;

  // Singles: one file at a time, timed from the rename into place to the change on the feed.
  const latencies: number[] = [];
  for (let i = 0; i < SINGLES; i++) {
    const before = puts();
    const t0 = process.hrtime.bigint();
    writeFileAtomic(join(sbs, `single-${i}.sbs`), doc(macOf(i)));
    await waitFor('the change', () => (puts() > before ? true : undefined), 10_000, 1);
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await new Promise((r) => setTimeout(r, 5));
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(1);

  // Burst: BURST files prepared beside the folder, then renamed in as fast as possible (as a
  // task server handing over a roll-out would); timed until the last change reaches the feed.
  const staging = join(site.dir, 'staging');
  mkdirSync(staging);
  for (let i = 0; i < BURST; i++) writeFileSync(join(staging, `burst-${i}.sbs`), doc(macOf(1_000_000 + i)));
  const before = puts();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < BURST; i++) renameSync(join(staging, `burst-${i}.sbs`), join(sbs, `burst-${i}.sbs`));
  const written = Number(process.hrtime.bigint() - t0) / 1e9;
  await waitFor('the burst', () => (puts() - before >= BURST ? true : undefined), 300_000, 5);
  const applied = Number(process.hrtime.bigint() - t0) / 1e9;
  await waitFor('the folder to drain', () => (readdirSync(sbs).length === 0 ? true : undefined), 60_000, 20);
  const archived = Number(process.hrtime.bigint() - t0) / 1e9;

  console.log(`sbs-ingest (Interface as its own process, settle_ms ${site.config.interface.settleMs})`);
  console.log(`  single files (${SINGLES}): drop-to-subscriber p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${latencies.at(-1)!.toFixed(1)} ms   [target p99 < 100 ms]`);
  console.log(`  burst of ${BURST}: renamed in within ${written.toFixed(2)} s; all on the feed after ${applied.toFixed(2)} s = ${(BURST / applied).toFixed(0)} files/s; folder drained after ${archived.toFixed(2)} s   [target >= 2000 files/s]`);
  feed.close();
} finally {
  await proc.kill('SIGTERM');
  site.cleanup();
}
