// A source disk that boots still boots after capture and deploy, end to end in QEMU through
// `netboot run`. The test builds two bootable disks on the host (test/images/bootable-disks.ts)
// with the kernel the site's BootWiz fetched for LinuxPE and a tiny initrd whose /init prints a
// marker unique to this run and powers off: BIOS, MBR + extlinux on ext4 (syslinux's mbr.bin);
// UEFI, GPT + an ESP whose \EFI\BOOT\BOOTX64.EFI is a unified kernel image, + ext4. Each is first
// booted in QEMU with no network, to its marker (the fixture works). Then, per firmware: a guest
// with that disk is captured by a job (LinuxPE + the agent), a second guest with a blank, larger
// disk is deployed from the captured package by a job, the agent reboots it, the server's
// decision for its next boot is local (no offer), and its next power-on (iPXE gets no offer and
// gives up) boots the deployed disk to the marker. BIOS: SeaBIOS + iPXE; UEFI: OVMF + iPXE.
// Needs root and the e2e packages (test/e2e/README.md) plus extlinux, syslinux-common,
// systemd-boot-efi, binutils and gcc (static glibc).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { buildDir } from '../../bootwiz/build.ts';
import { KERNEL_FILE } from '../../bootwiz/recipe.ts';
import { type E2eSite, plain } from '../e2e/harness/e2e-site.ts';
import type { Firmware } from '../e2e/harness/guest.ts';
import { NBP_IMAGE, BOOT_FILES } from '../e2e/harness/second-stage.ts';
import { bootsDirectly, extlinuxDisk, markerInitrd, MBR_BIN, ukiDisk } from './bootable-disks.ts';
import { MiB, sh, sparseFile } from './disks.ts';
import { BOOT_MS, eventAt, eventsOf, JOB_MS, PREBOOT, startImagingSite, waitExit } from './qemu-imaging.ts';

const MAC = { biosSrc: '52:54:00:b0:07:01', biosDst: '52:54:00:b0:07:02', uefiSrc: '52:54:00:b0:07:03', uefiDst: '52:54:00:b0:07:04' };
const SRC_BYTES = 64 * MiB;
const DST_BYTES = 96 * MiB;
const TOKEN = randomBytes(6).toString('hex');
const MARKER = { bios: `NETBOOT-BOOTABLE-BIOS-${TOKEN}`, uefi: `NETBOOT-BOOTABLE-UEFI-${TOKEN}` };

let e2e: E2eSite;
const src = { bios: '', uefi: '' };
const times: string[] = [];

before(async () => {
  e2e = await startImagingSite('bootable', {
    config: { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES },
    clients: Object.entries(MAC).map(([k, mac]) => ({ mac, name: `BOOTABLE-${k.toUpperCase()}`, action: { type: 'local' } })),
    images: [NBP_IMAGE],
    predefinedComputers: [],
  });
  // The kernel BootWiz fetched (Debian's linux-image-amd64) for LinuxPE.
  const kernel = join(buildDir(e2e.site.data, PREBOOT), KERNEL_FILE);
  const scratch = (n: string) => {
    const d = join(e2e.dir, n);
    mkdirSync(d, { recursive: true });
    return d;
  };
  src.bios = extlinuxDisk(join(e2e.dir, 'bios-src.img'), SRC_BYTES, kernel, markerInitrd(scratch('bios-fixture'), MARKER.bios), scratch('bios-fixture')).path;
  src.uefi = ukiDisk(join(e2e.dir, 'uefi-src.img'), SRC_BYTES, kernel, markerInitrd(scratch('uefi-fixture'), MARKER.uefi), scratch('uefi-fixture')).path;
}, { timeout: 1_500_000 });

