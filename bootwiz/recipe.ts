// What a preboot environment is made of: a recipe names the Debian packages, the kernel modules
// to load and the kernel command line. The build (build.ts) turns a recipe plus a lock file into
// a kernel and an initrd; the recipe is the place a driver overlay will be named later.
import type { Arch, Image } from '../sbs/types.ts';
import type { DriverArch, DriverOs } from './drivers.ts';
import type { UserlandPart } from './userland.ts';

export interface Recipe {
  /** Package id and SBS image id (`linuxpe-x64`). */
  readonly id: string;
  /** The SBS image's name (shown by iPXE). */
  readonly name: string;
  readonly arch: readonly Arch[];
  /** Debian package whose `linux-image-*` dependency is the kernel (a metapackage). */
  readonly kernelPackage: string;
  /** busybox-static: one static binary, no shared libraries to follow. */
  readonly busyboxPackage: string;
  /**
   * Dynamically linked programs and data from Debian's packages (the JavaScript runtime for the
   * imaging agent, file system tools); their shared libraries are found by following DT_NEEDED
   * through these packages (userland.ts), so every package a library comes from is listed here.
   */
  readonly userland: readonly UserlandPart[];
  /** Modules loaded at boot, in this order, each after its dependencies (worked out at build time). */
  readonly modules: readonly string[];
  /** The kernel command line (iPXE appends the site server, the MAC and initrd=). */
  readonly cmdline: string;
  /** The driver packages' OS and arch this preboot takes (driver.json's `os` and `arch`). */
  readonly driverOs: DriverOs;
  readonly driverArch: DriverArch;
  /** Driver packages folded into the overlay: `all` of its OS and arch, or these ids. */
  readonly drivers: 'all' | readonly string[];
}

/** Storage and network hardware admins meet, and the file systems ext4 and vfat. */
export const LINUXPE_MODULES = [
  'virtio_pci', 'virtio_net', 'virtio_blk', 'virtio_scsi',
  'e1000', 'e1000e', 'igb', 'ixgbe', 'r8169', 'tg3', 'bnx2',
  'ata_piix', 'ahci', 'nvme', 'sd_mod', 'xhci_pci', 'usb_storage', 'mmc_block', 'sdhci_pci',
  'ext4', 'vfat', 'nls_cp437', 'nls_iso8859_1',
] as const;

/**
 * Node.js for the imaging agent (Debian bookworm's nodejs 18, built against shared libraries),
 * the builtins Debian keeps outside libnode (undici for fetch, cjs-module-lexer, acorn), the
 * tools the agent calls to grow file systems (resize2fs, e2fsck, debugfs, ntfsresize), and the
 * packages their libraries come from. blkdiscard is a busybox applet.
 */
export const LINUXPE_USERLAND: readonly UserlandPart[] = [
  { package: 'nodejs', files: ['usr/bin/node'] },
  { package: 'node-undici', files: ['usr/share/nodejs/undici/undici-fetch.js'] },
  { package: 'node-cjs-module-lexer', files: ['usr/share/nodejs/cjs-module-lexer/lexer.js', 'usr/share/nodejs/cjs-module-lexer/dist/lexer.js'] },
  { package: 'node-acorn', files: ['usr/share/nodejs/acorn/dist/acorn.js', 'usr/share/nodejs/acorn-walk/dist/walk.js'] },
  { package: 'e2fsprogs', files: ['sbin/resize2fs', 'sbin/e2fsck', 'sbin/debugfs'] },
  { package: 'ntfs-3g', files: ['sbin/ntfsresize'] },
  ...['libnode108', 'libicu72', 'libuv1', 'libssl3', 'libc-ares2', 'libbrotli1', 'libnghttp2-14', 'zlib1g', 'libstdc++6', 'libgcc-s1', 'libc6',
    'libext2fs2', 'libcom-err2', 'libss2', 'libblkid1', 'libuuid1', 'libntfs-3g89'].map((p) => ({ package: p })),
];

export const LINUXPE_X64: Recipe = {
  id: 'linuxpe-x64',
  name: 'LinuxPE x64',
  arch: ['bios', 'efi-x64'],
  kernelPackage: 'linux-image-amd64',
  busyboxPackage: 'busybox-static',
  userland: LINUXPE_USERLAND,
  modules: LINUXPE_MODULES,
  // ttyS0 last: it becomes /dev/console, where init's output and the shell go; tty0 gets the
  // kernel's messages and init prints the banner there too. 115200: the kernel's default is 9600.
  cmdline: 'console=tty0 console=ttyS0,115200n8 quiet',
  driverOs: 'linux',
  driverArch: 'x64',
  drivers: 'all',
};

export const RECIPES: Readonly<Record<string, Recipe>> = { [LINUXPE_X64.id]: LINUXPE_X64 };

/** The file names inside a build folder and the published package. */
export const KERNEL_FILE = 'vmlinuz';
export const INITRD_FILE = 'initrd.img';
export const LOCK_FILE = 'lock.json';
export const BUILD_INFO_FILE = 'build.json';
/** The driver overlay initrd (bootwiz/drivers.ts) and what it holds. */
export const OVERLAY_FILE = 'drivers.img';
export const OVERLAY_INFO_FILE = 'drivers.json';
/** The agent overlay initrd (bootwiz/agent.ts): /opt/agent/, rebuilt when the agent's bundle changes. */
export const AGENT_FILE = 'agent.img';
export const AGENT_INFO_FILE = 'agent.json';

/** The SBS image a standalone site offers for a built recipe (served from the package). */
export function prebootImage(recipe: Recipe): Image {
  return {
    id: recipe.id, name: recipe.name, arch: recipe.arch, type: 'linux',
    kernel: KERNEL_FILE, initrd: [INITRD_FILE, OVERLAY_FILE, AGENT_FILE], cmdline: recipe.cmdline, package: recipe.id,
  };
}
