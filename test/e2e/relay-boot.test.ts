// End to end across subnets: QEMU machines on two client subnets behind a router that relays
// DHCP with ISC dhcrelay (option 82 added, and replies without it dropped: -a -D) to both the
// ordinary DHCP server and netboot on the server subnet. Each machine must reach the second
// stage (read from its serial console) with the boot server address meant for its subnet:
// subnet A gets the address the server's route toward the relay leaves from ([server] address is
// not set), subnet B the one its [[server.subnets]] entry names. And the server is multi-homed:
// subnet C is on its second interface, no relay, and its broadcast offers carry that interface's
// address (one offer per segment, each sent out of its own interface).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCapture } from './harness/capture.ts';
import { E2eSite, plain } from './harness/e2e-site.ts';
import type { Firmware } from './harness/guest.ts';
import { SERVER_ADDRESS } from './harness/network.ts';
import { CLIENT_SUBNETS, DIRECT_SUBNET, SERVER_ADDRESS_B, type SubnetName } from './harness/relay-network.ts';
import { BOOT_FILES, LINUX_IMAGE, NBP_IMAGE } from './harness/second-stage.ts';

type Case = Firmware | 'multi-homed';
const MACS: Record<Case, string> = { bios: '52:54:00:e2:e1:01', 'efi-ipxe': '52:54:00:e2:e1:02', 'efi-native': '52:54:00:e2:e1:03', 'multi-homed': '52:54:00:e2:e1:04' };
const FIRMWARE: Record<Case, Firmware> = { bios: 'bios', 'efi-ipxe': 'efi-ipxe', 'efi-native': 'efi-native', 'multi-homed': 'efi-native' };
const WHERE: Record<Case, SubnetName> = { bios: 'a', 'efi-ipxe': 'b', 'efi-native': 'a', 'multi-homed': 'c' };
const ADDRESS: Record<SubnetName, string> = { a: SERVER_ADDRESS, b: SERVER_ADDRESS_B, c: DIRECT_SUBNET.server };
const dashed = (mac: string): string => mac.replace(/:/g, '-');
/** iPXE is offered its script over Boot HTTP ([http] port's default), at our address toward it. */
const HTTP_PORT = 8490;
const reEscape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let e2e: E2eSite;

before(async () => {
  e2e = await E2eSite.start('relay', {
    config: { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES },
    clients: [
      { mac: MACS.bios, name: 'E2E-RELAY-BIOS', action: { type: 'boot', image: NBP_IMAGE.id, once: false } },
      { mac: MACS['efi-ipxe'], name: 'E2E-RELAY-EFI-IPXE', action: { type: 'boot', image: NBP_IMAGE.id, once: false } },
      { mac: MACS['efi-native'], name: 'E2E-RELAY-EFI-NATIVE', action: { type: 'boot', image: LINUX_IMAGE.id, once: false } },
      { mac: MACS['multi-homed'], name: 'E2E-SEGMENT-C-EFI-NATIVE', action: { type: 'boot', image: LINUX_IMAGE.id, once: false } },
    ],
    images: [NBP_IMAGE, LINUX_IMAGE],
    predefinedComputers: [],
  }, {
    relay: { agentInfo: true },
    serverToml: `[server]\n\n[[server.subnets]]\ncidr = "${CLIENT_SUBNETS.b.cidr}"\naddress = "${SERVER_ADDRESS_B}"\nname = "e2e subnet B"\n`,
  });
}, { timeout: 60000 });

after(async () => {
  await e2e?.stop();
}, { timeout: 60000 });

interface Answered {
  readonly msg: string;
  readonly mac?: string;
  readonly relay?: string;
  readonly hops?: number;
  readonly agentInfo?: string;
  readonly subnet?: string;
  readonly server?: string;
  readonly serverWhy?: string;
  readonly segments?: string;
  readonly to?: string;
}

/** The server's "… answered" records for a machine (JSON log lines of `netboot run`). */
function answered(mac: string): Answered[] {
  return e2e.site.supervisor.output.split('\n').flatMap((line) => {
    const json = line.slice(line.indexOf('{'));
    try {
      const r = JSON.parse(json) as Answered;
      return r.mac === mac && /answered$/.test(r.msg) ? [r] : [];
    } catch {
      return [];
    }
  });
}

async function bootThroughRelay(c: Case): Promise<string> {
  const mac = MACS[c];
  const firmware = FIRMWARE[c];
  const cap = await startCapture(e2e.lan, `relay-${c}-netboot`, e2e.dir, e2e.cleanup);
  const guest = await e2e.powerOn(c, firmware, mac, WHERE[c]);
  try {
    const marker = await e2e.expectSecondStage(guest, mac);
    assert.match(marker, firmware === 'bios' ? / pcbios$/ : / efi$/);
    return plain(guest.output);
  } finally {
    await guest.stop();
    await cap?.finish();
  }
}

