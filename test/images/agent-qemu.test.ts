// The imaging agent end to end in QEMU, through `netboot run`: the site builds LinuxPE (bootwiz,
// from Debian's packages, with Node 18 and the real agent from images/agent/main.ts in agent.img);
// guests (SeaBIOS + iPXE, 1 GiB, a blank raw virtio disk) PXE-boot it. A deploy job: the agent
// deploys a small image (GPT: FAT ESP + ext4 with a few files), job-started and job-completed reach
// the management stand-in, the agent reboots the machine, its next power-on follows the job's
// `then` (local), and the disk, read on the host after QEMU exits, holds the image's files.
// Initial deployment: an unknown guest shows config.initialDeployment's items on its serial
// console, the default (an erase) is taken when the countdown ends, machine-registered (with the
// inventory) reaches the stand-in before job-started, then job-completed, and the next power-on
// follows the job's `then`; a second unknown guest gets the key `2` on its serial console and
// deploys the image instead; with timeoutSec 0 a third goes straight to its job, no prompt. A
// deploy job on UEFI (OVMF + iPXE) too. The times from power-on to job-started and to
// job-completed are printed. Needs root and the e2e packages (test/e2e/README.md); apt is reached
// from the host's namespace.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { type E2eSite, plain } from '../e2e/harness/e2e-site.ts';
import type { PxeEvent } from '../e2e/harness/management-stand-in.ts';
import { poll } from '../e2e/harness/netboot-site.ts';
import { BOOT_FILES, NBP_IMAGE } from '../e2e/harness/second-stage.ts';
import { extCat, gptDisk, makeTree, MiB, sha, sh, sparseFile, type GptDisk } from './disks.ts';
import { BOOT_MS, eventAt, eventsOf, JOB_MS, nextBootIsLocal, PREBOOT, startImagingSite, waitExit, withGuest } from './qemu-imaging.ts';

const ID = PREBOOT;
const MAC = { deploy: '52:54:00:a9:e2:01', enrolDefault: '52:54:00:a9:e2:02', enrolKey: '52:54:00:a9:e2:03', enrolNoPrompt: '52:54:00:a9:e2:04', uefi: '52:54:00:a9:e2:05' };
const JOB = 'a9e20000-0000-4000-8000-00000000e2e1';
const DISK_BYTES = 64 * MiB;
const BASE_CONFIG = { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES };
const initialDeployment = (timeoutSec: number) => ({
  preboot: ID,
  items: [
    // biome-ignore lint/suspicious/noThenProperty: the spec names this member `then`
    { label: 'Erase the disk', job: { task: 'erase', preboot: ID, method: 'zero', then: { type: 'local' } } },
    // biome-ignore lint/suspicious/noThenProperty: the spec names this member `then`
    { label: 'Lab gold image', job: { task: 'deploy', preboot: ID, package: 'lab-gold', then: { type: 'local' } } },
  ],
  default: 0,
  timeoutSec,
});

let e2e: E2eSite;
let src: GptDisk;
let hashes: Map<string, string>;
const times: string[] = [];

before(async () => {
  e2e = await startImagingSite('agent-qemu', {
    config: { ...BASE_CONFIG, initialDeployment: initialDeployment(3) },
    clients: [{ mac: MAC.deploy, name: 'AGENT-DEPLOY', action: { type: 'local' } }, { mac: MAC.uefi, name: 'AGENT-UEFI', action: { type: 'local' } }],
    images: [NBP_IMAGE],
    predefinedComputers: [],
  });
  hashes = makeTree(join(e2e.dir, 'tree'), 6, 256 * 1024);
  src = gptDisk(join(e2e.dir, 'src.img'), 48 * MiB, join(e2e.dir, 'tree'));
  const imp = await e2e.site.cli(['image', 'import', src.path, '--id', 'lab-gold'], 180_000);
  assert.equal(imp.code, 0, `${imp.stdout}\n${imp.stderr}`);
}, { timeout: 1_500_000 });

