// Driver package Ready → rebuilt preboot Ready, on the owner and on a replica: two sites in this
// process (as test/bootwiz/driver-sites.test.ts runs them); A builds linuxpe-x64 from Debian's
// packages (apt downloads them), then each round publishes a driver package holding vxlan.ko on
// A (Ready → A's new preboot version Ready, → B's) and removes it again (the same, for the
// removal). Times are from the package statuses' own timestamps.
//   node --import tsx bench/preboot/drivers.ts [--runs N]
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../../cli/args.ts';
import { bootwizDir, build, cacheDir } from '../../bootwiz/build.ts';
import { kernelTree } from '../../bootwiz/drivers.ts';
import { LINUXPE_X64 } from '../../bootwiz/recipe.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import type { PackageRef, PackageStatus } from '../../packages/model.ts';
import { buildInterface } from '../../services/interface/main.ts';
import type { InterfaceService } from '../../services/interface/interface-service.ts';
import { waitFor } from '../../test/helpers/env.ts';
import { makeSites, type Site } from '../../test/packages/sites.ts';

const ID = LINUXPE_X64.id;
const DRIVER = 'bench-vxlan';

async function state(site: Site, id: string): Promise<{ ref: PackageRef; status: PackageStatus | undefined } | null> {
  try {
    const d = await controlCall<{ packages: Array<{ ref: PackageRef; statuses: PackageStatus[] }> }>(controlSocketPath(site.config.paths.data, 'interface'), 'GET', `/packages?id=${id}`);
    const p = d.packages[0];
    return p === undefined ? null : { ref: p.ref, status: p.statuses.find((s) => s.server === site.id) };
  } catch {
    return null;
  }
}

async function readyAbove(site: Site, id: string, above: number): Promise<PackageStatus> {
  return waitFor(`${id} above ${above} on ${site.id}`, async () => {
    const p = await state(site, id);
    return p !== null && p.ref.digest !== null && p.ref.seq > above && p.status?.state === 'ready' && p.status.seq === p.ref.seq ? p.status : undefined;
  }, 300_000, 25);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const runs = Number((args.flags.get('runs') as string | undefined) ?? '3');
  const { sites, cleanup } = await makeSites(['a', 'b']);
  const [a, b] = sites as [Site, Site];
  const work = mkdtempSync(join(tmpdir(), 'bench-drivers-'));
  const services: InterfaceService[] = [];
  const rows: Record<string, number[]> = { 'publish: owner': [], 'publish: replica': [], 'remove: owner': [], 'remove: replica': [] };
  try {
    const base = await build({ dataDir: a.config.paths.data, recipe: LINUXPE_X64 });
    for (const s of [a, b]) {
      const svc = buildInterface(s.config, createMemoryLogger());
      services.push(svc);
      await svc.start();
    }
    let seq = (await readyAbove(a, ID, 0)).seq;
    const tree = await kernelTree(bootwizDir(a.config.paths.data), cacheDir(a.config.paths.data), JSON.parse(readFileSync(join(base.dir, 'lock.json'), 'utf8')).packages.kernel);
    const drv = join(work, 'vxlan');
    mkdirSync(drv);
    copyFileSync(join(tree, 'lib', 'modules', base.info.kernelVersion, 'kernel', 'drivers', 'net', 'vxlan', 'vxlan.ko'), join(drv, 'vxlan.ko'));
    writeFileSync(join(drv, 'driver.json'), JSON.stringify({ os: 'linux', arch: 'x64', description: 'bench' }));
    const socket = controlSocketPath(a.config.paths.data, 'interface');
    for (let i = 0; i < runs; i++) {
      const before = (await state(a, DRIVER))?.ref.seq ?? 0;
      await controlCall(socket, 'POST', '/packages/publish', { dir: drv, id: DRIVER, kind: 'driver' });
      const ready = await readyAbove(a, DRIVER, before);
      const pa = await readyAbove(a, ID, seq);
      const pb = await readyAbove(b, ID, seq);
      seq = pa.seq;
      rows['publish: owner']!.push(Date.parse(pa.updatedAt) - Date.parse(ready.updatedAt));
      rows['publish: replica']!.push(Date.parse(pb.updatedAt) - Date.parse(ready.updatedAt));
      await controlCall(socket, 'POST', '/packages/rm', { id: DRIVER });
      const gone = await waitFor('the driver removed', async () => { const p = await state(a, DRIVER); return p?.ref.digest === null && p.status?.state !== 'ready' ? p.ref.updatedAt : undefined; }, 60_000, 25);
      const ra = await readyAbove(a, ID, seq);
      const rb = await readyAbove(b, ID, seq);
      seq = ra.seq;
      rows['remove: owner']!.push(Date.parse(ra.updatedAt) - Date.parse(gone));
      rows['remove: replica']!.push(Date.parse(rb.updatedAt) - Date.parse(gone));
      // A changed overlay each round: the driver's bytes differ, so the preboot does too.
      writeFileSync(join(drv, 'note.txt'), `round ${i}\n`);
    }
    console.log(`| driver change → preboot Ready (${runs} runs) | median s | min | max |\n| --- | --- | --- | --- |`);
    for (const [k, v] of Object.entries(rows)) console.log(`| ${k} | ${(median(v) / 1000).toFixed(1)} | ${(Math.min(...v) / 1000).toFixed(1)} | ${(Math.max(...v) / 1000).toFixed(1)} |`);
  } finally {
    for (const svc of services) await svc.stop();
    rmSync(work, { recursive: true, force: true });
    cleanup();
  }
}

await main();