/** What the server logged: offers sent to the relay at giaddr:67, with the subnet's address. */
function assertAnsweredThroughRelay(firmware: Firmware): void {
  const where = WHERE[firmware];
  if (where === 'c') throw new Error('subnet C has no relay');
  const s = CLIENT_SUBNETS[where];
  const records = answered(MACS[firmware]);
  const relayed = records.filter((r) => r.relay !== undefined);
  assert.ok(relayed.length > 0, `no relayed answer logged for ${firmware}:\n${e2e.site.logTail(30)}`);
  for (const r of relayed) {
    assert.equal(r.relay, s.gateway);
    assert.equal(r.to, `${s.gateway}:67`, 'RFC 2131 4.1: to the relay agent on the server port');
    assert.ok(r.hops !== undefined && r.hops >= 1);
    assert.equal(r.agentInfo, `circuit-id "${s.routerIf}"`, 'dhcrelay -a names its interface');
    assert.equal(r.server, ADDRESS[where]);
  }
  if (where === 'b') assert.ok(relayed.every((r) => r.subnet === `${s.cidr} (e2e subnet B)` && r.serverWhy === `[[server.subnets]] ${s.cidr}`));
  else assert.ok(relayed.every((r) => r.serverWhy === `the route toward ${s.gateway} leaves from it`));
}

test('BIOS (SeaBIOS + iPXE ROM) on subnet A boots through the relay; the offer names the address toward the relay', { timeout: 60000 }, async () => {
  const text = await bootThroughRelay('bios');
  assert.match(text, new RegExp(`net0: ${reEscape(CLIENT_SUBNETS.a.prefix)}\\.1\\d\\d/255\\.255\\.255\\.0 gw ${reEscape(CLIENT_SUBNETS.a.gateway)}`), 'an address from the DHCP server, through the relay');
  assert.match(text, new RegExp(`Next server: ${reEscape(SERVER_ADDRESS)}`));
  assert.match(text, new RegExp(`Filename: http://${reEscape(SERVER_ADDRESS)}:${HTTP_PORT}/netboot/${dashed(MACS.bios)}/boot\\.ipxe`));
  assertAnsweredThroughRelay('bios');
});

test('UEFI x64 (OVMF + iPXE EFI ROM) on subnet B boots through the relay; the offer names the subnet\'s configured address', { timeout: 60000 }, async () => {
  const text = await bootThroughRelay('efi-ipxe');
  assert.match(text, new RegExp(`Next server: ${reEscape(SERVER_ADDRESS_B)}`));
  assert.match(text, new RegExp(`Filename: http://${reEscape(SERVER_ADDRESS_B)}:${HTTP_PORT}/netboot/${dashed(MACS['efi-ipxe'])}/boot\\.ipxe`));
  assertAnsweredThroughRelay('efi-ipxe');
});

test('UEFI x64 (OVMF, EDK2\'s own PXE) on subnet A boots the iPXE build routed over TFTP, then the second stage', { timeout: 60000 }, async () => {
  const text = await bootThroughRelay('efi-native');
  assert.match(text, new RegExp(`NBP filename is ${reEscape(BOOT_FILES['efi-x64']!)}`));
  assert.match(text, /NBP file downloaded successfully/);
  assert.match(text, new RegExp(`Filename: http://${reEscape(SERVER_ADDRESS)}:${HTTP_PORT}/netboot/${dashed(MACS['efi-native'])}/boot\\.ipxe`));
  assertAnsweredThroughRelay('efi-native');
});

test('multi-homed: EDK2 on the server\'s second segment (no relay) gets the offer sent out of that interface, with its address', { timeout: 60000 }, async () => {
  const text = await bootThroughRelay('multi-homed');
  // EDK2 prints the boot server it chose: the second interface's address, not eth0's.
  assert.match(text, new RegExp(`Server IP address is ${reEscape(DIRECT_SUBNET.server)}`));
  assert.match(text, /NBP file downloaded successfully/);
  assert.match(text, new RegExp(`Next server: ${reEscape(DIRECT_SUBNET.server)}`));
  const records = answered(MACS['multi-homed']);
  assert.ok(records.length > 0);
  for (const r of records.filter((x) => x.to === '255.255.255.255:68')) {
    assert.equal(r.relay, undefined);
    assert.equal(r.segments, `eth0 ${SERVER_ADDRESS}, eth1 ${DIRECT_SUBNET.server}`, 'one offer per segment, each with its own address');
  }
});
