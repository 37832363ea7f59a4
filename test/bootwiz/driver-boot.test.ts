// A Linux driver package reaches a real boot with no command but the publish: the site builds
// linuxpe-x64 (Debian's packages through apt), then `netboot package publish DIR --kind driver`
// of a package holding vxlan.ko (from the same kernel package; not in the base set, needing
// udp_tunnel and ip6_udp_tunnel, which are not either) makes the Interface rebuild the overlay
// and publish a new preboot version by itself; the next BIOS boot (QEMU, SeaBIOS + iPXE, through
// `netboot run`) shows the package on the banner and /sys/module/vxlan present. `netboot package
// rm` of the driver: the boot after shows neither. Needs root and the e2e packages, like
// linuxpe-boot.test.ts, whose harness this reuses.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { build } from '../../bootwiz/build.ts';
import { LINUXPE_X64 } from '../../bootwiz/recipe.ts';
import { E2eSite, plain } from '../e2e/harness/e2e-site.ts';
import { poll } from '../e2e/harness/netboot-site.ts';
import { SERVER_ADDRESS } from '../e2e/harness/network.ts';
import { BOOT_FILES, NBP_IMAGE } from '../e2e/harness/second-stage.ts';
import { LINUXPE_MACHINE, parseBanner } from './banner.ts';
import { prebootReadyAbove } from './preboot-ready.ts';
import { publishVxlanDriver } from './vxlan-driver.ts';

const ID = LINUXPE_X64.id;
const DRIVER = 'netboot-vxlan';
const MAC = '52:54:00:b0:07:21';
const BOOT_TIMEOUT_MS = 150_000;
const VXLAN_LINE = new RegExp(`bootwiz: driver package ${DRIVER}: module vxlan: /sys/module/vxlan (present|missing)`);

let e2e: E2eSite;

before(async () => {
  e2e = await E2eSite.start('bootwiz-drivers', {
    config: { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES },
    clients: [{ mac: MAC, name: 'BOOTWIZ-DRIVERS', action: { type: 'boot', image: ID, once: false } }],
    images: [NBP_IMAGE],
    predefinedComputers: [],
  });
}, { timeout: 120_000 });

after(async () => {
  await e2e?.stop();
}, { timeout: 60_000 });

async function waitBootable(): Promise<void> {
  await poll(`${MAC} to boot ${ID}`, 30_000, async () => {
    try {
      const r = await controlCall<{ chain: { cannotBoot: string | null; ends: string } | null }>(controlSocketPath(e2e.site.data, 'server'), 'GET', `/explain?mac=${MAC}&arch=bios`, undefined, 2000);
      return r.chain !== null && r.chain.cannotBoot === null && r.chain.ends.includes(ID) ? true : undefined;
    } catch {
      return undefined;
    }
  });
}

/** Boots the machine (BIOS) to the banner; returns the console text and the banner. */
async function boot(name: string): Promise<{ text: string; drivers: string }> {
  await waitBootable();
  const guest = await e2e.powerOn(name, 'bios', MAC, undefined, LINUXPE_MACHINE);
  try {
    try {
      await guest.waitFor(/==== netboot LinuxPE ====[\s\S]*?\n====\r?\n/, BOOT_TIMEOUT_MS);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${e2e.diagnosis(guest)}`);
    }
    const text = plain(guest.output);
    const banner = parseBanner(text);
    assert.ok(banner !== null, `banner not parsed:\n${text.slice(-1500)}`);
    assert.equal(banner.server, SERVER_ADDRESS);
    assert.equal(banner.mac, MAC);
    return { text, drivers: banner.drivers };
  } finally {
    await guest.stop();
  }
}

let seq = 0;

test('the site builds linuxpe-x64; a machine boots it with no driver packages', { timeout: 900_000 }, async () => {
  await build({ dataDir: e2e.site.data, recipe: LINUXPE_X64 });
  const r = await e2e.site.cli(['bootwiz', 'build', ID], 600_000);
  assert.equal(r.code, 0, `netboot bootwiz build failed:\n${r.stdout}\n${r.stderr}\n${e2e.site.logTail(40)}`);
  seq = (await prebootReadyAbove(e2e.site.data, ID, 0)).seq;
  const b = await boot('drivers-none');
  assert.equal(b.drivers, 'none');
  assert.doesNotMatch(b.text, VXLAN_LINE);
});

test('publishing a driver package is enough: the next boot has the module loaded', { timeout: 600_000 }, async () => {
  await publishVxlanDriver(e2e, ID, DRIVER);
  seq = (await prebootReadyAbove(e2e.site.data, ID, seq)).seq;
  const b = await boot('drivers-vxlan');
  assert.equal(b.drivers, DRIVER, `the banner lists the driver package:\n${b.text.slice(-1500)}`);
  assert.equal(VXLAN_LINE.exec(b.text)?.[1], 'present', `vxlan loaded:\n${b.text.slice(-2500)}`);
});

test('removing the driver package is enough: the boot after has it gone', { timeout: 600_000 }, async () => {
  const r = await e2e.site.cli(['package', 'rm', DRIVER], 120_000);
  assert.equal(r.code, 0, `rm failed:\n${r.stdout}\n${r.stderr}`);
  seq = (await prebootReadyAbove(e2e.site.data, ID, seq)).seq;
  const b = await boot('drivers-gone');
  assert.equal(b.drivers, 'none');
  assert.doesNotMatch(b.text, VXLAN_LINE);
});
