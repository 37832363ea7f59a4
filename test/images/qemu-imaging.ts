// Shared pieces of the QEMU imaging tests: a site (through `netboot run`, guests reach TCP 490)
// that has built LinuxPE with the real agent, guests with raw virtio disks, and waits for the
// events the management stand-in receives. Needs root and the e2e packages (test/e2e/README.md).
import assert from 'node:assert/strict';
import { build } from '../../bootwiz/build.ts';
import { LINUXPE_X64 } from '../../bootwiz/recipe.ts';
import { E2eSite, plain } from '../e2e/harness/e2e-site.ts';
import type { Firmware } from '../e2e/harness/guest.ts';
import type { PxeEvent } from '../e2e/harness/management-stand-in.ts';
import { poll } from '../e2e/harness/netboot-site.ts';
import type { Running } from '../e2e/harness/processes.ts';

export const PREBOOT = LINUXPE_X64.id;
/** Power-on to the agent's first line: iPXE, a 60 MB initrd over TFTP/HTTP and Node under TCG. */
export const BOOT_MS = 420_000;
export const JOB_MS = 300_000;

/** Starts the site and builds LinuxPE (apt from the host's namespace fills the cache first). */
export async function startImagingSite(name: string, answer: unknown): Promise<E2eSite> {
  const e2e = await E2eSite.start(name, answer, { interfaceBind: '0.0.0.0' });
  await build({ dataDir: e2e.site.data, recipe: LINUXPE_X64 });
  const b = await e2e.site.cli(['bootwiz', 'build', PREBOOT], 600_000);
  // On a loaded machine the CLI's control call can time out while the initrd is written: the
  // build goes on in the Interface; its status says when it is built.
  if (b.code !== 0) assert.match(b.stderr, /timed out/, `${b.stdout}\n${b.stderr}\n${e2e.site.logTail(40)}`);
  await poll(`${PREBOOT} built`, 600_000, async () => {
    const st = await e2e.site.status('interface');
    return (st?.bootwiz as Record<string, { state: string }> | undefined)?.[PREBOOT]?.state === 'built' ? true : undefined;
  });
  return e2e;
}

export const eventsOf = (e2e: E2eSite, mac: string): PxeEvent[] => e2e.standIn.events().filter((e) => e.mac?.toLowerCase() === mac);

/** Waits for the event and returns it with the seconds since the guest's power-on. */
export async function eventAt(guest: Running, what: string, find: () => PxeEvent | undefined, timeoutMs: number): Promise<{ event: PxeEvent; s: number }> {
  const event = await poll(what, timeoutMs, find);
  return { event, s: (performance.now() - guest.startedAt) / 1000 };
}

/** Waits for the job's end event (job-completed or job-failed, which a cancel also sends) for this machine. */
export function jobEnd(e2e: E2eSite, guest: Running, mac: string, timeoutMs = BOOT_MS + JOB_MS): Promise<{ event: PxeEvent; s: number }> {
  return eventAt(guest, `${mac}'s job to end`, () => eventsOf(e2e, mac).find((e) => e.kind === 'job-completed' || e.kind === 'job-failed'), timeoutMs);
}

/** A raw virtio disk with a serial (virtio-blk's, in the guest's sysfs) and more QEMU -drive options (`detect-zeroes=unmap`). */
export interface GuestDisk {
  readonly path: string;
  readonly serial?: string;
  readonly drive?: string;
}

/** Powers on a guest (1 GiB) with `disks` as raw virtio disks, runs `fn`, and always stops it. */
export async function withGuest<T>(e2e: E2eSite, name: string, mac: string, disks: string | GuestDisk | readonly (string | GuestDisk)[], fn: (g: Running) => Promise<T>, firmware: Firmware = 'bios'): Promise<T> {
  const list = typeof disks === 'string' || !Array.isArray(disks) ? [disks as string | GuestDisk] : (disks as readonly (string | GuestDisk)[]);
  const drives = list.flatMap((d, i) => (typeof d === 'string'
    ? ['-drive', `file=${d},if=virtio,format=raw`]
    : ['-drive', `if=none,id=disk${i},file=${d.path},format=raw${d.drive === undefined ? '' : `,${d.drive}`}`, '-device', `virtio-blk-pci,drive=disk${i}${d.serial === undefined ? '' : `,serial=${d.serial}`}`]));
  const guest = await e2e.powerOn(name, firmware, mac, undefined, { extraArgs: ['-m', '1024', ...drives] });
  try {
    return await fn(guest);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${e2e.diagnosis(guest)}`);
  } finally {
    await guest.stop();
  }
}

/** The machine rebooted at the agent's end: the harness's QEMU runs with -no-reboot, so it exits. */
export async function waitExit(guest: Running): Promise<void> {
  await guest.waitFor(/rebooting/, 120_000);
  await Promise.race([guest.exited, new Promise((_, rej) => setTimeout(() => rej(new Error('QEMU did not exit after the agent rebooted')), 120_000).unref())]);
}

/** The next power-on follows `then` (local): the server sends the machine to its disk. */
export async function nextBootIsLocal(e2e: E2eSite, name: string, mac: string, disk: string): Promise<void> {
  // `netboot explain`'s answer: no offer, the client's action is local.
  await e2e.site.waitDecision(mac, 'bios', true, (x) => x.offer === undefined && /action local/.test(x.none ?? ''), 30_000);
  await withGuest(e2e, name, mac, disk, async (g) => {
    await g.waitFor(/Booting from Hard Disk/, 240_000);
    assert.doesNotMatch(plain(g.output), /netboot LinuxPE/);
  });
}
