// Which disk a job means (sbs-v1 "Imaging jobs", `disk`): "first" is the first fixed disk the
// preboot kernel enumerates: of /sys/block, by name (digits as numbers: nvme0n1, sda, sdb), the first
// whole disk that is not removable, not a loop, RAM, zram, optical, floppy, device-mapper or md
// device, and not empty; a path under /dev/ is taken as it is; "serial:<serial>" is the disk whose
// serial (/sys/block/X/device/serial, /sys/block/X/serial for virtio) or WWID
// (/sys/block/X/device/wwid, /sys/block/X/wwid) is that text, or whose WWID ends with it.
// /sys and /dev are parameters (tests give a tree of their own). A name with "!" (cciss!c0d0) is
// the device path with "/" (/dev/cciss/c0d0), as the kernel writes it.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NetbootError } from '../../platform/runtime/errors.ts';

export interface FoundDisk {
  readonly path: string;
  /** The kernel's name (sda, nvme0n1), or null for a path the job named. */
  readonly name: string | null;
  readonly why: string;
}

const SKIP = /^(loop|ram|zram|sr|fd|dm-|md|nbd|mtdblock|mmcblk\d+boot|mmcblk\d+rpmb)/;

async function attr(path: string): Promise<string | null> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return null;
  }
}

async function blockNames(sysDir: string): Promise<string[]> {
  try {
    // Name order, digits as numbers (nvme0n1, sda, sdb, vda), as images/disk-inventory.ts's firstFixedDisk.
    return (await readdir(join(sysDir, 'block'))).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  } catch (err) {
    throw new NetbootError('NO_DISK', `cannot list ${join(sysDir, 'block')}: ${(err as Error).message}`);
  }
}

/** Why a /sys/block entry is not a candidate for "first", or null when it is one. */
async function notFixed(sysDir: string, name: string): Promise<string | null> {
  if (SKIP.test(name)) return 'not a disk';
  const dir = join(sysDir, 'block', name);
  if ((await attr(join(dir, 'removable'))) === '1') return 'removable';
  const size = Number((await attr(join(dir, 'size'))) ?? '0');
  if (!(size > 0)) return 'empty';
  return null;
}

export async function findDisk(spec: string, sysDir: string, devDir: string): Promise<FoundDisk> {
  if (spec.startsWith('/dev/')) return { path: spec, name: null, why: `the job names ${spec}` };
  const names = await blockNames(sysDir);
  if (spec === 'first' || spec === '') {
    const skipped: string[] = [];
    for (const name of names) {
      const why = await notFixed(sysDir, name);
      if (why === null) return { path: devPath(devDir, name), name, why: 'the first fixed disk' };
      skipped.push(`${name} (${why})`);
    }
    throw new NetbootError('NO_DISK', `no fixed disk found in ${join(sysDir, 'block')}${skipped.length > 0 ? `; skipped ${skipped.join(', ')}` : ''}`);
  }
  if (spec.startsWith('serial:')) {
    const want = spec.slice('serial:'.length);
    const seen: string[] = [];
    for (const name of names) {
      const dir = join(sysDir, 'block', name);
      const serials = [await attr(join(dir, 'device/serial')), await attr(join(dir, 'serial'))].filter((s): s is string => s !== null && s !== '');
      const wwids = [await attr(join(dir, 'device/wwid')), await attr(join(dir, 'wwid'))].filter((s): s is string => s !== null && s !== '');
      if (serials.includes(want) || wwids.some((w) => w === want || w.endsWith(` ${want}`) || w.endsWith(`-${want}`) || w.endsWith(`.${want}`))) {
        return { path: devPath(devDir, name), name, why: `serial ${want}` };
      }
      if (serials.length + wwids.length > 0) seen.push(`${name}: ${[...serials, ...wwids].join(' / ')}`);
    }
    throw new NetbootError('NO_DISK', `no disk with serial ${want}${seen.length > 0 ? ` (seen ${seen.join('; ')})` : ' (no disk reports a serial)'}`);
  }
  throw new NetbootError('NO_DISK', `disk ${JSON.stringify(spec)}: expected "first", a path under /dev/ or "serial:<serial>"`);
}

function devPath(devDir: string, name: string): string {
  return join(devDir, name.replaceAll('!', '/'));
}

/** The device node of partition n of a disk: sda -> sda1, nvme0n1 / loop0 / mmcblk0 -> ...p1. */
export function partitionPath(diskPath: string, n: number): string {
  return /\d$/.test(diskPath) ? `${diskPath}p${n}` : `${diskPath}${n}`;
}
