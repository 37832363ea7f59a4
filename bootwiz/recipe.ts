// What a preboot environment is made of: a recipe names the Debian packages, the kernel modules
// to load and the kernel command line. The build (build.ts) turns a recipe plus a lock file into
// a kernel and an initrd; the recipe is the place a driver overlay will be named later.
import type { Arch, Image } from '../sbs/types.ts';
import type { DriverArch, DriverOs } from './drivers.ts';

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

export const LINUXPE_X64: Recipe = {
  id: 'linuxpe-x64',
  name: 'LinuxPE x64',
  arch: ['bios', 'efi-x64'],
  kernelPackage: 'linux-image-amd64',
  busyboxPackage: 'busybox-static',
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

/** The SBS image a standalone site offers for a built recipe (served from the package). */
export function prebootImage(recipe: Recipe): Image {
  return {
    id: recipe.id, name: recipe.name, arch: recipe.arch, type: 'linux',
    kernel: KERNEL_FILE, initrd: [INITRD_FILE, OVERLAY_FILE], cmdline: recipe.cmdline, package: recipe.id,
  };
}
