// A machine's inventory without capturing anything (sbs-v1 "Initial deployment": reported with
// `machine-registered`): the disk (model, serial, size, partition table, each partition's file
// system, label and used bytes, from metadata reads only) and the operating system on it, the
// same fields capture puts in a version's inventory (images/capture.ts), without `madeBy`. A blank
// disk (a new machine) has `table: null` and no partitions; a machine with no disk has
// `disk: null`. Reads only; writes nothing.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../platform/runtime/errors.ts';
import { openDisk } from './block-device.ts';
import { readPartitionTable } from './capture.ts';
import type { DiskInventory } from './disk-image.ts';
import { probeOs, type ProbePartition } from './os-probe.ts';
import { fsUsage } from './used-blocks.ts';
import { totalLength } from './extents.ts';

export interface MachineInventory {
  readonly disk: (Omit<DiskInventory['disk'], 'table'> & { readonly table: 'gpt' | 'mbr' | null; readonly path: string; readonly note?: string }) | null;
  readonly os: DiskInventory['os'];
}

/** Kernel block devices that are never the machine's fixed disk. */
const NOT_A_DISK = /^(loop|ram|zram|sr|fd|md|dm-|nbd|mtdblock|mmcblk\d+boot|mmcblk\d+rpmb)/;

/**
 * The job's `first` disk: the first fixed disk the kernel lists in /sys/block (in name order:
 * nvme0n1, sda, vda, ...), skipping removable and empty ones. Null when there is none.
 */
export async function firstFixedDisk(sysBlock = '/sys/block'): Promise<string | null> {
  let names: string[];
  try {
    names = (await readdir(sysBlock)).filter((n) => !NOT_A_DISK.test(n)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  } catch {
    return null;
  }
  for (const name of names) {
    const read = (f: string): Promise<string> => readFile(join(sysBlock, name, f), 'utf8').then((s) => s.trim(), () => '');
    if ((await read('removable')) === '1') continue;
    if (Number(await read('size')) === 0) continue;
    return `/dev/${name}`;
  }
  return null;
}

/** `/dev/sda` + 1 = `/dev/sda1`; `/dev/nvme0n1` + 1 = `/dev/nvme0n1p1` (the kernel's naming). */
export function partitionDevice(disk: string, n: number): string | null {
  if (!disk.startsWith('/dev/')) return null;
  return /\d$/.test(disk) ? `${disk}p${n}` : `${disk}${n}`;
}

/** The inventory of the disk at `path` (a block device or an image file). */
export async function inventoryOf(path: string, opts: { probeOs?: boolean } = {}): Promise<MachineInventory> {
  const disk = await openDisk(path, 'r');
  try {
    const base = { path, model: disk.model, serial: disk.serial, sizeBytes: disk.sizeBytes, sectorBytes: disk.sectorBytes };
    let table;
    try {
      table = await readPartitionTable(disk);
    } catch (err) {
      // A new machine's blank disk: no table to read.
      return { disk: { ...base, table: null, partitions: [], note: `no partition table: ${errorMessage(err)}` }, os: null };
    }
    const partitions = [];
    const probes: ProbePartition[] = [];
    for (const p of table.partitions) {
      const read = (o: number, l: number): Promise<Buffer> => disk.read(p.startBytes + o, Math.min(l, Math.max(0, p.sizeBytes - o))).then((b) => (b.length < l ? Buffer.concat([b, Buffer.alloc(l - b.length)]) : b));
      let u;
      try {
        u = await fsUsage(read, p.sizeBytes);
      } catch {
        u = null; // a damaged file system: listed, without its usage
      }
      partitions.push({ number: p.number, startBytes: p.startBytes, sizeBytes: p.sizeBytes, type: p.type, fs: u?.fs ?? null, label: u?.label ?? null, fsUuid: u?.fsUuid ?? null, usedBytes: u === null ? 0 : totalLength(u.used) });
      probes.push({ fs: u?.fs ?? null, startBytes: p.startBytes, device: disk.isBlockDevice ? partitionDevice(path, p.number) : null });
    }
    const os = opts.probeOs === false ? null : await probeOs(path, probes);
    return { disk: { ...base, table: table.kind, partitions }, os };
  } finally {
    await disk.close();
  }
}