after(async () => {
  if (times.length > 0) process.stdout.write(`# times:\n${times.map((t) => `#   ${t}\n`).join('')}`);
  await e2e?.stop();
}, { timeout: 60_000 });

test('the source disks boot to their markers in QEMU with no network (BIOS: extlinux; UEFI: a unified kernel image)', { timeout: 600_000 }, async () => {
  const bios = plain(await bootsDirectly('bios', src.bios, MARKER.bios, join(e2e.dir, 'offline'), e2e.cleanup));
  assert.match(bios, /SYSLINUX/);
  const uefi = plain(await bootsDirectly('efi', src.uefi, MARKER.uefi, join(e2e.dir, 'offline'), e2e.cleanup));
  assert.match(uefi, /EFI stub/);
});

/**
 * A raw virtio disk. On OVMF it is given boot index 2, after the NIC's 1: once any device has a
 * boot index, OVMF connects and boots only the devices that have one (a disk without would not
 * even be mapped), and a real machine's boot order lists its disk after the network.
 */
const diskArgs = (disk: string, firmware: Firmware): string[] =>
  firmware === 'bios' ? ['-drive', `file=${disk},if=virtio,format=raw`] : ['-drive', `file=${disk},if=none,id=d0,format=raw`, '-device', 'virtio-blk-pci,drive=d0,bootindex=2'];

/** Powers on `mac` with `disk` (raw virtio), runs its job to the end, waits for the agent's reboot; returns the end event and the console. */
async function runJob(name: string, mac: string, jobId: string, disk: string, firmware: Firmware): Promise<{ event: Record<string, unknown>; console: string }> {
  const guest = await e2e.powerOn(name, firmware, mac, undefined, { extraArgs: ['-m', '1024', ...diskArgs(disk, firmware)] });
  try {
    const end = await eventAt(guest, `${mac}'s job to end`, () => eventsOf(e2e, mac).find((e) => e.jobId === jobId && (e.kind === 'job-completed' || e.kind === 'job-failed')), BOOT_MS + JOB_MS);
    assert.equal(end.event.kind, 'job-completed', JSON.stringify(end.event));
    times.push(`${name}: job-completed ${end.s.toFixed(1)} s after power-on`);
    await waitExit(guest);
    return { event: end.event, console: plain(guest.output) };
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${e2e.diagnosis(guest)}`);
  } finally {
    await guest.stop();
  }
}

async function sendJob(args: readonly string[]): Promise<void> {
  const r = await e2e.site.cli(['job', ...args, '--preboot', PREBOOT, '--then', 'local'], 30_000);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
}

/** Capture `source` from one guest, deploy it to a second guest's blank larger disk; returns that disk. */
async function captureAndDeploy(kind: 'bios' | 'uefi', firmware: Firmware): Promise<string> {
  const pkg = `bootable-${kind}`;
  const capId = `b0070000-0000-4000-8000-0000000000${kind === 'bios' ? 'c1' : 'c2'}`;
  const depId = `b0070000-0000-4000-8000-0000000000${kind === 'bios' ? 'd1' : 'd2'}`;
  const [srcMac, dstMac] = kind === 'bios' ? [MAC.biosSrc, MAC.biosDst] : [MAC.uefiSrc, MAC.uefiDst];
  await sendJob(['capture', '--mac', srcMac, '--package', pkg, '--job-id', capId]);
  await e2e.site.waitDecision(srcMac, firmware === 'bios' ? 'bios' : 'efi-x64', true, (x) => x.offer !== undefined, 30_000);
  const cap = await runJob(`${kind}-capture`, srcMac, capId, src[kind], firmware);
  assert.equal((cap.event.result as { inventory: { disk: { table: string } } }).inventory.disk.table, kind === 'bios' ? 'mbr' : 'gpt', JSON.stringify(cap.event));
  await sendJob(['deploy', '--mac', dstMac, '--package', pkg, '--job-id', depId]);
  await e2e.site.waitDecision(dstMac, firmware === 'bios' ? 'bios' : 'efi-x64', true, (x) => x.offer !== undefined, 30_000);
  const dst = sparseFile(join(e2e.dir, `${kind}-dst.img`), DST_BYTES);
  const dep = await runJob(`${kind}-deploy`, dstMac, depId, dst, firmware);
  assert.match(dep.console, /partition \d+ grown from [\d.]+ MB to [\d.]+ MB: resize2fs/);
  const end = (f: string) => Math.max(...(JSON.parse(sh('sfdisk', ['-J', f])).partitiontable.partitions as { start: number; size: number }[]).map((p) => (p.start + p.size) * 512));
  assert.ok(end(dst) > SRC_BYTES, `the last partition ends past the source disk's size (${end(dst)} bytes)`);
  // The job's `then`: the server makes no offer, so the firmware goes on to the disk.
  await e2e.site.waitDecision(dstMac, firmware === 'bios' ? 'bios' : 'efi-x64', true, (x) => x.offer === undefined && /action local/.test(x.none ?? ''), 30_000);
  return dst;
}

/** The next power-on of `mac` with the deployed disk: the network gives it nothing, the disk boots to the marker. */
async function bootsAfterDeploy(name: string, mac: string, disk: string, firmware: Firmware, marker: string): Promise<string> {
  const guest = await e2e.powerOn(name, firmware, mac, undefined, { extraArgs: ['-m', '512', ...diskArgs(disk, firmware)] });
  try {
    // OVMF tries every network boot option of the NIC first (iPXE, then its own PXE and HTTP
    // Boot over IPv4 and IPv6, each waiting for offers that do not come): minutes under TCG.
    const seen = await guest.waitFor(new RegExp(marker), 600_000);
    times.push(`${name}: marker ${(seen.at / 1000).toFixed(1)} s after power-on`);
    const text = plain(guest.output);
    // iPXE asked and got no offer (the job's `then` is local); the firmware went on to the disk.
    assert.match(text, /Nothing to boot/);
    assert.doesNotMatch(text, /netboot LinuxPE|netboot agent/);
    return text;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${e2e.diagnosis(guest)}`);
  } finally {
    await guest.stop();
  }
}

function bootCode(path: string): Buffer {
  const b = Buffer.alloc(440);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, b, 0, 440, 0);
  } finally {
    closeSync(fd);
  }
  return b;
}

test('BIOS (SeaBIOS + iPXE): an extlinux disk captured by a job and deployed by a job to a larger blank disk boots to its marker', { timeout: 1_500_000 }, async () => {
  const dst = await captureAndDeploy('bios', 'bios');
  const mbr = readFileSync(MBR_BIN);
  assert.ok(bootCode(dst).subarray(0, mbr.length).equals(mbr.subarray(0, Math.min(mbr.length, 440))), 'the MBR boot code is mbr.bin');
  const text = await bootsAfterDeploy('bios-next', MAC.biosDst, dst, 'bios', MARKER.bios);
  assert.match(text, /Booting from Hard Disk[\s\S]*SYSLINUX/);
});

test('UEFI (OVMF + iPXE): a disk whose ESP holds a unified kernel image, captured and deployed by jobs, boots to its marker', { timeout: 1_500_000 }, async () => {
  const dst = await captureAndDeploy('uefi', 'efi-ipxe');
  const text = await bootsAfterDeploy('uefi-next', MAC.uefiDst, dst, 'efi-ipxe', MARKER.uefi);
  assert.match(text, /EFI stub/);
});
