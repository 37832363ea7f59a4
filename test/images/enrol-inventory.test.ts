// The inventory the agent posts with its choice (images/disk-inventory.ts), from a real partitioned
// disk image (GPT: a FAT ESP and an ext4 root holding /etc/os-release), a blank disk, and the
// choice of the `first` disk from a made-up /sys/block.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstFixedDisk, inventoryOf, partitionDevice } from '../../images/disk-inventory.ts';
import { gptDisk, MiB, sparseFile } from './disks.ts';

test('a partitioned disk: table, partitions with file systems and used bytes, and the OS', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'enrol-inv-'));
  try {
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'etc'), { recursive: true });
    writeFileSync(join(tree, 'marker.txt'), 'x');
    writeFileSync(join(tree, 'etc/os-release'), 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\n');
    const disk = gptDisk(join(dir, 'disk.img'), 64 * MiB, tree);
    const inv = await inventoryOf(disk.path);
    assert.ok(inv.disk !== null);
    assert.equal(inv.disk.table, 'gpt');
    assert.equal(inv.disk.sizeBytes, 64 * MiB);
    assert.deepEqual(inv.disk.partitions.map((p) => [p.number, p.startBytes, p.fs, p.label]), [[1, disk.espStart, 'fat16', 'ESP'], [2, disk.rootStart, 'ext4', 'root']]);
    assert.ok(inv.disk.partitions.every((p) => p.usedBytes > 0 && p.usedBytes < p.sizeBytes));
    assert.deepEqual(inv.os, { family: 'linux', name: 'Debian GNU/Linux', version: '12', edition: null });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a new machine\'s blank disk: no table, no partitions, no OS', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'enrol-inv-'));
  try {
    const inv = await inventoryOf(sparseFile(join(dir, 'blank.img'), 8 * MiB));
    assert.equal(inv.disk?.table, null);
    assert.deepEqual(inv.disk?.partitions, []);
    assert.match(inv.disk?.note ?? '', /^no partition table/);
    assert.equal(inv.os, null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the `first` disk: the first fixed, non-empty disk in name order; partitions named as the kernel names them', async () => {
  const sys = mkdtempSync(join(tmpdir(), 'enrol-sys-'));
  try {
    const dev = (name: string, removable: string, size: string): void => {
      mkdirSync(join(sys, name));
      writeFileSync(join(sys, name, 'removable'), `${removable}\n`);
      writeFileSync(join(sys, name, 'size'), `${size}\n`);
    };
    dev('loop0', '0', '100');
    dev('sr0', '1', '100');
    dev('sda', '1', '100'); // a USB stick
    dev('sdb', '0', '0'); // a card reader with no card
    dev('sdc', '0', '2048');
    dev('vda', '0', '2048');
    assert.equal(await firstFixedDisk(sys), '/dev/sdc');
    assert.equal(await firstFixedDisk(join(sys, 'none')), null);
  } finally {
    rmSync(sys, { recursive: true, force: true });
  }
  assert.equal(partitionDevice('/dev/sda', 2), '/dev/sda2');
  assert.equal(partitionDevice('/dev/nvme0n1', 1), '/dev/nvme0n1p1');
});
