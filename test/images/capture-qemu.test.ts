// Capture, deploy and cancel end to end in QEMU, through `netboot run`, with the real agent in
// BootWiz's LinuxPE (built by the site, as in agent-qemu.test.ts):
// - BIOS (SeaBIOS + iPXE): a guest whose disk the test built (GPT: a FAT ESP with a marker, ext4
//   with /etc/os-release, a marker and random files) is captured by a `netboot job capture` job
//   into a new package; job-completed carries the inventory. A second guest with a blank disk
//   32 MiB larger gets a deploy job of that package; on the host afterwards: the same partition
//   starts, the last partition and its ext4 grown (e2fsck -fn clean), every file's hash equal,
//   the ESP's marker read back with mtools and fsck.vfat clean; the next power-on boots the disk.
//   The disks carry virtio serials: the inventory reports the source's, the deploy names its
//   target `serial:...`. A second deploy onto the grown disk (the same machine re-imaged) writes
//   and fetches less than half of the first, and leaves the same checks passing.
// - UEFI (OVMF + iPXE): the same with an MBR disk holding NTFS; the files are read back with
//   ntfs-3g's ntfscat, the partition and the NTFS volume grown (images/deploy.ts runs ntfsresize),
//   and a re-deploy onto the grown disk.
// - Cancel: an erase (`zero`) of a 64 GiB sparse disk is cancelled with `netboot job cancel` once
//   job-progress arrived; job-failed names the cancel, markers the test wrote across the disk show
//   the agent wrote nothing past the point it reports, and the machine is left in `wait`: the
//   explain says so and a next power-on boots neither LinuxPE nor the disk. A new job (erase,
//   `discard`) then ends the wait: the waiting machine boots it from its wait loop by itself, the
//   whole disk is discarded, and the machine goes local.
// - For every job the management stand-in receives job-started, any job-progress, then exactly
//   one job-completed or job-failed, all with the job's jobId, mac and task, and nothing after.
// Times from power-on are printed. Needs root and the e2e packages (test/e2e/README.md), mtools,
// dosfstools and ntfs-3g; apt is reached from the host's namespace.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type E2eSite, plain } from '../e2e/harness/e2e-site.ts';
import type { Firmware } from '../e2e/harness/guest.ts';
import type { PxeEvent } from '../e2e/harness/management-stand-in.ts';
import { poll } from '../e2e/harness/netboot-site.ts';
import type { Running } from '../e2e/harness/processes.ts';
import { BOOT_FILES, NBP_IMAGE } from '../e2e/harness/second-stage.ts';
import { e2fsckClean, extCat, gptDisk, makeTree, mbrNtfsDisk, MiB, sha, sh, sparseFile, withLoop } from './disks.ts';
import { BOOT_MS, eventAt, eventsOf, type GuestDisk, JOB_MS, nextBootIsLocal, PREBOOT, startImagingSite, waitExit, withGuest } from './qemu-imaging.ts';

const ID = PREBOOT;
const MAC = { gptSrc: '52:54:00:ca:e2:01', gptDst: '52:54:00:ca:e2:02', ntfsSrc: '52:54:00:ca:e2:03', ntfsDst: '52:54:00:ca:e2:04', cancel: '52:54:00:ca:e2:05' };
const JOB = {
  gptCapture: 'ca0e2000-0000-4000-8000-0000000000c1', gptDeploy: 'ca0e2000-0000-4000-8000-0000000000d1',
  ntfsCapture: 'ca0e2000-0000-4000-8000-0000000000c2', ntfsDeploy: 'ca0e2000-0000-4000-8000-0000000000d2',
  gptRedeploy: 'ca0e2000-0000-4000-8000-0000000000d3', ntfsRedeploy: 'ca0e2000-0000-4000-8000-0000000000d4',
  cancel: 'ca0e2000-0000-4000-8000-0000000000e1', afterCancel: 'ca0e2000-0000-4000-8000-0000000000e2',
};
const SRC_BYTES = 48 * MiB;
/** The deploy targets: blank and larger than the source by this much. */
const GROW_BYTES = 32 * MiB;

