// LinuxPE end to end: built from Debian's packages (downloaded through apt by this test), then
// built again, published and offered by the running site (`netboot bootwiz build` through
// `netboot run`'s Interface), and booted by QEMU machines through our PXE server and MTFTP:
// SeaBIOS + iPXE, OVMF + iPXE and OVMF's own PXE (chaining Debian's snponly.efi), to the banner
// on the serial console, whose site server and MAC must be right. The management stand-in's images snapshot does not name linuxpe-x64: the
// site must keep offering what it built. Last, a build from a lock naming a version apt does not
// have fails clearly and the previous build keeps serving. Needs root and the e2e packages
// (test/e2e/README.md); the data folder's apt cache is filled from the host's namespace (the
// server's namespace has no route to Debian's archive), the site's own build then runs offline.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { build, buildDir } from '../../bootwiz/build.ts';
import { INITRD_FILE, LINUXPE_X64, LOCK_FILE } from '../../bootwiz/recipe.ts';
import { E2eSite, plain } from '../e2e/harness/e2e-site.ts';
import type { Firmware } from '../e2e/harness/guest.ts';
import { poll } from '../e2e/harness/netboot-site.ts';
import { SERVER_ADDRESS } from '../e2e/harness/network.ts';
import { BOOT_FILES, NBP_IMAGE } from '../e2e/harness/second-stage.ts';
import { LINUXPE_MACHINE, parseBanner } from './banner.ts';

const ID = LINUXPE_X64.id;
const MACS: Partial<Record<Firmware, string>> = { bios: '52:54:00:b0:07:01', 'efi-ipxe': '52:54:00:b0:07:02', 'efi-native': '52:54:00:b0:07:03' };
const BOOT_TIMEOUT_MS = 150_000;

let e2e: E2eSite;

before(async () => {
  e2e = await E2eSite.start('bootwiz', {
    config: { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES },
    clients: Object.entries(MACS).map(([fw, mac]) => ({ mac, name: `BOOTWIZ-${fw}`, action: { type: 'boot', image: ID, once: false } })),
    // The management server's snapshot names another image only.
    images: [NBP_IMAGE],
    predefinedComputers: [],
  });
}, { timeout: 120_000 });

after(async () => {
  await e2e?.stop();
}, { timeout: 60_000 });

/** Waits until the server would boot this machine into linuxpe-x64 with every file there. */
async function waitBootable(mac: string): Promise<void> {
  await poll(`${mac} to boot ${ID} with every link present`, 30_000, async () => {
    try {
      const r = await controlCall<{ chain: { cannotBoot: string | null; ends: string } | null }>(controlSocketPath(e2e.site.data, 'server'), 'GET', `/explain?mac=${mac}&arch=bios`, undefined, 2000);
      return r.chain !== null && r.chain.cannotBoot === null && r.chain.ends.includes(ID) ? true : undefined;
    } catch {
      return undefined;
    }
  });
}

async function bootToBanner(firmware: Firmware): Promise<void> {
  const mac = MACS[firmware]!;
  const guest = await e2e.powerOn(`linuxpe-${firmware}`, firmware, mac, undefined, LINUXPE_MACHINE);
  try {
    try {
      await guest.waitFor(/==== netboot LinuxPE ====[\s\S]*?\n====\r?\n/, BOOT_TIMEOUT_MS);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${e2e.diagnosis(guest)}`);
    }
    const banner = parseBanner(plain(guest.output));
    assert.ok(banner !== null, `banner not parsed:\n${plain(guest.output).slice(-1500)}`);
    assert.equal(banner.server, SERVER_ADDRESS, `the banner's site server:\n${banner.text}`);
    assert.equal(banner.mac, mac, `the banner's MAC:\n${banner.text}`);
    assert.match(banner.ip, /^10\.91\.0\.(1\d\d)$/, `an address from the site's DHCP server:\n${banner.text}`);
    assert.equal(banner.drivers, 'none');
    // iPXE loaded our kernel and initrd from the package, through our script.
    assert.match(plain(guest.output), new RegExp(`boots ${LINUXPE_X64.name}`));
  } finally {
    await guest.stop();
  }
}

test('netboot bootwiz build: the site builds, publishes and offers linuxpe-x64 from the lock', { timeout: 900_000 }, async () => {
  // Debian's packages through apt (from the host's namespace: the download is part of the test).
  const first = await build({ dataDir: e2e.site.data, recipe: LINUXPE_X64 });
  assert.equal(first.resolved, true);
  // The site's own build, through the Interface; JSON progress lines (stdout is not a terminal).
  const r = await e2e.site.cli(['bootwiz', 'build', ID], 600_000);
  assert.equal(r.code, 0, `netboot bootwiz build failed:\n${r.stdout}\n${r.stderr}\n${e2e.site.logTail(40)}`);
  const progress = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { event: string; step: string });
  assert.ok(progress.some((p) => p.event === 'progress' && p.step === 'initrd'), `progress lines:\n${r.stdout}`);
  assert.match(r.stdout, new RegExp(`built ${ID}: kernel 6\\.\\S+ .* published as preboot package ${ID} seq \\d+ and offered as image ${ID}`));
  // The same lock, the same initrd as the build the test made.
  assert.equal(JSON.parse(readFileSync(join(buildDir(e2e.site.data, ID), 'build.json'), 'utf8')).initrd.sha256, first.info.initrd.sha256);
  const status = await e2e.site.status('interface');
  assert.equal((status?.bootwiz as Record<string, { state: string }> | undefined)?.[ID]?.state, 'built');
  for (const mac of Object.values(MACS)) await waitBootable(mac);
});

test('BIOS (SeaBIOS + iPXE) boots LinuxPE to the banner with the right server and MAC', { timeout: 300_000 }, async () => {
  await bootToBanner('bios');
});

test('UEFI x64 (OVMF + iPXE) boots LinuxPE to the banner with the right server and MAC', { timeout: 300_000 }, async () => {
  await bootToBanner('efi-ipxe');
});

test('UEFI x64 (OVMF\'s own PXE, then snponly.efi from the TFTP root) boots LinuxPE to the banner', { timeout: 300_000 }, async () => {
  await bootToBanner('efi-native');
});

test('a lock naming a version apt does not have fails clearly; the previous build keeps serving', { timeout: 300_000 }, async () => {
  const dir = buildDir(e2e.site.data, ID);
  const before = readFileSync(join(dir, INITRD_FILE));
  const lock = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { packages: Record<string, { version: string; sha256: string }> };
  lock.packages.busybox!.version = '9.9.9-no-such-version';
  lock.packages.busybox!.sha256 = 'f'.repeat(64);
  const bad = join(e2e.dir, 'bad-lock.json');
  writeFileSync(bad, JSON.stringify(lock));
  const r = await e2e.site.cli(['bootwiz', 'build', ID, '--lock', bad], 300_000);
  assert.equal(r.code, 1, `expected a failure:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /busybox-static version 9\.9\.9-no-such-version: E: Version '9\.9\.9-no-such-version' for 'busybox-static' was not found/, r.stderr);
  assert.match(r.stderr, /previous build/);
  const status = await e2e.site.status('interface');
  assert.equal((status?.bootwiz as Record<string, { state: string; error?: string }> | undefined)?.[ID]?.state, 'failed');
  assert.ok(readFileSync(join(dir, INITRD_FILE)).equals(before), 'the build folder is untouched');
  await waitBootable(MACS.bios!);
  // And a machine still boots it.
  await bootToBanner('bios');
});