after(async () => {
  if (times.length > 0) process.stdout.write(`# times (power-on to):\n${times.map((t) => `#   ${t}\n`).join('')}`);
  await e2e?.stop();
}, { timeout: 60_000 });

function checkDeployed(disk: string): void {
  for (const [name, h] of hashes) assert.equal(sha(extCat(disk, src.rootStart, name)), h, name);
  const parts = (f: string) => JSON.parse(sh('sfdisk', ['-J', f])).partitiontable.partitions as { start: number }[];
  assert.deepEqual(parts(disk).map((p) => p.start), parts(src.path).map((p) => p.start));
}

test('a deploy job through netboot run: the agent deploys the image, reports, reboots; the next boot is local', { timeout: 1_200_000 }, async () => {
  const job = await e2e.site.cli(['job', 'deploy', '--mac', MAC.deploy, '--preboot', ID, '--package', 'lab-gold', '--then', 'local', '--job-id', JOB], 30_000);
  assert.equal(job.code, 0, `${job.stdout}\n${job.stderr}`);
  await poll(`${MAC.deploy} to be offered ${ID}`, 30_000, async () => {
    const r = await controlCall<{ chain: { cannotBoot: string | null; ends: string } | null }>(controlSocketPath(e2e.site.data, 'server'), 'GET', `/explain?mac=${MAC.deploy}&arch=bios`, undefined, 2000).catch(() => null);
    return r?.chain != null && r.chain.cannotBoot === null && r.chain.ends.includes(ID) ? true : undefined;
  });
  const disk = sparseFile(join(e2e.dir, 'deploy.img'), DISK_BYTES);
  await withGuest(e2e, 'deploy', MAC.deploy, disk, async (g) => {
    const started = eventAt(g, 'job-started', () => eventsOf(e2e, MAC.deploy).find((e) => e.kind === 'job-started'), BOOT_MS);
    const completed = eventAt(g, 'job-completed', () => eventsOf(e2e, MAC.deploy).find((e) => e.kind === 'job-completed' || e.kind === 'job-failed'), BOOT_MS + JOB_MS);
    await g.waitFor(new RegExp(`netboot agent: job ${JOB}`), BOOT_MS);
    await g.waitFor(/disk \/dev\/vda \(the first fixed disk\)/, 120_000);
    const s = await started;
    const c = await completed;
    assert.equal(c.event.kind, 'job-completed', JSON.stringify(c.event));
    assert.equal(c.event.jobId, JOB);
    assert.ok((c.event.result as { bytesWritten: number }).bytesWritten > MiB, JSON.stringify(c.event));
    await g.waitFor(/completed in [\d.]+ s/, 60_000);
    times.push(`deploy job: job-started ${s.s.toFixed(1)} s, job-completed ${c.s.toFixed(1)} s`);
    await waitExit(g);
  });
  checkDeployed(disk);
  await nextBootIsLocal(e2e, 'deploy-next', MAC.deploy, disk);
});

/** An unknown guest through initial deployment; `key` is typed on its serial console when the list shows. */
async function enrol(name: string, mac: string, disk: string, key: string | null, prompt: boolean): Promise<PxeEvent> {
  return withGuest(e2e, name, mac, disk, async (g) => {
    const started = eventAt(g, 'job-started', () => eventsOf(e2e, mac).find((e) => e.kind === 'job-started'), BOOT_MS);
    const completed = eventAt(g, 'job-completed', () => eventsOf(e2e, mac).find((e) => e.kind === 'job-completed' || e.kind === 'job-failed'), BOOT_MS + JOB_MS);
    if (prompt) {
      await g.waitFor(/Choose what it should do:/, BOOT_MS);
      if (key !== null) g.child.stdin!.write(key);
      await g.waitFor(/2\) Lab gold image +\[deploy\]/, 30_000);
    } else {
      await g.waitFor(/this machine is new to the site: "Erase the disk" \(the site's default, no prompt\)/, BOOT_MS);
    }
    const s = await started;
    const c = await completed;
    assert.equal(c.event.kind, 'job-completed', JSON.stringify(c.event));
    const kinds = eventsOf(e2e, mac).map((e) => e.kind);
    assert.ok(kinds.includes('machine-registered') && kinds.indexOf('machine-registered') < kinds.indexOf('job-started'), kinds.join(' '));
    const reg = eventsOf(e2e, mac).find((e) => e.kind === 'machine-registered')!;
    assert.equal(reg.jobId, c.event.jobId);
    assert.equal((reg.inventory as { disk: { sizeBytes: number } }).disk.sizeBytes, DISK_BYTES);
    const text = plain(g.output);
    if (prompt) {
      assert.match(text, /1\) Erase the disk +\[erase\] +\(default\)/);
      assert.match(text, /starts in 3 s unless a key is pressed/);
    } else assert.doesNotMatch(text, /Choose what it should do|starts in/);
    assert.match(text, new RegExp(`"${reg.label as string}" chosen${key === null ? ' \\(the default\\)' : ''}: registering this machine`));
    assert.match(text, new RegExp(`netboot agent: job ${c.event.jobId as string}`));
    times.push(`initial deployment (${name}): job-started ${s.s.toFixed(1)} s, job-completed ${c.s.toFixed(1)} s`);
    await waitExit(g);
    return reg;
  });
}

test('initial deployment: an unknown guest shows the list, takes the default (erase) after the countdown, registers, runs the job; the next boot is local', { timeout: 1_200_000 }, async () => {
  const disk = join(e2e.dir, 'enrol-default.img');
  writeFileSync(disk, Buffer.alloc(DISK_BYTES, 0xa5));
  const reg = await enrol('enrol-default', MAC.enrolDefault, disk, null, true);
  assert.equal(reg.label, 'Erase the disk');
  assert.ok(sh('cmp', ['-n', String(DISK_BYTES), disk, '/dev/zero']).length === 0, 'the disk is zeroed');
  await nextBootIsLocal(e2e, 'enrol-default-next', MAC.enrolDefault, disk);
});

test('initial deployment: the key 2 on the serial console picks the deploy', { timeout: 1_200_000 }, async () => {
  const disk = sparseFile(join(e2e.dir, 'enrol-key.img'), DISK_BYTES);
  const reg = await enrol('enrol-key', MAC.enrolKey, disk, '2\r', true);
  assert.equal(reg.label, 'Lab gold image');
  checkDeployed(disk);
});

test('initial deployment with timeoutSec 0 and a default: no prompt, straight to the job', { timeout: 1_200_000 }, async () => {
  const payload = join(e2e.dir, 'config-0.json');
  writeFileSync(payload, JSON.stringify({ ...BASE_CONFIG, initialDeployment: initialDeployment(0) }));
  const r = await e2e.site.cli(['sbs', 'send', 'config', '--file', payload]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  await poll('the new config applied', 30_000, () => (e2e.site.pendingSbs().length === 0 ? true : undefined));
  const disk = sparseFile(join(e2e.dir, 'enrol-0.img'), DISK_BYTES);
  const reg = await enrol('enrol-no-prompt', MAC.enrolNoPrompt, disk, null, false);
  assert.equal(reg.label, 'Erase the disk');
});

test('UEFI (OVMF + iPXE): a deploy job through netboot run; the agent deploys the image; the next boot is local', { timeout: 1_200_000 }, async () => {
  const id = 'a9e20000-0000-4000-8000-00000000e2e5';
  const job = await e2e.site.cli(['job', 'deploy', '--mac', MAC.uefi, '--preboot', ID, '--package', 'lab-gold', '--then', 'local', '--job-id', id], 30_000);
  assert.equal(job.code, 0, `${job.stdout}\n${job.stderr}`);
  await e2e.site.waitDecision(MAC.uefi, 'efi-x64', true, (x) => x.offer !== undefined, 30_000);
  const disk = sparseFile(join(e2e.dir, 'uefi.img'), DISK_BYTES);
  await withGuest(e2e, 'uefi', MAC.uefi, disk, async (g) => {
    const started = eventAt(g, 'job-started', () => eventsOf(e2e, MAC.uefi).find((e) => e.kind === 'job-started'), BOOT_MS);
    const completed = eventAt(g, 'job-completed', () => eventsOf(e2e, MAC.uefi).find((e) => e.kind === 'job-completed' || e.kind === 'job-failed'), BOOT_MS + JOB_MS);
    await g.waitFor(new RegExp(`netboot agent: job ${id}`), BOOT_MS);
    const s = await started;
    const c = await completed;
    assert.equal(c.event.kind, 'job-completed', JSON.stringify(c.event));
    times.push(`deploy job, UEFI: job-started ${s.s.toFixed(1)} s, job-completed ${c.s.toFixed(1)} s`);
    await waitExit(g);
  }, 'efi-ipxe');
  checkDeployed(disk);
  await e2e.site.waitDecision(MAC.uefi, 'efi-x64', true, (x) => x.offer === undefined && /action local/.test(x.none ?? ''), 30_000);
});