let e2e: E2eSite;
const times: string[] = [];
/** Every job this file ran, for the last test's look at the events once all are over. */
const jobs: { jobId: string; mac: string; task: string; end: string }[] = [];

before(async () => {
  e2e = await startImagingSite('capture-qemu', {
    config: { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES },
    clients: Object.entries(MAC).map(([name, mac]) => ({ mac, name: `CAP-${name.toUpperCase()}`, action: { type: 'local' } })),
    images: [NBP_IMAGE],
    predefinedComputers: [],
  });
}, { timeout: 1_500_000 });

after(async () => {
  if (times.length > 0) process.stdout.write(`# times (power-on to):\n${times.map((t) => `#   ${t}\n`).join('')}`);
  await e2e?.stop();
}, { timeout: 60_000 });

async function cli(args: readonly string[]): Promise<void> {
  const r = await e2e.site.cli(args, 60_000);
  assert.equal(r.code, 0, `netboot ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
}

/** Events for one job, each once (the outbox delivers at least once: a resend keeps its eventId). */
function jobEvents(jobId: string): PxeEvent[] {
  const seen = new Set<string>();
  return e2e.standIn.events().filter((e) => e.jobId === jobId && !seen.has(e.eventId) && seen.add(e.eventId) !== undefined);
}

/** (pxe-booted,) job-started, any job-progress, then one end event (`end`), with the job's mac and task, and nothing after it. */
function assertJobEvents(jobId: string, mac: string, task: string, end: 'job-completed' | 'job-failed'): PxeEvent[] {
  const all = jobEvents(jobId);
  // pxe-booted names the job its boot was for: it comes first.
  assert.match(all.map((e) => e.kind).join(' '), /^(pxe-booted )*job-/, `events of job ${jobId}: ${all.map((e) => e.kind).join(' ')}`);
  const evs = all.filter((e) => e.kind.startsWith('job-'));
  const kinds = evs.map((e) => e.kind);
  assert.match(kinds.join(' '), new RegExp(`^job-started( job-progress)* ${end}$`), `events of job ${jobId} in order: ${kinds.join(' ')}`);
  for (const e of evs) {
    assert.equal(String(e.mac).toLowerCase(), mac, JSON.stringify(e));
    assert.equal(e.task, task, JSON.stringify(e));
  }
  const at = evs.map((e) => Date.parse(String(e.at)));
  assert.ok(at.every((t, i) => Number.isFinite(t) && (i === 0 || t >= at[i - 1]!)), `times in order: ${evs.map((e) => e.at).join(' ')}`);
  const progress = evs.filter((x) => x.kind === 'job-progress');
  for (const [i, e] of progress.entries()) {
    assert.ok(typeof e.phase === 'string' && Number(e.bytesDone) <= Number(e.bytesTotal), JSON.stringify(e));
    // The spec's rate: at most one every 5 s per job.
    if (i > 0) assert.ok(Date.parse(String(e.at)) - Date.parse(String(progress[i - 1]!.at)) >= 5000, `job-progress at ${progress[i - 1]!.at} and ${e.at}`);
  }
  return evs;
}

/**
 * Sends the job (`netboot job TASK ...`), powers on the machine with `disk`, waits for the job's
 * end event and for QEMU to exit (the agent reboots it); returns the end event. `during` runs
 * once the agent has named the job on the console.
 */
async function runJob(name: string, task: 'capture' | 'deploy' | 'erase', mac: string, jobId: string, args: readonly string[], disk: string | GuestDisk, firmware: Firmware, during?: (g: Running) => Promise<void>): Promise<{ event: PxeEvent; console: string }> {
  await cli(['job', task, '--mac', mac, '--preboot', ID, '--then', 'local', '--job-id', jobId, ...args]);
  const arch = firmware === 'bios' ? 'bios' : 'efi-x64';
  await e2e.site.waitDecision(mac, arch, true, (x) => x.offer !== undefined && x.offer.reason.includes(ID), 30_000);
  return withGuest(e2e, name, mac, disk, async (g) => {
    const started = poll(`${name}: job-started`, BOOT_MS, () => eventsOf(e2e, mac).find((e) => e.kind === 'job-started' && e.jobId === jobId)).then(() => (performance.now() - g.startedAt) / 1000);
    started.catch(() => {});
    await g.waitFor(new RegExp(`netboot agent: job ${jobId}`), BOOT_MS);
    if (during !== undefined) await during(g);
    const end = await eventAt(g, `${name}: the job's end`, () => eventsOf(e2e, mac).find((e) => (e.kind === 'job-completed' || e.kind === 'job-failed') && e.jobId === jobId), JOB_MS);
    times.push(`${name} (${firmware}): job-started ${(await started).toFixed(1)} s, ${end.event.kind} ${end.s.toFixed(1)} s`);
    await waitExit(g);
    return { event: end.event, console: plain(g.output) };
  }, firmware);
}

