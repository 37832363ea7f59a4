// Boot HTTP with real firmware, through `netboot run` on the end-to-end LAN (test/e2e/harness):
// - SeaBIOS + iPXE ROM (QEMU's NIC ROM is iPXE): iPXE is offered its script's URL, so the script
//   and the image file it names come over HTTP, and nothing over TFTP.
// - OVMF by UEFI HTTP Boot (its PXE switched off): the HTTPClient offer's URL, iPXE, the script
//   and the image, with no TFTP request at all.
// Success is read from the machine's serial console; which protocol carried what, from
// netboot's log ("HTTP sent" from Boot HTTP, "transfer started" from TFTP).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { E2eSite } from '../e2e/harness/e2e-site.ts';
import { BOOT_FILES, LINUX_IMAGE, STAGE2_FILE } from '../e2e/harness/second-stage.ts';

const MACS = { bios: '52:54:00:48:54:01', http: '52:54:00:48:54:02', efi: '52:54:00:48:54:03' } as const;
const dashed = (mac: string): string => mac.replace(/:/g, '-');

let e2e: E2eSite;

before(async () => {
  e2e = await E2eSite.start('httpboot', {
    config: { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES },
    clients: [
      { mac: MACS.bios, name: 'HTTP-BIOS', action: { type: 'boot', image: LINUX_IMAGE.id, once: false } },
      { mac: MACS.http, name: 'HTTP-UEFI', action: { type: 'boot', image: LINUX_IMAGE.id, once: false } },
      { mac: MACS.efi, name: 'HTTP-EFI-IPXE', action: { type: 'boot', image: LINUX_IMAGE.id, once: false } },
    ],
    images: [LINUX_IMAGE],
    predefinedComputers: [],
  });
}, { timeout: 120_000 });

after(async () => {
  await e2e?.stop();
}, { timeout: 60_000 });

interface LogLine { msg?: string; path?: string; file?: string; peer?: string; complete?: boolean; service?: string }

function logLines(): LogLine[] {
  const out: LogLine[] = [];
  for (const line of e2e.site.supervisor.output.split('\n')) {
    const at = line.indexOf('{');
    if (at < 0) continue;
    try {
      out.push(JSON.parse(line.slice(at)) as LogLine);
    } catch {
      // not a log record
    }
  }
  return out;
}

const httpSent = (path: string): LogLine[] => logLines().filter((l) => l.msg === 'HTTP sent' && l.path === path && l.complete === true);
const tftpStarted = (): LogLine[] => logLines().filter((l) => l.msg === 'transfer started');
const tftpOf = (needle: string): LogLine[] => tftpStarted().filter((l) => JSON.stringify(l).includes(needle));

test('SeaBIOS + iPXE: the script and the image file come over HTTP, nothing over TFTP', { timeout: 180_000 }, async () => {
  const mac = MACS.bios;
  const guest = await e2e.powerOn('http-bios', 'bios', mac);
  try {
    await e2e.expectSecondStage(guest, mac, 150_000);
  } finally {
    await guest.stop();
  }
  const script = `netboot/${dashed(mac)}/boot.ipxe`;
  const kernel = `netboot/${dashed(mac)}/image/${LINUX_IMAGE.id}/${STAGE2_FILE}`;
  assert.equal(httpSent(script).length >= 1, true, 'the script over HTTP');
  assert.equal(httpSent(kernel).length >= 1, true, 'the kernel over HTTP');
  // QEMU's e1000 ROM is iPXE itself: it is offered its script's URL at once, so no TFTP at all.
  assert.deepEqual(tftpOf(dashed(mac)), [], 'nothing of this machine\'s netboot/ folder over TFTP');
  assert.deepEqual(tftpStarted(), [], 'no TFTP transfer at all');
});

test('OVMF by UEFI HTTP Boot: iPXE, its script and the image over HTTP, no TFTP request at all', { timeout: 240_000 }, async () => {
  const mac = MACS.http;
  const before = tftpStarted().length;
  const guest = await e2e.powerOn('http-uefi', 'efi-native', mac, undefined, {
    // PXE off: the firmware goes straight to HTTP Boot.
    extraArgs: ['-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=n', '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=n'],
  });
  try {
    await e2e.expectSecondStage(guest, mac, 210_000);
  } finally {
    await guest.stop();
  }
  assert.ok(logLines().some((l) => l.msg === 'HTTP sent' && l.path === BOOT_FILES['efi-x64'] && l.complete === true), 'the firmware fetched snponly.efi over HTTP');
  assert.ok(httpSent(`netboot/${dashed(mac)}/image/${LINUX_IMAGE.id}/${STAGE2_FILE}`).length >= 1, 'the image file over HTTP');
  assert.equal(tftpStarted().length, before, 'no TFTP transfer during this boot');
});

test('OVMF + iPXE ROM: the script and the image file over HTTP, nothing of it over TFTP', { timeout: 180_000 }, async () => {
  const mac = MACS.efi;
  const guest = await e2e.powerOn('http-efi-ipxe', 'efi-ipxe', mac);
  try {
    await e2e.expectSecondStage(guest, mac, 150_000);
  } finally {
    await guest.stop();
  }
  assert.ok(httpSent(`netboot/${dashed(mac)}/boot.ipxe`).length >= 1, 'the script over HTTP');
  assert.ok(httpSent(`netboot/${dashed(mac)}/image/${LINUX_IMAGE.id}/${STAGE2_FILE}`).length >= 1, 'the image file over HTTP');
  assert.deepEqual(tftpOf(dashed(mac)), [], 'nothing of this machine\'s netboot/ folder over TFTP');
});
