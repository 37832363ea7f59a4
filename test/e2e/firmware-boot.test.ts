// End to end with real firmware: QEMU machines PXE-boot on a private LAN (network namespaces)
// where dnsmasq hands out addresses and netboot (`netboot run`, all four services) is the only
// PXE server. Each must reach the second stage fetched from our server; success is read from the
// machine's serial console. Set NETBOOT_E2E_CAPTURE_DIR to keep packet captures of each boot.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCapture } from './harness/capture.ts';
import { E2eSite, plain } from './harness/e2e-site.ts';
import type { Firmware } from './harness/guest.ts';
import { SERVER_ADDRESS } from './harness/network.ts';
import { BOOT_FILES, LINUX_IMAGE, NBP_IMAGE } from './harness/second-stage.ts';

const MACS: Record<Firmware, string> = { bios: '52:54:00:e2:e0:01', 'efi-ipxe': '52:54:00:e2:e0:02', 'efi-native': '52:54:00:e2:e0:03' };
const dashed = (mac: string): string => mac.replace(/:/g, '-');

let e2e: E2eSite;

before(async () => {
  e2e = await E2eSite.start('firmware', {
    config: { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES },
    clients: [
      { mac: MACS.bios, name: 'E2E-BIOS', action: { type: 'boot', image: NBP_IMAGE.id, once: false } },
      { mac: MACS['efi-ipxe'], name: 'E2E-EFI-IPXE', action: { type: 'boot', image: NBP_IMAGE.id, once: false } },
      // EDK2 itself would be handed an nbp's boot file; the linux type goes through the iPXE build.
      { mac: MACS['efi-native'], name: 'E2E-EFI-NATIVE', action: { type: 'boot', image: LINUX_IMAGE.id, once: false } },
    ],
    images: [NBP_IMAGE, LINUX_IMAGE],
    predefinedComputers: [],
  });
}, { timeout: 90000 });

after(async () => {
  await e2e?.stop();
}, { timeout: 60000 });

async function bootToSecondStage(firmware: Firmware, capture: string): Promise<string> {
  const mac = MACS[firmware];
  const cap = await startCapture(e2e.lan, capture, e2e.dir, e2e.cleanup);
  const guest = await e2e.powerOn(firmware, firmware, mac);
  try {
    const marker = await e2e.expectSecondStage(guest, mac);
    assert.match(marker, firmware === 'bios' ? / pcbios$/ : / efi$/, 'iPXE reports the platform it runs on');
    return plain(guest.output);
  } finally {
    await guest.stop();
    await cap?.finish();
  }
}

/** iPXE is offered its script over Boot HTTP ([http] port's default), at our address toward it. */
const HTTP_PORT = 8490;
const reAddr = (a: string): string => a.replace(/\./g, '\\.');

test('BIOS (SeaBIOS + iPXE ROM) boots through our proxyDHCP and MTFTP to the second stage', { timeout: 90000 }, async () => {
  const text = await bootToSecondStage('bios', 'bios-ipxe-netboot');
  // The ROM already runs iPXE: our offer names its script directly.
  assert.match(text, new RegExp(`Next server: ${SERVER_ADDRESS.replace(/\./g, '\\.')}`));
  assert.match(text, new RegExp(`Filename: http://${reAddr(SERVER_ADDRESS)}:${HTTP_PORT}/netboot/${dashed(MACS.bios)}/boot\\.ipxe`));
  assert.match(text, /netboot: .* boots E2E second stage \(nbp\)/);
});

test('UEFI x64 (OVMF + iPXE EFI ROM) boots through our proxyDHCP and MTFTP to the second stage', { timeout: 90000 }, async () => {
  const text = await bootToSecondStage('efi-ipxe', 'efi-ipxe-netboot');
  assert.match(text, new RegExp(`Filename: http://${reAddr(SERVER_ADDRESS)}:${HTTP_PORT}/netboot/${dashed(MACS['efi-ipxe'])}/boot\\.ipxe`));
  assert.match(text, /netboot: .* boots E2E second stage \(nbp\)/);
});

test('UEFI x64 (OVMF, EDK2\'s own PXE) boots the iPXE build from the TFTP root, then the second stage', { timeout: 90000 }, async () => {
  const text = await bootToSecondStage('efi-native', 'efi-native-netboot');
  // EDK2 got our offer (option 43 says: boot this file) and fetched snponly.efi from MTFTP...
  assert.match(text, new RegExp(`NBP filename is ${BOOT_FILES['efi-x64']!.replace('.', '\\.')}`));
  assert.match(text, /NBP file downloaded successfully/);
  // ...which, as iPXE, asked again and was given its script, not itself.
  assert.match(text, new RegExp(`Filename: http://${reAddr(SERVER_ADDRESS)}:${HTTP_PORT}/netboot/${dashed(MACS['efi-native'])}/boot\\.ipxe`));
  assert.match(text, /netboot: .* boots E2E second stage \(linux\)/);
});
