// The inventory's Windows: an NTFS test disk (disks.ts mbrNtfsDisk) given Windows\System32\config
// \SOFTWARE (a hive from test/registry/regf-writer.ts, checked there against libhivex) by wimlib's
// wimapply, which writes a directory tree into an NTFS volume without mounting it. Capture's
// inventory says family windows, name "Windows 11 Pro" (ProductName says "Windows 10 Pro"; build
// 22631 is Windows 11), version "23H2 (build 22631.2861)", edition "Professional"; the same on a
// 4Kn disk; a corrupted hive leaves name "Windows" and the rest null, and the capture goes on.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDisk } from '../../images/block-device.ts';
import { captureDisk } from '../../images/capture.ts';
import { MemoryChunkStore } from '../../images/chunk-store.ts';
import type { DiskInventory } from '../../images/disk-image.ts';
import { softwareKeys } from '../registry/software-hive.ts';
import { writeHive } from '../registry/regf-writer.ts';
import { attach, detach, mbrNtfsDisk, MiB, sh } from './disks.ts';
import { attach4k, mbrNtfsDisk4k } from './disks-4k.ts';

let dir: string;
const hive = writeHive(softwareKeys());

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'os-probe-win-'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** Windows\System32\config\SOFTWARE (and a marker) into the NTFS volume on `dev`. */
function applyWindows(dev: string, software: Buffer, name: string): void {
  const tree = join(dir, `tree-${name}`);
  mkdirSync(join(tree, 'Windows', 'System32', 'config'), { recursive: true });
  writeFileSync(join(tree, 'Windows', 'System32', 'config', 'SOFTWARE'), software);
  writeFileSync(join(tree, 'Windows', 'System32', 'ntoskrnl.exe'), 'not really\n');
  const wim = join(dir, `${name}.wim`);
  sh('wimcapture', [tree, wim, '--no-acls']);
  sh('wimapply', [wim, '1', dev]);
}

/** Captures the disk on `diskDev`, its partition 1 probed through `partDev`. */
async function inventory(diskDev: string, partDev: string): Promise<DiskInventory> {
  const disk = await openDisk(diskDev, 'r');
  try {
    return (await captureDisk(disk, { sink: new MemoryChunkStore(), madeBy: 'capture', partitionDevice: (n) => (n === 1 ? partDev : null) })).image.inventory;
  } finally {
    await disk.close();
  }
}

async function withWindowsDisk(name: string, software: Buffer, sector4k: boolean): Promise<DiskInventory> {
  const path = join(dir, `${name}.img`);
  const d = sector4k ? mbrNtfsDisk4k(path, 48 * MiB, new Map(), dir).parts[0]! : (({ start, bytes }) => ({ start, bytes }))(mbrNtfsDisk(path, 48 * MiB, new Map(), dir));
  const at = (file: string, offset = 0, size = 0) => (sector4k ? attach4k(file, offset, size) : attach(file, offset, size));
  const disk = at(path);
  const part = at(path, d.start, d.bytes);
  try {
    applyWindows(part, software, name);
    return await inventory(disk, part);
  } finally {
    detach(part);
    detach(disk);
  }
}

test('an NTFS disk holding Windows 11 Pro: the inventory names it, its version and its edition from the SOFTWARE hive', async () => {
  const inv = await withWindowsDisk('win11', hive, false);
  assert.deepEqual(inv.os, { family: 'windows', name: 'Windows 11 Pro', version: '23H2 (build 22631.2861)', edition: 'Professional' });
  assert.deepEqual(inv.disk.partitions.map((p) => [p.fs, p.label]), [['ntfs', 'WIN']]);
});

test('the same on a 4Kn disk (4096-byte sectors and MFT records)', async () => {
  const inv = await withWindowsDisk('win11-4k', hive, true);
  assert.equal(inv.disk.sectorBytes, 4096);
  assert.deepEqual(inv.os, { family: 'windows', name: 'Windows 11 Pro', version: '23H2 (build 22631.2861)', edition: 'Professional' });
});

test('a corrupted SOFTWARE hive: still windows, name "Windows", version and edition null; the capture goes on', async () => {
  const bad = Buffer.from(hive);
  bad.fill(0xee, 4096 + 32, bad.length); // every cell gone
  const inv = await withWindowsDisk('win-bad', bad, false);
  assert.deepEqual(inv.os, { family: 'windows', name: 'Windows', version: null, edition: null });
});