interface Part { start: number; size: number }
const partsOf = (f: string): Part[] => (JSON.parse(sh('sfdisk', ['-J', f])).partitiontable.partitions as Part[]).map((p) => ({ start: p.start, size: p.size }));

/** An ext file system's size in bytes (block count × block size) from its superblock. */
function extBytes(path: string, offset: number): number {
  const h = sh('dumpe2fs', ['-h', `${path}?offset=${offset}`]);
  const n = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(h)?.[1]);
  return n('Block count') * n('Block size');
}

/** A disk's bytes hashed (the capture must leave its source as it was). */
const fileHash = (path: string): string => sha(readFileSync(path));

test('BIOS: a GPT disk (FAT ESP + ext4) captured by a job, then deployed to a blank larger disk: same layout, grown, same files; the next boot is local', { timeout: 2_400_000 }, async () => {
  const tree = join(e2e.dir, 'gpt-tree');
  const hashes = makeTree(tree, 6, 256 * 1024);
  const src = gptDisk(join(e2e.dir, 'gpt-src.img'), SRC_BYTES, tree);
  const before = fileHash(src.path);

  // The disks carry serials (virtio-blk's, in sysfs): the inventory reports the source's, the deploy names its target by it.
  const cap = await runJob('gpt-capture', 'capture', MAC.gptSrc, JOB.gptCapture, ['--package', 'cap-gpt'], { path: src.path, serial: 'CAPSRC01' }, 'bios');
  assert.equal(cap.event.kind, 'job-completed', JSON.stringify(cap.event));
  jobs.push({ jobId: JOB.gptCapture, mac: MAC.gptSrc, task: 'capture', end: 'job-completed' });
  assertJobEvents(JOB.gptCapture, MAC.gptSrc, 'capture', 'job-completed');
  const result = cap.event.result as { package: string; version: string; bytesWritten: number; inventory: { disk: { serial: string | null; sizeBytes: number; table: string; partitions: { number: number; startBytes: number; sizeBytes: number; fs: string | null; label: string | null; usedBytes: number }[] }; os: { family: string; name: string; version: string } | null; madeBy: string } };
  assert.equal(result.package, 'cap-gpt');
  assert.match(result.version, /^sha256:[0-9a-f]{64}$/);
  const inv = result.inventory;
  assert.equal(inv.madeBy, 'capture');
  assert.equal(inv.disk.sizeBytes, SRC_BYTES);
  assert.equal(inv.disk.serial, 'CAPSRC01');
  assert.equal(inv.disk.table, 'gpt');
  assert.deepEqual(inv.disk.partitions.map((p) => [p.number, p.startBytes, p.sizeBytes, p.fs, p.label]), [[1, src.espStart, src.espBytes, 'fat16', 'ESP'], [2, src.rootStart, src.rootBytes, 'ext4', 'root']]);
  const [esp, root] = inv.disk.partitions;
  assert.ok(esp!.usedBytes > 0 && esp!.usedBytes < src.espBytes / 2, `ESP used ${esp!.usedBytes}`);
  assert.ok(root!.usedBytes >= 6 * 256 * 1024 && root!.usedBytes < src.rootBytes / 2, `root used ${root!.usedBytes}`);
  assert.deepEqual(inv.os && { family: inv.os.family, name: inv.os.name, version: inv.os.version }, { family: 'linux', name: 'Debian GNU/Linux', version: '12' });
  assert.ok(result.bytesWritten >= 6 * 256 * 1024 && result.bytesWritten < SRC_BYTES / 2, `sent ${result.bytesWritten}: used blocks only`);
  assert.match(cap.console, /captured into cap-gpt version sha256:/);
  assert.equal(fileHash(src.path), before, 'the capture wrote nothing to its disk');
  // The version the agent published, exported on the host: the source's table and files.
  const exported = join(e2e.dir, 'gpt-export.img');
  await cli(['image', 'export', `cap-gpt@${result.version}`, exported]);
  assert.deepEqual(partsOf(exported), partsOf(src.path));
  e2fsckClean(exported, src.rootStart);
  for (const [name, h] of hashes) assert.equal(sha(extCat(exported, src.rootStart, name)), h, `exported ${name}`);

  const dst = sparseFile(join(e2e.dir, 'gpt-dst.img'), SRC_BYTES + GROW_BYTES);
  /** The disk on the host: the layout kept, the last partition and its ext4 grown, the files equal. */
  const check = async (): Promise<void> => {
    const have = partsOf(dst), want = partsOf(src.path);
    assert.deepEqual(have.map((p) => p.start), want.map((p) => p.start));
    assert.equal(have[0]!.size, want[0]!.size, 'the ESP keeps its size');
    assert.ok(have[1]!.size * 512 >= want[1]!.size * 512 + GROW_BYTES - 2 * MiB, `the last partition grew: ${want[1]!.size} -> ${have[1]!.size} sectors`);
    assert.match(sh('sfdisk', ['--verify', dst]), /No errors detected/);
    e2fsckClean(dst, src.rootStart);
    const fsBytes = extBytes(dst, src.rootStart);
    assert.ok(fsBytes > extBytes(src.path, src.rootStart) + GROW_BYTES / 2 && fsBytes <= have[1]!.size * 512, `ext4 grown to ${fsBytes} bytes`);
    for (const [name, h] of hashes) assert.equal(sha(extCat(dst, src.rootStart, name)), h, name);
    assert.equal(sh('mtype', ['-i', `${dst}@@${src.espStart}`, '::/EFI/BOOT/marker.txt']), readFileSync(join(tree, 'marker.txt'), 'utf8'));
    await withLoop(dst, async (dev) => void sh('fsck.vfat', ['-n', dev]), src.espStart, src.espBytes);
  };
  const deploy = async (name: string, jobId: string): Promise<{ bytesWritten: number; bytesTransferred: number }> => {
    const dep = await runJob(name, 'deploy', MAC.gptDst, jobId, ['--package', 'cap-gpt', '--disk', 'serial:CAPDST01'], { path: dst, serial: 'CAPDST01' }, 'bios');
    assert.equal(dep.event.kind, 'job-completed', JSON.stringify(dep.event));
    jobs.push({ jobId, mac: MAC.gptDst, task: 'deploy', end: 'job-completed' });
    assertJobEvents(jobId, MAC.gptDst, 'deploy', 'job-completed');
    const r = dep.event.result as { version: string; bytesWritten: number; bytesTransferred: number; seconds: number };
    assert.equal(r.version, result.version, 'the deploy wrote the captured version');
    assert.ok(typeof r.seconds === 'number' && typeof r.bytesTransferred === 'number', JSON.stringify(r));
    assert.match(dep.console, /disk \/dev\/vda \(serial CAPDST01\)/);
    assert.match(dep.console, /partition 2 grown from [\d.]+ MB to [\d.]+ MB: resize2fs/);
    await check();
    return r;
  };
  const first = await deploy('gpt-deploy', JOB.gptDeploy);
  await nextBootIsLocal(e2e, 'gpt-deploy-next', MAC.gptDst, dst);
  // The same machine re-imaged: its disk holds the image, grown; only what the grow changed is written again.
  const again = await deploy('gpt-redeploy', JOB.gptRedeploy);
  assert.ok(again.bytesWritten < first.bytesWritten / 2 && again.bytesTransferred < first.bytesTransferred / 2, `re-deploy wrote ${again.bytesWritten} and fetched ${again.bytesTransferred} (first: ${first.bytesWritten}, ${first.bytesTransferred})`);
  times.push(`gpt re-deploy: wrote ${again.bytesWritten} bytes, fetched ${again.bytesTransferred} (first deploy: ${first.bytesWritten}, ${first.bytesTransferred})`);
});

