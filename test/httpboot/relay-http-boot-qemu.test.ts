// UEFI HTTP Boot behind a relay, through `netboot run` (test/e2e/harness/relay-network.ts: a
// router running ISC dhcrelay with option 82 toward the ordinary DHCP server and netboot): OVMF
// with its PXE switched off on client subnet B asks with vendor class HTTPClient; the relayed
// offer's URL names the address subnet B's [[server.subnets]] entry gives (not the server's
// first address), and the firmware fetches iPXE from it, iPXE its script and the image file, all
// over Boot HTTP at that address, with no TFTP request at all.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { E2eSite, plain } from '../e2e/harness/e2e-site.ts';
import { SERVER_ADDRESS } from '../e2e/harness/network.ts';
import { CLIENT_SUBNETS, SERVER_ADDRESS_B } from '../e2e/harness/relay-network.ts';
import { BOOT_FILES, LINUX_IMAGE, STAGE2_FILE } from '../e2e/harness/second-stage.ts';

const MAC = '52:54:00:48:54:b1';
const DASHED = MAC.replace(/:/g, '-');
const HTTP_PORT = 8490;
const B = CLIENT_SUBNETS.b;

let e2e: E2eSite;

before(async () => {
  e2e = await E2eSite.start('relay-httpboot', {
    config: { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES },
    clients: [{ mac: MAC, name: 'HTTP-UEFI-RELAYED', action: { type: 'boot', image: LINUX_IMAGE.id, once: false } }],
    images: [LINUX_IMAGE],
    predefinedComputers: [],
  }, {
    relay: { agentInfo: true },
    serverToml: `[server]\n\n[[server.subnets]]\ncidr = "${B.cidr}"\naddress = "${SERVER_ADDRESS_B}"\nname = "e2e subnet B"\n`,
  });
}, { timeout: 120_000 });

after(async () => {
  await e2e?.stop();
}, { timeout: 60_000 });

interface LogLine { msg?: string; mac?: string; path?: string; peer?: string; complete?: boolean; relay?: string; server?: string; file?: string; reason?: string }

function logLines(): LogLine[] {
  return e2e.site.supervisor.output.split('\n').flatMap((line) => {
    const at = line.indexOf('{');
    if (at < 0) return [];
    try {
      return [JSON.parse(line.slice(at)) as LogLine];
    } catch {
      return [];
    }
  });
}

test('OVMF by UEFI HTTP Boot on a relayed subnet: the URL names that subnet\'s server address; iPXE, its script and the image over HTTP, no TFTP', { timeout: 300_000 }, async () => {
  const guest = await e2e.powerOn('relay-http-uefi', 'efi-native', MAC, 'b', {
    extraArgs: ['-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=n', '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=n'],
  });
  let text = '';
  try {
    await e2e.expectSecondStage(guest, MAC, 240_000);
    text = plain(guest.output);
  } finally {
    await guest.stop();
  }
  const url = `http://${SERVER_ADDRESS_B}:${HTTP_PORT}/${BOOT_FILES['efi-x64']}`;
  // The firmware prints the URL it boots from.
  assert.ok(text.includes(`URI: ${url}`) || text.includes(url), `the firmware booted ${url}:\n${text.slice(-2000)}`);
  assert.match(text, new RegExp(`http://${SERVER_ADDRESS_B.replace(/\./g, '\\.')}:${HTTP_PORT}/netboot/${DASHED}/boot\\.ipxe`), 'iPXE was offered its script at the same address');
  const lines = logLines();
  const answered = lines.filter((l) => l.mac === MAC && /answered$/.test(l.msg ?? ''));
  assert.ok(answered.length > 0, `no answer logged:\n${e2e.site.logTail(30)}`);
  for (const r of answered) {
    assert.equal(r.relay, B.gateway, 'through the relay');
    assert.equal(r.server, SERVER_ADDRESS_B, 'subnet B\'s address');
    assert.notEqual(r.server, SERVER_ADDRESS);
  }
  assert.ok(answered.some((r) => r.file === BOOT_FILES['efi-x64'] && /UEFI HTTP Boot: a URL on Boot HTTP/.test(r.reason ?? '')), `the HTTPClient offer:\n${JSON.stringify(answered, null, 1)}`);
  const sent = lines.filter((l) => l.msg === 'HTTP sent' && l.complete === true);
  for (const path of [BOOT_FILES['efi-x64']!, `netboot/${DASHED}/boot.ipxe`, `netboot/${DASHED}/image/${LINUX_IMAGE.id}/${STAGE2_FILE}`]) {
    assert.ok(sent.some((l) => l.path === path), `${path} over HTTP:\n${e2e.site.logTail(30)}`);
  }
  assert.deepEqual(lines.filter((l) => l.msg === 'transfer started'), [], 'no TFTP transfer at all');
});
