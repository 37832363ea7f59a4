// A disk's model and serial from sysfs, where lsblk is missing (the preboot environment):
// device/model, device/serial (NVMe), serial (virtio-blk); none for a loop device.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sysfsIdentity } from '../../images/block-device.ts';

test('sysfsIdentity: NVMe model and serial under device/, virtio-blk serial beside it, nothing for a loop device', async () => {
  const sys = mkdtempSync(join(tmpdir(), 'sysfs-'));
  try {
    const put = (rel: string, text: string): void => {
      mkdirSync(join(sys, rel, '..'), { recursive: true });
      writeFileSync(join(sys, rel), text);
    };
    put('class/block/nvme0n1/device/model', 'QEMU NVMe Ctrl                          \n');
    put('class/block/nvme0n1/device/serial', 'NVME0001            \n');
    put('class/block/vda/serial', 'CAPSRC01\n');
    put('class/block/sda/device/model', 'QEMU HARDDISK   \n');
    mkdirSync(join(sys, 'class/block/loop0'), { recursive: true });
    assert.deepEqual(await sysfsIdentity('nvme0n1', sys), { model: 'QEMU NVMe Ctrl', serial: 'NVME0001' });
    assert.deepEqual(await sysfsIdentity('vda', sys), { model: null, serial: 'CAPSRC01' });
    assert.deepEqual(await sysfsIdentity('sda', sys), { model: 'QEMU HARDDISK', serial: null });
    assert.deepEqual(await sysfsIdentity('loop0', sys), { model: null, serial: null });
    assert.deepEqual(await sysfsIdentity('nosuch', sys), { model: null, serial: null });
  } finally {
    rmSync(sys, { recursive: true, force: true });
  }
});