test('UEFI (OVMF + iPXE): an MBR disk with NTFS captured by a job, then deployed to a blank larger disk: files read back with ntfs-3g, NTFS grown', { timeout: 2_400_000 }, async () => {
  const files = new Map<string, Buffer>([['marker.txt', Buffer.from('netboot NTFS marker\n')], ...[0, 1, 2, 3].map((i): [string, Buffer] => [`data${i}.bin`, randomBytes(384 * 1024)])]);
  const src = mbrNtfsDisk(join(e2e.dir, 'ntfs-src.img'), SRC_BYTES, files, e2e.dir);
  const before = fileHash(src.path);

  const cap = await runJob('ntfs-capture', 'capture', MAC.ntfsSrc, JOB.ntfsCapture, ['--package', 'cap-ntfs'], src.path, 'efi-ipxe');
  assert.equal(cap.event.kind, 'job-completed', JSON.stringify(cap.event));
  jobs.push({ jobId: JOB.ntfsCapture, mac: MAC.ntfsSrc, task: 'capture', end: 'job-completed' });
  assertJobEvents(JOB.ntfsCapture, MAC.ntfsSrc, 'capture', 'job-completed');
  const result = cap.event.result as { version: string; inventory: { disk: { table: string; partitions: { number: number; startBytes: number; sizeBytes: number; fs: string | null; label: string | null; usedBytes: number }[] }; madeBy: string } };
  assert.equal(result.inventory.disk.table, 'mbr');
  assert.deepEqual(result.inventory.disk.partitions.map((p) => [p.number, p.startBytes, p.sizeBytes, p.fs, p.label]), [[1, src.start, src.bytes, 'ntfs', 'WIN']]);
  const used = result.inventory.disk.partitions[0]!.usedBytes;
  assert.ok(used >= 4 * 384 * 1024 && used < src.bytes / 2, `NTFS used ${used}`);
  assert.equal(fileHash(src.path), before, 'the capture wrote nothing to its disk');

  const dst = sparseFile(join(e2e.dir, 'ntfs-dst.img'), SRC_BYTES + GROW_BYTES);
  const deploy = async (name: string, jobId: string): Promise<{ bytesWritten: number; bytesTransferred: number }> => {
    const dep = await runJob(name, 'deploy', MAC.ntfsDst, jobId, ['--package', 'cap-ntfs'], dst, 'efi-ipxe');
    assert.equal(dep.event.kind, 'job-completed', JSON.stringify(dep.event));
    jobs.push({ jobId, mac: MAC.ntfsDst, task: 'deploy', end: 'job-completed' });
    assertJobEvents(jobId, MAC.ntfsDst, 'deploy', 'job-completed');
    assert.equal((dep.event.result as { version: string }).version, result.version);
    assert.match(dep.console, /partition 1 grown from [\d.]+ MB to [\d.]+ MB: ntfsresize/);

    const have = partsOf(dst), want = partsOf(src.path);
    assert.deepEqual(have.map((p) => p.start), want.map((p) => p.start));
    assert.ok(have[0]!.size * 512 >= want[0]!.size * 512 + GROW_BYTES - 2 * MiB, `the partition grew: ${want[0]!.size} -> ${have[0]!.size} sectors`);
    const volumeBytes = (dev: string): number => Number(/Current volume size: (\d+) bytes/.exec(sh('ntfsresize', ['--info', '--force', '--no-action', dev]))?.[1]);
    const srcVolume = await withLoop(src.path, async (dev) => volumeBytes(dev), src.start, src.bytes);
    await withLoop(dst, async (dev) => {
      const v = volumeBytes(dev);
      assert.ok(v > srcVolume + GROW_BYTES / 2 && v <= have[0]!.size * 512, `NTFS grown: ${srcVolume} -> ${v} bytes`);
      for (const [name, bytes] of files) assert.equal(sha(shBytes('ntfscat', ['-f', dev, name])), sha(bytes), name);
    }, have[0]!.start * 512, have[0]!.size * 512);
    return dep.event.result as { bytesWritten: number; bytesTransferred: number };
  };
  const first = await deploy('ntfs-deploy', JOB.ntfsDeploy);
  const again = await deploy('ntfs-redeploy', JOB.ntfsRedeploy);
  assert.ok(again.bytesWritten < first.bytesWritten / 2 && again.bytesTransferred < first.bytesTransferred / 2, `re-deploy wrote ${again.bytesWritten} and fetched ${again.bytesTransferred} (first: ${first.bytesWritten}, ${first.bytesTransferred})`);
  times.push(`ntfs re-deploy: wrote ${again.bytesWritten} bytes, fetched ${again.bytesTransferred} (first deploy: ${first.bytesWritten}, ${first.bytesTransferred})`);
  await e2e.site.waitDecision(MAC.ntfsDst, 'efi-x64', true, (x) => x.offer === undefined && /action local/.test(x.none ?? ''), 30_000);
});

