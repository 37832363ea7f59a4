// Source disks that boot, built on the host for the imaging tests: a Linux kernel and a tiny
// initrd whose /init (a static C program built here with gcc) prints a marker line on the serial
// console and powers the machine off.
//   BIOS: MBR, one active ext4 partition holding /boot (kernel, initrd, extlinux.conf), made
//         bootable with `extlinux --install` (ldlinux.sys and the partition's boot sector) and
//         syslinux's mbr.bin in the MBR's boot code (Debian: extlinux, syslinux-common).
//   UEFI: GPT, a FAT ESP whose \EFI\BOOT\BOOTX64.EFI is a unified kernel image (systemd's
//         linuxx64.efi.stub with .osrel, .cmdline, .linux and .initrd sections added by objcopy,
//         Debian: systemd-boot-efi, binutils), then an ext4 root. A UKI needs no boot loader
//         config and no second file: the firmware's removable-media path boots it directly,
//         which is what a freshly deployed disk without an NVRAM boot entry relies on.
// Both are checked in QEMU with no network (bootsDirectly) before the test images them.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cleanup } from '../e2e/harness/cleanup.ts';
import { OVMF_CODE, OVMF_VARS } from '../e2e/harness/guest.ts';
import { Running } from '../e2e/harness/processes.ts';
import { attach, detach, gptDisk, MiB, sh, sparseFile, type GptDisk } from './disks.ts';

export const MBR_BIN = '/usr/lib/syslinux/mbr/mbr.bin';
export const EFI_STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
export const CMDLINE = 'console=ttyS0,115200 loglevel=4 panic=-1';

/** Builds `dir/initrd.img`: a newc cpio holding /init, which prints `marker` and powers off. */
export function markerInitrd(dir: string, marker: string): string {
  if (!/^[\w .:-]+$/.test(marker)) throw new Error(`marker ${JSON.stringify(marker)}: letters, digits, space, . : - only`);
  const work = join(dir, 'initrd-root');
  mkdirSync(work, { recursive: true });
  const src = join(dir, 'init.c');
  writeFileSync(src, `#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
  static const char line[] = "\\n${marker}\\n";
  mkdir("/dev", 0755);
  mount("devtmpfs", "/dev", "devtmpfs", 0, 0);
  int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
  if (fd < 0) fd = 1;
  write(fd, line, strlen(line));
  fsync(fd);
  sync();
  reboot(RB_POWER_OFF);
  for (;;) pause();
}
`);
  sh('gcc', ['-static', '-Os', '-s', '-o', join(work, 'init'), src]);
  const out = join(dir, 'initrd.img');
  execFileSync('sh', ['-c', `cd "${work}" && echo init | cpio -o -H newc --quiet > "${out}"`], { timeout: 60_000 });
  return out;
}

/** MBR + one active ext4 partition booting `kernel` + `initrd` with extlinux; `sizeBytes` in all. */
export function extlinuxDisk(path: string, sizeBytes: number, kernel: string, initrd: string, scratch: string): { path: string; start: number; bytes: number } {
  sparseFile(path, sizeBytes);
  sh('sfdisk', ['-q', path], 'label: dos\nstart=2048, type=83, bootable\n');
  const p = JSON.parse(sh('sfdisk', ['-J', path])).partitiontable.partitions[0] as { start: number; size: number };
  const start = p.start * 512, bytes = p.size * 512;
  // syslinux 6.04 reads ext4 without 64bit. The files are copied through a mount, not with
  // mkfs -d: that makes zero blocks holes, and on 1 KiB blocks an 8 MiB kernel then needs an
  // extent tree, which extlinux reads back as "failed: I/O error".
  sh('mkfs.ext4', ['-q', '-F', '-L', 'boot', '-b', '4096', '-O', '^64bit,^metadata_csum', '-E', `offset=${start}`, path, `${bytes / 1024}k`]);
  const dev = attach(path, start, bytes);
  const mnt = mkdtempSync(join(scratch, 'mnt-'));
  try {
    sh('mount', [dev, mnt]);
    try {
      mkdirSync(join(mnt, 'boot', 'extlinux'), { recursive: true });
      sh('cp', ['--sparse=never', kernel, join(mnt, 'boot', 'vmlinuz')]);
      sh('cp', ['--sparse=never', initrd, join(mnt, 'boot', 'initrd.img')]);
      writeFileSync(join(mnt, 'boot', 'extlinux', 'extlinux.conf'), `SERIAL 0 115200\nDEFAULT marker\nPROMPT 0\nTIMEOUT 0\nLABEL marker\n  LINUX /boot/vmlinuz\n  INITRD /boot/initrd.img\n  APPEND ${CMDLINE}\n`);
      writeFileSync(join(mnt, 'marker.txt'), 'netboot bootable source disk\n');
      sh('extlinux', ['--install', join(mnt, 'boot', 'extlinux')]);
    } finally {
      sh('umount', [mnt]);
    }
  } finally {
    detach(dev);
    rmSync(mnt, { recursive: true, force: true });
  }
  // mbr.bin: the MBR's boot code (440 bytes at most), which chains to the active partition.
  execFileSync('dd', [`if=${MBR_BIN}`, `of=${path}`, 'bs=440', 'count=1', 'conv=notrunc'], { timeout: 30_000, stdio: 'ignore' });
  return { path, start, bytes };
}

