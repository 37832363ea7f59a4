// End to end: what the site's instructions make real machines do. BIOS guests (SeaBIOS + iPXE ROM)
// on a private LAN with dnsmasq for addresses and netboot (`netboot run`) as the PXE server, fed
// by a management-server stand-in (real HTTP) and by SBS instructions dropped with
// `netboot sbs send`. Outcomes are read from the guests' serial consoles.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { E2eSite, plain } from './harness/e2e-site.ts';
import { poll } from './harness/netboot-site.ts';
import { DHCP_RANGE } from './harness/network.ts';
import { signalPid } from './harness/cleanup.ts';
import { BOOT_FILES, LINUX_IMAGE, NBP_IMAGE } from './harness/second-stage.ts';

const MAC = {
  once: '52:54:00:e2:e1:01',
  unknown: '52:54:00:e2:e1:02',
  predefined: '52:54:00:e2:e1:03',
  waits: '52:54:00:e2:e1:04',
  afterKill: '52:54:00:e2:e1:05',
};

const CONFIG = { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES };
const STARTUP = { config: CONFIG, clients: [], images: [NBP_IMAGE, LINUX_IMAGE], predefinedComputers: [] };

let e2e: E2eSite;

before(async () => {
  e2e = await E2eSite.start('behaviour', STARTUP);
}, { timeout: 90000 });

after(async () => {
  await e2e?.stop();
}, { timeout: 60000 });

/** `netboot sbs send ...` against the site; the instruction must be accepted. */
async function send(...args: string[]): Promise<void> {
  const r = await e2e.site.cli(['sbs', 'send', ...args]);
  assert.equal(r.code, 0, `netboot sbs send ${args.join(' ')}: ${r.stderr}`);
}

const offered = (d: { offer?: unknown }): boolean => d.offer !== undefined;
const refused = (d: { none?: unknown }): boolean => d.none !== undefined;
const addressLine = new RegExp(`net0: ${DHCP_RANGE[0].split('.').slice(0, 3).join('\\.')}\\.\\d+/`);

