// Secure Boot through `netboot run` into BootWiz's LinuxPE: the site builds linuxpe-x64 (Debian's
// signed kernel, BootWiz's initrd) and folds a driver package (vxlan.ko from the same kernel
// package, Debian-signed) into its overlay drivers.img. OVMF with Secure Boot enforced (Microsoft
// keys enrolled, SMM, secure flash) boots Debian's signed shim over PXE, shim loads Debian's
// signed network GRUB beside it, GRUB reads grub/grub.cfg and this machine's generated
// netboot/<mac>/grub.cfg, and loads the signed kernel and both initrds (base and driver overlay),
// to the LinuxPE banner with the driver loaded under lockdown. A packet capture shows which
// protocol carried what: everything over TFTP, nothing over Boot HTTP (Debian 12's signed GRUB
// has no http module and loads none under Secure Boot: measured, `disk http,SERVER not found`
// and a TFTP request for /grub/x86_64-efi/http.mod). Then the same machine, offered iPXE
// (unsigned by Microsoft) under shim's name, is refused by the firmware: Secure Boot was on.
//
// GRUB 2.06 takes its TFTP server from the ordinary DHCP server's ACK (siaddr), not from our
// proxy offer (docs/http-boot.md: the one change on the site's DHCP server): here dnsmasq gets
// `--dhcp-boot=,,SERVER`. Debian's packages are kept in /var/cache/netboot-test/httpboot
// (test/httpboot/debian-files.ts); the first run fetches about 75 MB.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, buildDir } from '../../bootwiz/build.ts';
import { AGENT_FILE, INITRD_FILE, KERNEL_FILE, LINUXPE_X64, OVERLAY_FILE } from '../../bootwiz/recipe.ts';
import { GRUB_ROOT_CONFIG } from '../../boot/http-grub-config.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { readPackets, transfers, type Transfer } from '../../bench/boot/pcap.ts';
import { parseBanner } from '../bootwiz/banner.ts';
import { E2eSite, plain } from '../e2e/harness/e2e-site.ts';
import { poll } from '../e2e/harness/netboot-site.ts';
import { SERVER_ADDRESS } from '../e2e/harness/network.ts';
import { Running, inNamespace, sleep } from '../e2e/harness/processes.ts';
import { IPXE_BUILDS } from '../e2e/harness/second-stage.ts';
import { keepBootwizCache, seedBootwizCache, signedChain } from './debian-files.ts';
import { prebootReadyAbove } from '../bootwiz/preboot-ready.ts';
import { publishVxlanDriver } from '../bootwiz/vxlan-driver.ts';

