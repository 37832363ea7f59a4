// Driver packages across two sites, with Debian's real kernel (apt downloads it: part of the
// test's time). Site A built linuxpe-x64 and owns its preboot package; site B replicates it.
// A driver package holding vxlan.ko (from the same kernel package: not in the base set, and it
// needs udp_tunnel and ip6_udp_tunnel, which are not either) published on A makes A rebuild the
// overlay and publish a new preboot version by itself, which becomes Ready on B; the overlay read
// back from B's copy holds the module, its dependencies in load order, the firmware and the
// banner's entry. A driver published on B (replicated into A, the owner) is folded in the same
// way; removing both leaves an overlay without them. Prints driver Ready → preboot Ready on A and
// on B (bench/preboot reports the same numbers). A folder without driver.json is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { bootwizDir, build, cacheDir } from '../../bootwiz/build.ts';
import { kernelTree } from '../../bootwiz/drivers.ts';
import { LINUXPE_X64, OVERLAY_FILE } from '../../bootwiz/recipe.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { buildInterface } from '../../services/interface/main.ts';
import type { InterfaceService } from '../../services/interface/interface-service.ts';
import { readyPackagePath } from '../../packages/layout.ts';
import type { PackageRef, PackageStatus } from '../../packages/model.ts';
import { waitFor } from '../helpers/env.ts';
import { makeSites, type Site } from '../packages/sites.ts';

const ID = LINUXPE_X64.id;

type Described = { packages: Array<{ ref: PackageRef; statuses: PackageStatus[] }> };

async function pkg(site: Site, id: string): Promise<{ ref: PackageRef; status: PackageStatus | undefined } | null> {
  try {
    const d = await controlCall<Described>(controlSocketPath(site.config.paths.data, 'interface'), 'GET', `/packages?id=${id}`);
    const p = d.packages[0];
    return p === undefined ? null : { ref: p.ref, status: p.statuses.find((s) => s.server === site.id) };
  } catch {
    return null;
  }
}

/** Waits until `site` has `id` Ready at a seq above `above`, and returns its status. */
async function readyAbove(site: Site, id: string, above: number): Promise<PackageStatus> {
  return waitFor(`${id} above seq ${above} Ready on ${site.id}`, async () => {
    const p = await pkg(site, id);
    return p !== null && p.ref.digest !== null && p.ref.seq > above && p.status?.state === 'ready' && p.status.seq === p.ref.seq ? p.status : undefined;
  }, 120_000, 25);
}

async function publish(site: Site, dir: string, id: string): Promise<void> {
  const socket = controlSocketPath(site.config.paths.data, 'interface');
  const { job } = await controlCall<{ job: string }>(socket, 'POST', '/packages/publish', { dir, id, kind: 'driver' });
  await waitFor(`publish ${id}`, async () => {
    const j = await controlCall<{ state: string; error?: string }>(socket, 'GET', `/packages/jobs?id=${job}`);
    if (j.state === 'failed') throw new Error(j.error);
    return j.state === 'done' ? true : undefined;
  }, 60_000, 25);
}

async function remove(site: Site, id: string): Promise<void> {
  await controlCall(controlSocketPath(site.config.paths.data, 'interface'), 'POST', '/packages/rm', { id });
}