test('an SBS client instruction decides what the guest boots; with once, the next power-on boots locally and pxe-booted reaches the management server', { timeout: 120000 }, async () => {
  const mac = MAC.once;
  // Not in the management server's state: an unknown machine, which config.unknown sends on locally.
  assert.ok(refused(await e2e.site.waitDecision(mac, 'bios', true, () => true)));
  await send('client', '--mac', mac, '--name', 'E2E-ONCE', '--boot', NBP_IMAGE.id);
  await e2e.site.waitDecision(mac, 'bios', true, offered);

  const first = await e2e.powerOn('once-1', 'bios', mac);
  try {
    await e2e.expectSecondStage(first, mac);
  } finally {
    await first.stop();
  }

  const event = await poll('the pxe-booted event at the management server', 20000, () =>
    e2e.standIn.events().find((e) => e.kind === 'pxe-booted' && e.mac === mac),
  );
  assert.equal(event.image, NBP_IMAGE.id);
  assert.equal(event.server, 'e2e-site');

  const second = await e2e.powerOn('once-2', 'bios', mac);
  try {
    const text = await e2e.expectNoOffer(second, mac);
    assert.match(text, addressLine, 'the ordinary DHCP server still gave it an address');
    assert.doesNotMatch(text, /Filename: \S*netboot\//, 'no boot file was offered');
  } finally {
    await second.stop();
  }
  // Delivery is at least once (a retry repeats an eventId); the boot itself was reported once.
  const ids = new Set(e2e.standIn.events().filter((e) => e.kind === 'pxe-booted' && e.mac === mac).map((e) => e.eventId));
  assert.equal(ids.size, 1, 'one boot, one event');
});

test('wait: the guest waits at the boot prompt; an action dropped afterwards makes it boot without a restart', { timeout: 120000 }, async () => {
  const mac = MAC.waits;
  await send('client', '--mac', mac, '--name', 'E2E-WAIT', '--wait');
  await e2e.site.waitDecision(mac, 'bios', true, offered);
  const guest = await e2e.powerOn('wait', 'bios', mac);
  try {
    await guest.waitFor(new RegExp(`netboot: ${mac} is waiting for instructions`), 45000);
    // Still waiting a round later: it keeps checking back, and nothing else happens meanwhile.
    const { end } = await guest.waitFor(/waiting for instructions/, 20000, guest.output.search(/waiting for instructions/) + 1);
    assert.doesNotMatch(plain(guest.output), /NETBOOT-SECOND-STAGE/);
    await send('client', '--mac', mac, '--name', 'E2E-WAIT', '--boot', NBP_IMAGE.id, '--no-once');
    await e2e.expectSecondStage(guest, mac, 45000);
    const text = plain(guest.output);
    assert.equal(text.match(/iPXE initialising devices/g)?.length, 1, 'the machine was not restarted');
    assert.ok(text.indexOf('NETBOOT-SECOND-STAGE') > plain(guest.output.slice(0, end)).length, 'booted after it had been waiting');
  } finally {
    await guest.stop();
  }
});

test('respond = known: an unknown guest gets no offer, a predefined one does', { timeout: 120000 }, async () => {
  const payload = join(e2e.dir, 'config-known.json');
  writeFileSync(payload, JSON.stringify({ ...CONFIG, respond: 'known', unknown: { type: 'boot', image: NBP_IMAGE.id, once: false } }));
  await send('config', '--file', payload);
  await send('predefined-computer', '--mac', MAC.predefined, '--name', 'E2E-PREDEFINED');
  await e2e.site.waitDecision(MAC.predefined, 'bios', true, offered);
  await e2e.site.waitDecision(MAC.unknown, 'bios', true, refused);

  const known = await e2e.powerOn('predefined', 'bios', MAC.predefined);
  const unknown = await e2e.powerOn('unknown', 'bios', MAC.unknown);
  try {
    const [, text] = await Promise.all([e2e.expectSecondStage(known, MAC.predefined), e2e.expectNoOffer(unknown, MAC.unknown)]);
    assert.match(text, addressLine, 'the unknown guest got an address, just no boot file');
    assert.doesNotMatch(text, /Filename: \S*netboot\//);
  } finally {
    await Promise.all([known.stop(), unknown.stop()]);
    await send('config', '--file', writeConfig(CONFIG));
  }
});

test('killing the server process: the supervisor restarts it, Signal re-runs the start-up, the next boot works', { timeout: 120000 }, async () => {
  const mac = MAC.afterKill;
  // The management server now knows this machine, but netboot has not asked it since.
  e2e.standIn.setStartup({ ...STARTUP, clients: [{ mac, name: 'E2E-AFTER-KILL', action: { type: 'boot', image: NBP_IMAGE.id, once: false } }] });
  assert.ok(refused(await e2e.site.waitDecision(mac, 'bios', true, () => true)));

  const status = await e2e.site.cli(['status', '--json']);
  assert.equal(status.code, 0, status.stderr);
  const rows = JSON.parse(status.stdout) as Array<{ service: string; pid: number; state: string }>;
  const server = rows.find((r) => r.service === 'server')!;
  const mtftp = rows.find((r) => r.service === 'mtftp')!;
  const startups = e2e.standIn.count('GET', '/pxe/startup');
  assert.ok(signalPid(server.pid, 'SIGKILL'), `server pid ${server.pid} was running`);

  await e2e.settle(startups);
  assert.ok(e2e.standIn.count('GET', '/pxe/startup') > startups, 'Signal fetched the start-up state again');
  const after = await e2e.site.waitServing(30000);
  assert.notEqual(after.server.pid, server.pid, 'a new server process');
  assert.notEqual(after.mtftp.pid, mtftp.pid, 'MTFTP, bound to the server, was restarted with it');
  assert.match(e2e.site.supervisor.output, /"msg":"service exited; restarting","child":"server"[^\n]*"signal":"SIGKILL"/);
  await e2e.site.waitDecision(mac, 'bios', true, offered);

  const guest = await e2e.powerOn('after-kill', 'bios', mac);
  try {
    await e2e.expectSecondStage(guest, mac);
  } finally {
    await guest.stop();
  }
});

function writeConfig(config: unknown): string {
  const path = join(e2e.dir, `config-${Date.now()}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}