const ID = LINUXPE_X64.id;
const MAC = '52:54:00:5b:00:01';
const DASHED = MAC.replace(/:/g, '-');
const DRIVER = 'netboot-vxlan';
/** Boot HTTP's port ([http] port's default): watched in the capture, where nothing may use it. */
const HTTP_PORT = 8490;
const SECURE = {
  ovmf: { code: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' },
  extraArgs: ['-machine', 'q35,smm=on', '-global', 'driver=cfi.pflash01,property=secure,value=on', '-m', '512'],
};

let e2e: E2eSite;

before(async () => {
  const chain = signedChain();
  e2e = await E2eSite.start('secureboot', {
    config: { respond: 'all', unknown: { type: 'local' }, bootFiles: { 'efi-x64': 'shimx64.efi' } },
    clients: [{ mac: MAC, name: 'SB-EFI', action: { type: 'boot', image: ID, once: false } }],
    images: [],
    predefinedComputers: [],
  }, {
    dhcpArgs: [`--dhcp-boot=,,${SERVER_ADDRESS}`],
  });
  const root = e2e.site.tftpRoot;
  mkdirSync(join(root, 'grub'), { recursive: true });
  copyFileSync(chain.shim, join(root, 'shimx64.efi'));
  copyFileSync(chain.grub, join(root, 'grubx64.efi'));
  writeFileSync(join(root, 'grub', 'grub.cfg'), GRUB_ROOT_CONFIG);
}, { timeout: 300_000 });

after(async () => {
  await e2e?.stop();
}, { timeout: 60_000 });

/** tcpdump on the LAN's bridge: TFTP and Boot HTTP toward the server. */
async function capture(name: string): Promise<{ file: string; stop: () => Promise<void> }> {
  const file = join(e2e.dir, `${name}.pcap`);
  const [command, args] = inNamespace(e2e.lan.lan, 'tcpdump', ['-i', 'br0', '--immediate-mode', '-U', '-s', '256', '-w', file, `host ${SERVER_ADDRESS} and (udp or tcp port ${HTTP_PORT})`]);
  const p = new Running(`tcpdump ${name}`, command, args, join(e2e.dir, `tcpdump-${name}.log`), e2e.cleanup);
  await p.waitFor(/listening on br0/, 10_000);
  return {
    file,
    stop: async () => {
      await sleep(500); // not an ordering: lets tcpdump write the last packets of a finished boot
      await p.stop();
    },
  };
}

test('BootWiz builds linuxpe-x64 and folds a signed driver package into its overlay', { timeout: 900_000 }, async () => {
  // Debian's packages through apt (from the host's namespace), kept between runs.
  seedBootwizCache(e2e.site.data);
  await build({ dataDir: e2e.site.data, recipe: LINUXPE_X64 });
  keepBootwizCache(e2e.site.data);
  // The site's own build, published as the preboot package and offered as linuxpe-x64.
  const r = await e2e.site.cli(['bootwiz', 'build', ID], 600_000);
  // Under load the command's status poll (the control socket's default time limit) can time out
  // while the Interface is busy publishing; the build goes on, and Ready below is what counts.
  assert.ok(r.code === 0 || /interface\.sock: timed out/.test(r.stderr), `netboot bootwiz build failed:\n${r.stdout}\n${r.stderr}\n${e2e.site.logTail(40)}`);
  const first = await prebootReadyAbove(e2e.site.data, ID, 0);
  // A driver package: vxlan.ko as Debian ships it (signed: it loads under lockdown).
  await publishVxlanDriver(e2e, ID, DRIVER);
  await prebootReadyAbove(e2e.site.data, ID, first.seq);
  // The running server walks the Secure Boot chain for this machine to the image, every link there.
  await poll(`${MAC} to boot ${ID} through shim and GRUB`, 30_000, async () => {
    try {
      const x = await controlCall<{ chain: { cannotBoot: string | null; ends: string; steps: Array<{ path: string }> } | null }>(controlSocketPath(e2e.site.data, 'server'), 'GET', `/explain?mac=${MAC}&arch=efi-x64`, undefined, 2000);
      return x.chain !== null && x.chain.cannotBoot === null && x.chain.ends.includes(ID) && x.chain.steps.some((s) => s.path.endsWith('grub.cfg')) ? true : undefined;
    } catch {
      return undefined;
    }
  });
});

test('Secure Boot enforced: shim, GRUB, the signed kernel and both initrds to the LinuxPE banner; the same machine offered iPXE is refused', { timeout: 900_000 }, async () => {
  assert.ok(existsSync(SECURE.ovmf.code), 'install Debian\'s ovmf package');
  const cap = await capture('secureboot');
  const guest = await e2e.powerOn('secureboot', 'efi-native', MAC, undefined, SECURE);
  let text = '';
  try {
    await guest.waitFor(/==== netboot LinuxPE ====[\s\S]*?\n====\r?\n/, 600_000);
    // The kernel's own word on Secure Boot (LinuxPE boots `quiet`: ask on its console's shell).
    const at = guest.output.length;
    await guest.waitFor(/waiting for work: a shell on the console/, 60_000);
    // The markers are computed by the shell, so the terminal's echo of the line cannot match them.
    guest.child.stdin!.write('\necho SB-BEGIN-$((6*7)); dmesg | grep -i -e "secure boot" -e "locked down"; echo SB-END-$((6*7))\n');
    await guest.waitFor(/SB-END-42/, 120_000, at);
    text = plain(guest.output);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${e2e.diagnosis(guest)}`);
  } finally {
    await guest.stop();
    await cap.stop();
  }
  const banner = parseBanner(text);
  assert.ok(banner !== null, `banner not parsed:\n${text.slice(-1500)}`);
  assert.equal(banner.server, SERVER_ADDRESS, `the banner's site server:\n${banner.text}`);
  assert.equal(banner.mac, MAC);
  assert.equal(banner.drivers, DRIVER, `the overlay initrd was loaded:\n${banner.text}`);
  assert.match(text, new RegExp(`bootwiz: driver package ${DRIVER}: module vxlan: /sys/module/vxlan present`), 'the signed driver module loaded');
  const check = text.slice(text.lastIndexOf('SB-BEGIN-42'), text.lastIndexOf('SB-END-42'));
  assert.match(check, /Secure boot enabled/i, `the kernel saw Secure Boot on:\n${check}`);
  assert.match(check, /locked down from EFI Secure Boot/i, `lockdown:\n${check}`);

  // Which protocol carried what, from the capture.
  const seen = transfers(readPackets(cap.file), SERVER_ADDRESS, HTTP_PORT);
  const show = (ts: readonly Transfer[]): string => ts.map((t) => `${t.protocol} ${t.path} ${t.bytes} B`).join('\n');
  const image = (file: string): string => `netboot/${DASHED}/image/${ID}/${file}`;
  const size = (file: string): number => readFileSync(join(buildDir(e2e.site.data, ID), file)).length;
  // GRUB names the machine with colons ($net_default_mac): the same files.
  const tftp = seen.filter((t) => t.protocol === 'tftp').map((t) => ({ ...t, path: t.path.replace(/:/g, '-') }));
  // Whole files: from MTFTP's own record (a capture on a loaded machine may miss packets).
  const complete = e2e.site.supervisor.output.split('\n').filter((l) => l.includes('"msg":"transfer complete"'));
  // The base, the driver overlay, then the imaging agent's overlay (bootwiz/README.md).
  const initrds = [INITRD_FILE, OVERLAY_FILE, AGENT_FILE];
  for (const file of [KERNEL_FILE, ...initrds]) {
    assert.ok(tftp.some((t) => t.path === image(file)), `${file} over TFTP:\n${show(seen)}`);
    assert.ok(complete.some((l) => l.includes(`"file":"${image(file)}"`) && l.includes(`"bytes":${size(file)},`)), `${file} sent whole over TFTP`);
  }
  for (const file of ['shimx64.efi', 'grubx64.efi', 'grub/grub.cfg', `netboot/${DASHED}/grub.cfg`]) {
    assert.ok(tftp.some((t) => t.path === file), `${file} over TFTP:\n${show(seen)}`);
  }
  assert.deepEqual(seen.filter((t) => t.protocol === 'http'), [], 'nothing over Boot HTTP');
  // Every initrd on GRUB's one initrd line, as fetched: base first, then the overlays.
  const order = tftp.map((t) => t.path).filter((p) => p.includes('/image/'));
  assert.deepEqual([...new Set(order)], [image(KERNEL_FILE), ...initrds.map(image)]);

  // Now iPXE under shim's name: unsigned for Microsoft's keys, the firmware refuses it.
  copyFileSync(IPXE_BUILDS['efi-x64'], join(e2e.site.tftpRoot, 'shimx64.efi'));
  const again = await e2e.powerOn('secureboot-ipxe', 'efi-native', MAC, undefined, SECURE);
  try {
    await again.waitFor(/Access Denied/, 300_000);
    assert.doesNotMatch(again.output, /iPXE initialising|iPXE \d/);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${e2e.diagnosis(again)}`);
  } finally {
    await again.stop();
  }
});
