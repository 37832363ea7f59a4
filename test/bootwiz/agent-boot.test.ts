// The imaging agent's runtime and hand-off, end to end: the site (`netboot run`, its
// `[bootwiz] agent_entry` naming the test probe) builds linuxpe-x64 from Debian's packages with
// Node in the base initrd and the probe bundled into agent.img; QEMU machines (SeaBIOS + iPXE,
// OVMF + iPXE) PXE-boot it through our server, and init runs `/opt/agent/run SERVER MAC IP`: the
// console shows the probe's line with Debian's Node version and the banner's server, MAC and IP,
// and the probe read the kernel command line iPXE wrote. Needs root and the e2e packages, like
// linuxpe-boot.test.ts, whose harness this reuses.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { build, buildDir } from '../../bootwiz/build.ts';
import { AGENT_INFO_FILE, LINUXPE_X64 } from '../../bootwiz/recipe.ts';
import { E2eSite, plain } from '../e2e/harness/e2e-site.ts';
import type { Firmware } from '../e2e/harness/guest.ts';
import { poll } from '../e2e/harness/netboot-site.ts';
import { SERVER_ADDRESS } from '../e2e/harness/network.ts';
import { BOOT_FILES, NBP_IMAGE } from '../e2e/harness/second-stage.ts';
import { LINUXPE_MACHINE, parseBanner } from './banner.ts';

const ID = LINUXPE_X64.id;
const PROBE = join(import.meta.dirname, 'fixtures', 'agent-probe.ts');
const MACS: Partial<Record<Firmware, string>> = { bios: '52:54:00:b0:0a:01', 'efi-ipxe': '52:54:00:b0:0a:02' };
const BOOT_TIMEOUT_MS = 240_000;
/** Debian bookworm's nodejs, the version the lock names. */
const NODE_VERSION = 'v18.20.4';

let e2e: E2eSite;

before(async () => {
  e2e = await E2eSite.start('bootwiz-agent', {
    config: { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES },
    clients: Object.entries(MACS).map(([fw, mac]) => ({ mac, name: `AGENT-${fw}`, action: { type: 'boot', image: ID, once: false } })),
    images: [NBP_IMAGE],
    predefinedComputers: [],
  }, { serverToml: `[server]\naddress = "${SERVER_ADDRESS}"\n\n[bootwiz]\nagent_entry = "${PROBE}"\n` });
}, { timeout: 120_000 });

after(async () => {
  await e2e?.stop();
}, { timeout: 60_000 });

async function waitBootable(mac: string): Promise<void> {
  await poll(`${mac} to boot ${ID}`, 30_000, async () => {
    try {
      const r = await controlCall<{ chain: { cannotBoot: string | null; ends: string } | null }>(controlSocketPath(e2e.site.data, 'server'), 'GET', `/explain?mac=${mac}&arch=bios`, undefined, 2000);
      return r.chain !== null && r.chain.cannotBoot === null && r.chain.ends.includes(ID) ? true : undefined;
    } catch {
      return undefined;
    }
  });
}

async function bootToProbe(firmware: Firmware): Promise<void> {
  const mac = MACS[firmware]!;
  await waitBootable(mac);
  const guest = await e2e.powerOn(`agent-${firmware}`, firmware, mac, undefined, LINUXPE_MACHINE);
  try {
    try {
      await guest.waitFor(/agent-probe: arch .*\r?\n/, BOOT_TIMEOUT_MS);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${e2e.diagnosis(guest)}`);
    }
    const text = plain(guest.output);
    const banner = parseBanner(text);
    assert.ok(banner !== null, `banner not parsed:\n${text.slice(-2000)}`);
    assert.equal(banner.server, SERVER_ADDRESS);
    assert.equal(banner.mac, mac);
    assert.match(banner.ip, /^10\.91\.0\.\d+$/);
    // init handed the agent the banner's server, MAC and IP; Node is Debian's.
    const line = /^agent-probe: node (\S+) args=(.*)$/m.exec(text);
    assert.ok(line !== null, `no probe line:\n${text.slice(-2000)}`);
    assert.equal(line[1], NODE_VERSION);
    assert.equal(line[2]!.trim(), `${SERVER_ADDRESS} ${mac} ${banner.ip}`);
    // It read the command line iPXE wrote (our server), and Intl works (ICU from libicu72).
    assert.match(text, new RegExp(`agent-probe: arch x64 cmdline netboot\\.server=${SERVER_ADDRESS.replace(/\./g, '\\.')} sha256=[0-9a-f]{12} intl=1\\.234,5`));
    // After the agent, the shell.
    await guest.waitFor(/waiting for work: a shell on the console/, 30_000);
  } finally {
    await guest.stop();
  }
}

test('the site builds linuxpe-x64 with Node and the probe agent from [bootwiz] agent_entry', { timeout: 900_000 }, async () => {
  const first = await build({ dataDir: e2e.site.data, recipe: LINUXPE_X64 });
  assert.ok(first.info.userland.libraries.includes('libnode.so.108'), first.info.userland.libraries.join(' '));
  const r = await e2e.site.cli(['bootwiz', 'build', ID], 600_000);
  assert.equal(r.code, 0, `netboot bootwiz build failed:\n${r.stdout}\n${r.stderr}\n${e2e.site.logTail(40)}`);
  const agent = JSON.parse(readFileSync(join(buildDir(e2e.site.data, ID), AGENT_INFO_FILE), 'utf8')) as { agent: { entry: string } | null };
  assert.equal(agent.agent?.entry, 'test/bootwiz/fixtures/agent-probe.ts');
});

test('BIOS (SeaBIOS + iPXE): LinuxPE runs the agent with Node 18 and the server, MAC and IP', { timeout: 400_000 }, async () => {
  await bootToProbe('bios');
});

test('UEFI x64 (OVMF + iPXE): LinuxPE runs the agent with Node 18 and the server, MAC and IP', { timeout: 400_000 }, async () => {
  await bootToProbe('efi-ipxe');
});