/** The overlay of `site`'s Ready preboot: files and their text. */
function overlayOf(site: Site): Record<string, Buffer> {
  const dir = readyPackagePath(site.config.paths.data, ID);
  assert.ok(dir !== null, `${ID} is Ready on ${site.id}`);
  const out = mkdtempSync(join(tmpdir(), 'overlay-'));
  try {
    execFileSync('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], { cwd: out, input: gunzipSync(readFileSync(join(dir, OVERLAY_FILE))) });
    const files = execFileSync('find', ['.', '-type', 'f'], { cwd: out, encoding: 'utf8' }).split('\n').filter((l) => l !== '').map((l) => l.slice(2)).sort();
    return Object.fromEntries(files.map((p) => [p, readFileSync(join(out, p))]));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const ms = (a: string, b: string): number => Date.parse(b) - Date.parse(a);

test('a driver package published on A rebuilds A\'s preboot by itself; the new version is Ready on B', { timeout: 900_000 }, async (t) => {
  const { sites, cleanup } = await makeSites(['a', 'b']);
  const [a, b] = sites as [Site, Site];
  const work = mkdtempSync(join(tmpdir(), 'driver-sites-'));
  const services: InterfaceService[] = [];
  try {
    // A's base build (Debian's archive through apt), then both Interfaces.
    const base = await build({ dataDir: a.config.paths.data, recipe: LINUXPE_X64 });
    const kver = base.info.kernelVersion;
    assert.ok(!base.info.modules.includes('vxlan') && !base.info.modules.includes('udp_tunnel'), 'vxlan is not in the base set');
    for (const s of [a, b]) {
      const svc = buildInterface(s.config, createMemoryLogger());
      services.push(svc);
      await svc.start();
    }
    const v1 = await readyAbove(a, ID, 0);
    await readyAbove(b, ID, 0);
    assert.deepEqual(Object.keys(overlayOf(b)), [], 'no drivers yet: an empty overlay');

    // The driver package: vxlan.ko from the same kernel package, and a firmware file.
    const tree = await kernelTree(bootwizDir(a.config.paths.data), cacheDir(a.config.paths.data), JSON.parse(readFileSync(join(base.dir, 'lock.json'), 'utf8')).packages.kernel);
    const drv = join(work, 'vxlan');
    mkdirSync(join(drv, 'firmware', 'netboot-test'), { recursive: true });
    copyFileSync(join(tree, 'lib', 'modules', kver, 'kernel', 'drivers', 'net', 'vxlan', 'vxlan.ko'), join(drv, 'vxlan.ko'));
    writeFileSync(join(drv, 'firmware', 'netboot-test', 'blob.bin'), 'firmware bytes');

    // Without driver.json: refused, saying why.
    await assert.rejects(publish(a, drv, 'netboot-vxlan'), /a driver package needs driver\.json at its top/);
    writeFileSync(join(drv, 'driver.json'), JSON.stringify({ os: 'linux', arch: 'x64', description: 'VXLAN tunnels (test)' }));

    await publish(a, drv, 'netboot-vxlan');
    const drvReady = await readyAbove(a, 'netboot-vxlan', 0);
    const v2a = await readyAbove(a, ID, v1.seq);
    const v2b = await readyAbove(b, ID, v1.seq);
    t.diagnostic(`driver Ready on a → preboot Ready on a ${ms(drvReady.updatedAt, v2a.updatedAt)} ms, on b ${ms(drvReady.updatedAt, v2b.updatedAt)} ms`);
    const files = overlayOf(b);
    const mod = `lib/modules/${kver}`;
    assert.deepEqual(files['etc/bootwiz/modules.d/netboot-vxlan.list']?.toString(), [
      `${mod}/kernel/net/ipv4/udp_tunnel.ko`, `${mod}/kernel/net/ipv6/ip6_udp_tunnel.ko`, `${mod}/extra/netboot-vxlan/vxlan.ko`,
    ].map((l) => `${l}\n`).join(''));
    for (const f of [`${mod}/kernel/net/ipv4/udp_tunnel.ko`, `${mod}/kernel/net/ipv6/ip6_udp_tunnel.ko`]) assert.ok(files[f] !== undefined, f);
    assert.ok(files[`${mod}/extra/netboot-vxlan/vxlan.ko`]?.equals(readFileSync(join(drv, 'vxlan.ko'))));
    assert.equal(files['lib/firmware/netboot-test/blob.bin']?.toString(), 'firmware bytes');
    assert.match(files['etc/bootwiz/drivers.d/netboot-vxlan']?.toString() ?? '', /^VXLAN tunnels \(test\)\n/);

    // A driver published on B (a replica of the preboot): A, the owner, folds it in.
    const dummy = join(work, 'dummy');
    mkdirSync(dummy);
    copyFileSync(join(tree, 'lib', 'modules', kver, 'kernel', 'drivers', 'net', 'dummy.ko'), join(dummy, 'dummy.ko'));
    writeFileSync(join(dummy, 'driver.json'), JSON.stringify({ os: 'linux', arch: 'x64', description: 'dummy netdev (test)' }));
    await publish(b, dummy, 'netboot-dummy');
    const dReadyA = await readyAbove(a, 'netboot-dummy', 0);
    const v3a = await readyAbove(a, ID, v2a.seq);
    const v3b = await readyAbove(b, ID, v2a.seq);
    t.diagnostic(`driver (published on b) Ready on a → preboot Ready on a ${ms(dReadyA.updatedAt, v3a.updatedAt)} ms, on b ${ms(dReadyA.updatedAt, v3b.updatedAt)} ms`);
    assert.equal(overlayOf(b)['etc/bootwiz/modules.d/netboot-dummy.list']?.toString(), `${mod}/extra/netboot-dummy/dummy.ko\n`);

    // Both removed (each on its owner): the preboot on B ends without them.
    await remove(a, 'netboot-vxlan');
    await remove(b, 'netboot-dummy');
    await waitFor('an overlay without drivers on b', async () => {
      const p = await pkg(b, ID);
      if (p?.status?.state !== 'ready' || p.status.seq !== p.ref.seq) return undefined;
      return Object.keys(overlayOf(b)).length === 0 ? true : undefined;
    }, 120_000, 50);
  } finally {
    for (const svc of services) await svc.stop();
    rmSync(work, { recursive: true, force: true });
    cleanup();
  }
});