/** A command's stdout as bytes. */
function shBytes(cmd: string, args: readonly string[]): Buffer {
  return execFileSync(cmd, args, { timeout: 120_000, maxBuffer: 256 * MiB, stdio: ['ignore', 'pipe', 'pipe'] });
}

test('cancel: an erase cancelled mid-way ends in job-failed naming the cancel, writes nothing more, and leaves the machine in wait', { timeout: 2_400_000 }, async () => {
  // 64 GiB, sparse; QEMU turns the guest's zero writes into holes (detect-zeroes), so the erase
  // costs the host nothing and runs long enough under TCG to be cancelled half-way.
  const disk = sparseFile(join(e2e.dir, 'cancel.img'), 64 * 1024 * MiB);
  const size = 64 * 1024 * MiB;
  const MARK_EVERY = 256 * MiB;
  const mark = Buffer.alloc(4096, 0xa5);
  const marks: number[] = [];
  const fd = openSync(disk, 'r+');
  try {
    for (let at = MARK_EVERY - mark.length; at < size; at += MARK_EVERY) {
      writeSync(fd, mark, 0, mark.length, at);
      marks.push(at);
    }
  } finally {
    closeSync(fd);
  }
  const drive: GuestDisk = { path: disk, drive: 'detect-zeroes=unmap,discard=unmap' };
  const run = await runJob('cancel', 'erase', MAC.cancel, JOB.cancel, ['--method', 'zero'], drive, 'bios', async (g) => {
    await poll('job-progress of the erase', JOB_MS, () => eventsOf(e2e, MAC.cancel).find((e) => e.kind === 'job-progress' && e.jobId === JOB.cancel && Number(e.bytesDone) > 0));
    await cli(['job', 'cancel', JOB.cancel]);
    await g.waitFor(/the site cancelled this job: stopping now/, JOB_MS);
  });
  const ev = run.event;
  assert.equal(ev.kind, 'job-failed', JSON.stringify(ev));
  assert.match(String(ev.reason), /cancel/, JSON.stringify(ev));
  assert.equal(ev.phase, 'erase-zero', JSON.stringify(ev));
  jobs.push({ jobId: JOB.cancel, mac: MAC.cancel, task: 'erase', end: 'job-failed' });
  assertJobEvents(JOB.cancel, MAC.cancel, 'erase', 'job-failed');
  const m = new RegExp(`job ${JOB.cancel} cancelled by the site during erase-zero; ([\\d.]+) MB had been written`).exec(run.console);
  assert.ok(m !== null, run.console.slice(-2000));
  const written = Number(m[1]) * 1e6;
  assert.ok(written > 0 && written < size / 2, `written ${written}: the erase stopped half-way`);
  assert.doesNotMatch(run.console, /erased \(zero\)|completed in/);

  // The disk: zeros up to where the agent says it stopped, every marker after it untouched.
  const zeroed = (at: number): boolean => {
    const b = Buffer.alloc(mark.length);
    const f = openSync(disk, 'r');
    try {
      readSync(f, b, 0, b.length, at);
    } finally {
      closeSync(f);
    }
    if (b.equals(mark)) return false;
    assert.ok(b.equals(Buffer.alloc(mark.length)), `the marker at ${at} is neither intact nor zeroed`);
    return true;
  };
  const slack = 1e6; // the console's figure is rounded to 0.1 MB
  const checkMarks = (): void => {
    for (const at of marks) {
      if (at + mark.length <= written - slack) assert.ok(zeroed(at), `the marker at ${at} (before the cancel point ${written}) is zeroed`);
      else if (at >= written + slack) assert.ok(!zeroed(at), `the marker at ${at} (after the cancel point ${written}) is untouched`);
    }
  };
  checkMarks();

  // The machine waits: no preboot, no disk, on the explain and at its next power-on.
  const d = await e2e.site.waitDecision(MAC.cancel, 'bios', true, (x) => /wait/.test(x.offer?.reason ?? ''), 30_000);
  assert.doesNotMatch(d.offer!.reason, new RegExp(ID));
  const ex = await e2e.site.cli(['explain', MAC.cancel, '--ipxe'], 30_000);
  assert.equal(ex.code, 0, ex.stderr);
  assert.match(ex.stdout, /wait/, ex.stdout);
  assert.doesNotMatch(ex.stdout, new RegExp(ID), ex.stdout);
  const st = await e2e.site.cli(['job', 'status', JOB.cancel, '--json'], 30_000);
  assert.equal(st.code, 0, st.stderr);
  assert.equal((JSON.parse(st.stdout) as { state: string }).state, 'cancelled', st.stdout);
  const waiting = new RegExp(`${MAC.cancel} is waiting for instructions`, 'i');
  await withGuest(e2e, 'cancel-next', MAC.cancel, drive, async (g) => {
    const w = await g.waitFor(waiting, 240_000);
    await g.waitFor(waiting, 60_000, w.end);
    assert.doesNotMatch(plain(g.output), /netboot LinuxPE|Booting from Hard Disk/);
    checkMarks();
    // A new instruction ends the wait: the machine, checking back, boots the new job's preboot by
    // itself (no power cycle); a discard erases the whole disk, every marker included.
    await cli(['job', 'erase', '--mac', MAC.cancel, '--preboot', ID, '--then', 'local', '--job-id', JOB.afterCancel, '--method', 'discard']);
    await g.waitFor(new RegExp(`netboot agent: job ${JOB.afterCancel}`), BOOT_MS);
    const end = await eventAt(g, 'the discard job to end', () => eventsOf(e2e, MAC.cancel).find((e) => (e.kind === 'job-completed' || e.kind === 'job-failed') && e.jobId === JOB.afterCancel), JOB_MS);
    assert.equal(end.event.kind, 'job-completed', JSON.stringify(end.event));
    times.push(`erase (discard) after the cancel, from the wait loop's power-on: job-completed ${end.s.toFixed(1)} s`);
    await waitExit(g);
  });
  jobs.push({ jobId: JOB.afterCancel, mac: MAC.cancel, task: 'erase', end: 'job-completed' });
  assertJobEvents(JOB.afterCancel, MAC.cancel, 'erase', 'job-completed');
  for (const at of marks) assert.ok(zeroed(at), `the marker at ${at} is discarded`);
  await e2e.site.waitDecision(MAC.cancel, 'bios', true, (x) => x.offer === undefined && /action local/.test(x.none ?? ''), 30_000);
});

test('events: for every job, job-started, any job-progress, one end event, nothing after it', () => {
  assert.equal(jobs.length, 8, `jobs run: ${jobs.map((j) => j.jobId).join(' ')}`);
  for (const j of jobs) assertJobEvents(j.jobId, j.mac, j.task, j.end as 'job-completed' | 'job-failed');
  // No event names a job this file did not run, and every job event names one of them.
  const ids = new Set(jobs.map((j) => j.jobId));
  for (const e of e2e.standIn.events().filter((x) => x.kind.startsWith('job-'))) assert.ok(ids.has(String(e.jobId)), JSON.stringify(e));
});