/** A unified kernel image: the EFI stub with the os-release, command line, kernel and initrd as sections. */
export function unifiedKernelImage(out: string, kernel: string, initrd: string, scratch: string): string {
  const osrel = join(scratch, 'uki-os-release');
  const cmdline = join(scratch, 'uki-cmdline');
  writeFileSync(osrel, 'NAME="netboot marker"\nID=netboot-marker\n');
  writeFileSync(cmdline, `${CMDLINE}\0`);
  // Sections placed after the stub's own (its image ends below 0x20000), each 1 MiB aligned past the last.
  const align = (n: number) => Math.ceil(n / MiB) * MiB;
  const linuxAt = 0x100000;
  const initrdAt = align(linuxAt + statSync(kernel).size);
  sh('objcopy', [
    '--add-section', `.osrel=${osrel}`, '--change-section-vma', '.osrel=0x20000',
    '--add-section', `.cmdline=${cmdline}`, '--change-section-vma', '.cmdline=0x30000',
    '--add-section', `.linux=${kernel}`, '--change-section-vma', `.linux=0x${linuxAt.toString(16)}`,
    '--add-section', `.initrd=${initrd}`, '--change-section-vma', `.initrd=0x${initrdAt.toString(16)}`,
    EFI_STUB, out,
  ]);
  return out;
}

/** GPT: a FAT ESP (espMiB) with \EFI\BOOT\BOOTX64.EFI = a UKI of `kernel` + `initrd`, and an ext4 root. */
export function ukiDisk(path: string, sizeBytes: number, kernel: string, initrd: string, scratch: string, espMiB = 24): GptDisk {
  const tree = join(scratch, 'uki-tree');
  mkdirSync(tree, { recursive: true });
  writeFileSync(join(tree, 'marker.txt'), 'netboot bootable source disk\n');
  const disk = gptDisk(path, sizeBytes, tree, espMiB);
  const uki = unifiedKernelImage(join(scratch, 'BOOTX64.EFI'), kernel, initrd, scratch);
  sh('mcopy', ['-i', `${path}@@${disk.espStart}`, uki, '::/EFI/BOOT/BOOTX64.EFI']);
  return disk;
}

/** QEMU's arguments for a machine with no network and `disk` as its only (virtio) disk. */
export function offlineMachine(firmware: 'bios' | 'efi', disk: string, dir: string): string[] {
  const args = ['-accel', 'tcg', '-m', '512', '-nodefaults', '-vga', 'none', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot', '-nic', 'none'];
  if (firmware === 'efi') {
    for (const f of [OVMF_CODE, OVMF_VARS]) if (!existsSync(f)) throw new Error(`${f} missing: install Debian's ovmf package`);
    const vars = join(dir, `OVMF_VARS-offline-${Date.now()}.fd`);
    copyFileSync(OVMF_VARS, vars);
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`);
  }
  args.push('-drive', `file=${disk},if=virtio,format=raw`);
  return args;
}

/** Boots `disk` in QEMU with no network; resolves with the console once `marker` shows and QEMU has exited (the init powers off). */
export async function bootsDirectly(firmware: 'bios' | 'efi', disk: string, marker: string, dir: string, cleanup: Cleanup, timeoutMs = 300_000): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const q = new Running(`offline ${firmware} ${disk}`, 'qemu-system-x86_64', offlineMachine(firmware, disk, dir), join(dir, `console-offline-${firmware}-${Date.now()}.log`), cleanup);
  try {
    await q.waitFor(new RegExp(marker), timeoutMs);
    await Promise.race([q.exited, new Promise((_, rej) => setTimeout(() => rej(new Error('QEMU did not exit after the marker (no power-off)')), 60_000).unref())]);
    return q.output;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- console (last 2000 chars) ---\n${q.output.slice(-2000)}`);
  } finally {
    await q.stop();
  }
}
