// Secure Boot through `netboot run`: OVMF with Secure Boot enforced (Microsoft keys enrolled)
// boots Debian's signed shim over PXE, shim loads Debian's signed network GRUB beside it, GRUB
// reads grub/grub.cfg and then this machine's generated netboot/<mac>/grub.cfg, and loads the
// Debian-signed kernel and an initrd from us: the kernel says Secure Boot is on and the
// initrd's banner carries the site server. Then the same machine, offered iPXE (unsigned by
// Microsoft) under the same name, is refused by the firmware: proof that Secure Boot was on.
//
// GRUB 2.06 takes its TFTP server from the ordinary DHCP server's ACK (siaddr), not from our
// proxy offer (docs: the one change on the site's DHCP server): here dnsmasq gets
// `--dhcp-boot=,,SERVER`. Debian packages are fetched with `apt-get download` into
// /var/cache/netboot-test/httpboot (kept between runs).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeCpio } from '../../bootwiz/cpio.ts';
import { GRUB_ROOT_CONFIG } from '../../boot/http-grub-config.ts';
import { E2eSite } from '../e2e/harness/e2e-site.ts';
import { SERVER_ADDRESS } from '../e2e/harness/network.ts';
import { IPXE_BUILDS } from '../e2e/harness/second-stage.ts';

const CACHE = '/var/cache/netboot-test/httpboot';
const MAC = '52:54:00:5b:00:01';
const IMAGE = { id: 'sb-linux', name: 'Signed Linux', arch: ['efi-x64'], type: 'linux', kernel: 'sb/vmlinuz', initrd: ['sb/initrd.img'], cmdline: 'console=ttyS0' } as const;
const SECURE = {
  ovmf: { code: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' },
  extraArgs: ['-machine', 'q35,smm=on', '-global', 'driver=cfi.pflash01,property=secure,value=on', '-m', '512'],
};

let e2e: E2eSite;
let files: { shim: string; grub: string; kernel: string; busybox: string };

/** The packages' files, downloaded and unpacked once into CACHE. */
function debianFiles(): typeof files {
  mkdirSync(join(CACHE, 'x'), { recursive: true });
  const download = (pkg: string): string => {
    const have = readdirSync(CACHE).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (have !== undefined) return join(CACHE, have);
    execFileSync('apt-get', ['download', '-q', pkg], { cwd: CACHE, stdio: 'ignore' });
    return join(CACHE, readdirSync(CACHE).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))!);
  };
  // linux-image-amd64 names the versioned (signed) image package.
  const meta = execFileSync('dpkg-deb', ['-f', download('linux-image-amd64'), 'Depends']).toString();
  const image = /linux-image-[0-9][^ ,(]*-amd64/.exec(meta)![0];
  for (const pkg of ['shim-signed', 'grub-efi-amd64-signed', image, 'busybox-static']) execFileSync('dpkg-deb', ['-x', download(pkg), join(CACHE, 'x')]);
  const boot = join(CACHE, 'x', 'boot');
  const vmlinuz = readdirSync(boot).find((f) => f.startsWith('vmlinuz-'))!;
  return {
    shim: join(CACHE, 'x/usr/lib/shim/shimx64.efi.signed'),
    grub: join(CACHE, 'x/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'),
    kernel: join(boot, vmlinuz),
    busybox: join(CACHE, 'x/bin/busybox'),
  };
}

/** An initrd whose /init prints a banner with the kernel command line, then powers off. */
function bannerInitrd(busybox: string): Buffer {
  const init = [
    '#!/bin/busybox sh',
    '/bin/busybox mount -t proc proc /proc',
    'echo "NETBOOT-SB-BANNER $(/bin/busybox cat /proc/cmdline)"',
    '/bin/busybox poweroff -f',
    '',
  ].join('\n');
  return writeCpio([
    { path: 'bin', type: 'dir' },
    { path: 'bin/busybox', type: 'file', data: readFileSync(busybox), mode: 0o755 },
    { path: 'bin/sh', type: 'symlink', target: 'busybox' },
    { path: 'dev', type: 'dir' },
    { path: 'dev/console', type: 'chardev', major: 5, minor: 1, mode: 0o600 },
    { path: 'proc', type: 'dir' },
    { path: 'init', type: 'file', data: Buffer.from(init), mode: 0o755 },
  ]);
}

before(async () => {
  files = debianFiles();
  e2e = await E2eSite.start('secureboot', {
    config: { respond: 'all', unknown: { type: 'local' }, bootFiles: { 'efi-x64': 'shimx64.efi' } },
    clients: [{ mac: MAC, name: 'SB-EFI', action: { type: 'boot', image: IMAGE.id, once: false } }],
    images: [IMAGE],
    predefinedComputers: [],
  }, { dhcpArgs: [`--dhcp-boot=,,${SERVER_ADDRESS}`] });
  const root = e2e.site.tftpRoot;
  mkdirSync(join(root, 'grub'), { recursive: true });
  mkdirSync(join(root, 'sb'), { recursive: true });
  copyFileSync(files.shim, join(root, 'shimx64.efi'));
  copyFileSync(files.grub, join(root, 'grubx64.efi'));
  writeFileSync(join(root, 'grub', 'grub.cfg'), GRUB_ROOT_CONFIG);
  copyFileSync(files.kernel, join(root, 'sb', 'vmlinuz'));
  writeFileSync(join(root, 'sb', 'initrd.img'), bannerInitrd(files.busybox));
}, { timeout: 300_000 });

after(async () => {
  await e2e?.stop();
}, { timeout: 60_000 });

test('Secure Boot enforced: shim, GRUB, the signed kernel to the banner; the same machine offered iPXE is refused', { timeout: 600_000 }, async () => {
  assert.ok(existsSync(SECURE.ovmf.code), 'install Debian\'s ovmf package');
  const guest = await e2e.powerOn('secureboot', 'efi-native', MAC, undefined, SECURE);
  try {
    // The whole line: the console streams it in pieces.
    const seen = await guest.waitFor(/NETBOOT-SB-BANNER [^\r\n]*BOOTIF=01-[0-9a-f-]{17}/, 400_000);
    assert.match(seen.match[0], new RegExp(`netboot\\.server=${SERVER_ADDRESS.replace(/\./g, '\\.')}`));
    assert.match(guest.output, /Secure boot enabled|locked down from EFI Secure Boot/i, 'the kernel saw Secure Boot on');
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${e2e.diagnosis(guest)}`);
  } finally {
    await guest.stop();
  }
  // GRUB fetched the kernel from us (over TFTP: Boot HTTP is not on port 80 here).
  assert.match(e2e.site.supervisor.output, /"file":"\/?netboot\/52-54-00-5b-00-01\/image\/sb-linux\/sb\/vmlinuz","msg":"transfer complete"/);
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
