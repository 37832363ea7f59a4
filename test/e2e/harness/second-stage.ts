// The TFTP root the guests boot from: Debian's iPXE builds as the firmware boot programs, and the
// second stage, an iPXE script that prints a marker line with this run's token, the MAC iPXE
// booted from and its platform, then waits. The marker on a guest's console is the proof of a boot.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Arch, Image } from '../../../sbs/types.ts';

export const IPXE_BUILDS = { bios: '/usr/lib/ipxe/undionly.kpxe', 'efi-x64': '/usr/lib/ipxe/snponly.efi' } as const;
/** Config bootFiles: the iPXE builds, at the top of the TFTP root. */
export const BOOT_FILES: Partial<Record<Arch, string>> = { bios: 'undionly.kpxe', 'efi-x64': 'snponly.efi' };

/** The second stage's folder in the TFTP root (plain files: packaged images are served only from Ready package versions). */
export const STAGE2_DIR = 'stage2';
export const STAGE2_FILE = 'stage2/second-stage.ipxe';

/**
 * The second stage as an `nbp` image: iPXE chains its boot file. Only for clients that already
 * run iPXE when they ask (the NIC ROMs): a firmware without iPXE is handed an nbp's boot file
 * directly, and an iPXE script is no program for it.
 */
export const NBP_IMAGE: Image = { id: 'e2e-stage2-nbp', name: 'E2E second stage (nbp)', arch: ['bios', 'efi-x64'], type: 'nbp', bootFile: STAGE2_FILE };

/**
 * The same script as a `linux` image's kernel: iPXE's `kernel` + `boot` run any image it can
 * execute, a script included, so every firmware goes firmware -> iPXE build -> script -> this,
 * without a Linux kernel to boot under TCG.
 */
export const LINUX_IMAGE: Image = { id: 'e2e-stage2-linux', name: 'E2E second stage (linux)', arch: ['bios', 'efi-x64'], type: 'linux', kernel: STAGE2_FILE };

export interface TftpRoot {
  readonly root: string;
  readonly token: string;
}

export function makeTftpRoot(root: string): TftpRoot {
  const token = randomBytes(6).toString('hex');
  mkdirSync(join(root, STAGE2_DIR), { recursive: true });
  for (const [arch, from] of Object.entries(IPXE_BUILDS)) {
    if (!existsSync(from)) throw new Error(`${from} missing: install Debian's ipxe package`);
    copyFileSync(from, join(root, BOOT_FILES[arch as Arch]!));
  }
  writeFileSync(join(root, STAGE2_FILE), ['#!ipxe', `echo NETBOOT-SECOND-STAGE ${token} \${net0/mac} \${platform}`, 'sleep 3600', ''].join('\n'));
  return { root, token };
}

/** The marker line a given machine prints once it runs the second stage. */
export function markerPattern(token: string, mac: string): RegExp {
  return new RegExp(`NETBOOT-SECOND-STAGE ${token} ${mac.toLowerCase()} (pcbios|efi)`);
}

/** What iPXE prints when it got an address but no boot file: the machine goes on to local boot. */
export const NOTHING_TO_BOOT = /Nothing to boot|No more network devices/;
