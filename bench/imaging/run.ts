// Our capture and deploy beside the pipeline FOG and Clonezilla use, on loop devices, through a
// real HTTP server on loopback: `partclone.extfs -c | zstd | HTTP upload` and
// `HTTP download | zstd -d | partclone.extfs -r`. A GPT disk with one ext4 about half full of a
// realistic tree (copies of /usr/share/doc, man, locale and /usr/lib/python3.11, as many as fill
// half the disk), then a 1 % change (files rewritten and added by debugfs, as an upgrade does),
// then a second capture and a re-deploy onto the disk that holds the first version. Every restore
// is checked by its data (the used blocks of source and target hashed alike), not by exit codes
// (partclone 0.3.23 has aborted at the end of a correct restore and exited 0 on errors). Prints
// MB/s of used data, bytes sent, bytes read and written (the disk's loop device's own counters),
// CPU (this process with its threads, the pipeline's processes and the HTTP server's process).
// Also a re-deploy of the same version onto a disk that holds it, the ratios of each re-deploy to
// a full deploy (wall and CPU seconds), and the issue's targets, met or not, from medians.
// The HTTP server (serve.ts) is a process of its own, as the site server is.
// Run: node --import tsx bench/imaging/run.ts   (BENCH_IMAGING_GIB=8, BENCH_IMAGING_REPS=3)
//   BENCH_IMAGING_COPIES=N          copies of the tree (default: as many as fill half the disk)
//   BENCH_IMAGING_ONLY=ours         skip the partclone pipeline
//   BENCH_IMAGING_INLINE=1          also our code with hashing inline (hashThreads 0), as "ours-inline"
//   BENCH_IMAGING_REPS=N            every measured phase N times, the pipelines' order alternating; summary from medians
//   BENCH_IMAGING_VARIANTS='t1={"hashThreads":1};b8={"fetchBatchBytes":8388608}'   also our code with these options, under these names
//   BENCH_IMAGING_BASE=DIR          also the images/ of another checkout (e.g. `git archive main | tar -x -C DIR`), as "base", in the same run
//   BENCH_IMAGING_CACHE=DIR         keep the built source disk (and one copy of the tree) there and reuse it in later runs
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { openDisk, type Disk } from '../../images/block-device.ts';
import { captureDisk, type CaptureOptions, type CaptureResult } from '../../images/capture.ts';
import { deployImage, type DeployOptions, type DeployResult } from '../../images/deploy.ts';
import { allChunks, type DiskImage } from '../../images/disk-image.ts';
import { maskUnused, totalLength } from '../../images/extents.ts';
import { fsUsage } from '../../images/used-blocks.ts';
import { HttpChunkSink, HttpChunkSource } from './http-chunks.ts';
import { sourceDisk } from './source-disk.ts';

const MiB = 1024 * 1024;
const GIB = Number(process.env.BENCH_IMAGING_GIB ?? 8);
const WITH_PARTCLONE = process.env.BENCH_IMAGING_ONLY !== 'ours';
const REPS = Number(process.env.BENCH_IMAGING_REPS ?? 3);
const CACHE = process.env.BENCH_IMAGING_CACHE;

/** Our capture and deploy, from this tree or another checkout's images/. */
interface Impl {
  readonly name: string;
  readonly openDisk: (path: string, mode: 'r' | 'r+') => Promise<Disk>;
  readonly captureDisk: (disk: Disk, opts: CaptureOptions) => Promise<CaptureResult>;
  readonly deployImage: (disk: Disk, img: DiskImage, opts: DeployOptions) => Promise<DeployResult>;
  readonly extra: { hashThreads?: number; fetchBatchBytes?: number };
}
const impls: Impl[] = [{ name: 'ours', openDisk, captureDisk, deployImage, extra: {} }];
if (process.env.BENCH_IMAGING_INLINE === '1') impls.push({ name: 'ours-inline', openDisk, captureDisk, deployImage, extra: { hashThreads: 0 } });
for (const v of (process.env.BENCH_IMAGING_VARIANTS ?? '').split(';').filter((x) => x !== '')) {
  const eq = v.indexOf('=');
  impls.push({ name: v.slice(0, eq), openDisk, captureDisk, deployImage, extra: JSON.parse(v.slice(eq + 1)) as Impl['extra'] });
}
if (process.env.BENCH_IMAGING_BASE) {
  const base = process.env.BENCH_IMAGING_BASE;
  const bd = (await import(join(base, 'images/block-device.ts'))) as { openDisk: Impl['openDisk'] };
  const bc = (await import(join(base, 'images/capture.ts'))) as { captureDisk: Impl['captureDisk'] };
  const bdep = (await import(join(base, 'images/deploy.ts'))) as { deployImage: Impl['deployImage'] };
  impls.push({ name: 'base', openDisk: bd.openDisk, captureDisk: bc.captureDisk, deployImage: bdep.deployImage, extra: {} });
}
const PC = 'partclone';
const targets = new Map<string, string>();
let partB = '';
const work = mkdtempSync(join(tmpdir(), 'bench-imaging-'));
const loops: string[] = [];
const shAsync = promisify(execFile);
const sh = (cmd: string, args: string[], input?: string): string => execFileSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 64 * MiB, timeout: 1_800_000 });
const attach = (file: string, offset = 0, size = 0): string => {
  const dev = sh('losetup', ['-f', '--show', ...(offset ? ['-o', String(offset)] : []), ...(size ? ['--sizelimit', String(size)] : []), file]).trim();
  loops.push(dev);
  return dev;
};
let serverPid = 0;
const cleanup = (): void => {
  if (serverPid) try { process.kill(serverPid); } catch { /* gone */ }
  for (const d of loops.reverse()) try { sh('losetup', ['-d', d]); } catch { /* gone */ }
  rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(1));
const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.error(`start ${new Date().toISOString()}, load average ${load()}`);
const loadStart = load();

const devStat = (dev: string): string[] => readFileSync(`/sys/block/${dev.replace('/dev/', '')}/stat`, 'utf8').trim().split(/\s+/);
const sectorsWritten = (dev: string): number => Number(devStat(dev)[6]) * 512;
const sectorsRead = (dev: string): number => Number(devStat(dev)[2]) * 512;
/** CPU seconds of a process (utime + stime), and of its waited-for children (cutime + cstime). */
const procCpu = (pid: number | 'self'): { own: number; children: number } => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { own: (Number(f[11]) + Number(f[12])) / 100, children: (Number(f[13]) + Number(f[14])) / 100 };
};

/** SHA-256 over the used blocks of the ext4 at `offset` of `dev` (free space ignored): equal on source and a correct restore. */
async function usedHash(dev: string, offset: number, size: number): Promise<string> {
  sh('blockdev', ['--flushbufs', dev]);
  const disk = await openDisk(dev, 'r');
  try {
    const u = await fsUsage((o, l) => disk.read(offset + o, l), size);
    const h = createHash('sha256');
    for (const e of u.used) {
      for (let at = e.start; at < e.start + e.length; at += 4 * MiB) {
        const n = Math.min(4 * MiB, e.start + e.length - at);
        const b = await disk.read(offset + at, n);
        maskUnused(b, at, u.used);
        h.update(b);
      }
    }
    return h.digest('hex');
  } finally {
    await disk.close();
  }
}

interface Row { phase: string; tool: string; rep: number; usedMB: number; wallS: number; sentMB: number; readMB: number; writtenMB: number; cpuS: number; serverCpuS: number; syncS: number | null; ok: boolean }
const rows: Row[] = [];
let lastSyncS: number | null = null;

// The source disk: built, or taken from the cache.
const source = sourceDisk({ gib: GIB, copies: process.env.BENCH_IMAGING_COPIES === undefined ? undefined : Number(process.env.BENCH_IMAGING_COPIES), cache: CACHE, work });
const { copies: COPIES, tree, partStart: pStart, partBytes: pSize } = source;
const src = source.path;
const srcLoop = attach(src);
const srcPart = attach(srcLoop, pStart, pSize);

// The HTTP server, its own process.
mkdirSync(join(work, 'server'), { recursive: true });
const server = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'serve.ts'), join(work, 'server')], { stdio: ['ignore', 'pipe', 'inherit'] });
serverPid = server.pid!;
const port = Number(await new Promise<string>((resolve) => createInterface({ input: server.stdout! }).once('line', resolve)));
const url = `http://127.0.0.1:${port}/raw`;
const stats = async (): Promise<{ bytesIn: number; bytesOut: number }> => (await fetch(`http://127.0.0.1:${port}/stats`)).json() as Promise<{ bytesIn: number; bytesOut: number }>;

/** `dev`: the disk read and written (its loop device's counters; its buffer cache is dropped first, so reads go through the loop driver). */
async function measure(phase: string, tool: string, rep: number, usedBytes: number, dir: 'bytesIn' | 'bytesOut', dev: string | null, fn: () => Promise<void>, check: () => Promise<boolean>): Promise<void> {
  if (dev) sh('blockdev', ['--flushbufs', dev]);
  const s0 = (await stats())[dir];
  const w0 = dev ? sectorsWritten(dev) : 0;
  const r0 = dev ? sectorsRead(dev) : 0;
  const c0 = process.cpuUsage();
  const k0 = procCpu('self').children;
  const v0 = procCpu(serverPid).own;
  lastSyncS = null;
  lastProfile = '';
  const t0 = performance.now();
  await fn();
  const wallS = (performance.now() - t0) / 1000;
  // Written bytes still in a partition loop's cache (partclone writes through one) reach the disk's counters.
  for (const d of dev === null ? [] : [...(dev === targets.get(PC) && partB ? [partB] : []), dev]) sh('blockdev', ['--flushbufs', d]);
  const c = process.cpuUsage(c0);
  const serverCpuS = procCpu(serverPid).own - v0;
  const cpuS = (c.user + c.system) / 1e6 + (procCpu('self').children - k0) + serverCpuS;
  const writtenMB = dev ? (sectorsWritten(dev) - w0) / 1e6 : 0;
  const readMB = dev ? (sectorsRead(dev) - r0) / 1e6 : 0;
  const sentMB = ((await stats())[dir] - s0) / 1e6;
  const r: Row = { phase, tool, rep, usedMB: usedBytes / 1e6, wallS, sentMB, readMB, writtenMB, cpuS, serverCpuS, syncS: lastSyncS, ok: await check() };
  rows.push(r);
  console.error(`${phase} ${tool} #${rep + 1}: ${r.wallS.toFixed(2)} s, ${(r.usedMB / r.wallS).toFixed(0)} MB/s, sent ${r.sentMB.toFixed(1)} MB, read ${r.readMB.toFixed(1)} MB, written ${r.writtenMB.toFixed(1)} MB, cpu ${r.cpuS.toFixed(2)} s (server ${r.serverCpuS.toFixed(2)})${r.syncS === null ? '' : `, final fsync ${r.syncS.toFixed(2)} s`}, ${r.ok ? 'data ok' : 'DATA WRONG'}; load ${load()}${lastProfile === '' ? '' : `\n  ${lastProfile}`}`);
}

async function ourCapture(impl: Impl, known: Iterable<string>): Promise<DiskImage> {
  const disk = await impl.openDisk(srcLoop, 'r');
  const sink = new HttpChunkSink(port, known);
  try {
    const r = await impl.captureDisk(disk, { sink, madeBy: 'capture', probeOs: false, ...impl.extra });
    await sink.close();
    return r.image;
  } finally {
    await disk.close();
  }
}
/** Where a deploy's time went (for the log): when the compare's last read ended, the writes, the fetches, the final fsync. */
let lastProfile = '';
async function ourDeploy(impl: Impl, target: string, image: DiskImage): Promise<void> {
  const disk: Disk = await impl.openDisk(target, 'r+');
  const t0 = performance.now();
  const p = { lastRead: 0, writes: 0, writeMs: 0, lastWrite: 0, fetches: 0, fetchMs: 0, fetchOpen: 0, since: 0 };
  const s = (ms: number): string => (ms / 1000).toFixed(2);
  const timed: Disk = {
    ...disk,
    readInto: async (o, b) => { await disk.readInto!(o, b); p.lastRead = performance.now() - t0; },
    write: async (o, b) => { const t = performance.now(); await disk.write(o, b); p.writes++; p.writeMs += performance.now() - t; p.lastWrite = performance.now() - t0; },
    sync: async () => { const t = performance.now(); await disk.sync(); lastSyncS = (performance.now() - t) / 1000; },
  };
  const http = new HttpChunkSource(port);
  // Fetch time counted while at least one request is on the wire (overlapping requests count once).
  const source: HttpChunkSource = Object.assign(Object.create(http) as HttpChunkSource, {
    getMany: async (ds: readonly string[]) => {
      if (p.fetchOpen++ === 0) p.since = performance.now();
      p.fetches++;
      try { return await http.getMany(ds); } finally { if (--p.fetchOpen === 0) p.fetchMs += performance.now() - p.since; }
    },
  });
  try {
    await impl.deployImage(timed, image, { source, grow: false, ...impl.extra });
    lastProfile = `compare's last read at ${s(p.lastRead)} s, ${p.fetches} fetches (${s(p.fetchMs)} s on the wire), ${p.writes} writes (${s(p.writeMs)} s), last write at ${s(p.lastWrite)} s, end at ${s(performance.now() - t0)} s`;
  } finally {
    await disk.close();
  }
}
const pcCapture = (name: string) => async () => {
  await shAsync('bash', ['-o', 'pipefail', '-c', `partclone.extfs -c -q -s ${srcPart} -o - 2>/dev/null | zstd -3 -T0 -q | curl -sf -T - ${url}/${name}`], { timeout: 1_800_000 });
};
const pcDeploy = (name: string, tgtPart: string) => async () => {
  try {
    await shAsync('bash', ['-c', `curl -sf ${url}/${name} | zstd -d -q | partclone.extfs -r -q -s - -o ${tgtPart} >/dev/null 2>&1`], { timeout: 1_800_000 });
  } catch {
    // partclone's exit status is not trusted either way: the data is checked
  }
};
/** The pipelines in rep's order: alternating which goes first. */
const ordered = <T>(xs: T[], rep: number): T[] => (rep % 2 === 0 ? xs : [...xs].reverse());

const used = totalLength((await fsUsage(async (o, l) => { const d = await openDisk(srcLoop, 'r'); try { return await d.read(pStart + o, l); } finally { await d.close(); } }, pSize)).used);
console.error(`source: ${GIB} GiB disk, ext4 ${(pSize / 1e9).toFixed(2)} GB with ${(used / 1e9).toFixed(2)} GB used (${COPIES} copies of the tree)`);
type Step = { name: string; run: (rep: number) => Promise<void> };

// 1. Full captures.
let v1!: DiskImage;
const resetStore = async (): Promise<void> => void (await fetch(`http://127.0.0.1:${port}/reset`, { method: 'POST' })).text();
const captureSteps: Step[] = impls.map((impl) => ({ name: impl.name, run: async (rep) => {
  await resetStore(); // every first capture stores everything, as partclone's upload writes its file every time
  await measure('capture', impl.name, rep, used, 'bytesIn', srcLoop, async () => { const v = await ourCapture(impl, []); v1 ??= v; }, async () => true);
} }));
if (WITH_PARTCLONE) captureSteps.push({ name: PC, run: (rep) => measure('capture', PC, rep, used, 'bytesIn', srcLoop, pcCapture('pc-v1'), async () => true) });
for (let rep = 0; rep < REPS; rep++) for (const s of ordered(captureSteps, rep)) await s.run(rep);

// 2. Full deploys onto blank disks (blkdiscard: the loop device punches holes in its file).
for (const name of [...impls.map((i) => i.name), ...(WITH_PARTCLONE ? [PC] : [])]) {
  const file = join(work, `${name}.img`);
  sh('truncate', ['-s', `${GIB}G`, file]);
  targets.set(name, attach(file));
}
if (WITH_PARTCLONE) {
  const loopB = targets.get(PC)!;
  sh('sfdisk', ['-q', loopB], sh('sfdisk', ['-d', srcLoop]));
  partB = attach(loopB, pStart, pSize);
}
const h1 = await usedHash(srcLoop, pStart, pSize);
const checkTarget = (name: string, h: string) => async () => (await usedHash(targets.get(name)!, pStart, pSize)) === h;
const deploySteps: Step[] = impls.map((impl) => ({ name: impl.name, run: async (rep) => {
  const t = targets.get(impl.name)!;
  sh('blkdiscard', ['-f', t]);
  await measure('deploy', impl.name, rep, used, 'bytesOut', t, () => ourDeploy(impl, t, v1), checkTarget(impl.name, h1));
} }));
if (WITH_PARTCLONE) deploySteps.push({ name: PC, run: async (rep) => {
  sh('blkdiscard', ['-f', partB]);
  await measure('deploy', PC, rep, used, 'bytesOut', targets.get(PC)!, pcDeploy('pc-v1', partB), checkTarget(PC, h1));
} });
for (let rep = 0; rep < REPS; rep++) for (const s of ordered(deploySteps, rep)) await s.run(rep);

// 3. The same version again onto the disk that holds it: compare in place, nothing to fetch or write.
for (let rep = 0; rep < REPS; rep++) {
  for (const impl of ordered(impls, rep)) {
    const t = targets.get(impl.name)!;
    await measure('re-deploy unchanged', impl.name, rep, used, 'bytesOut', t, () => ourDeploy(impl, t, v1), checkTarget(impl.name, h1));
  }
}

// 4. A 1 % change: files rewritten (new blocks, as a package upgrade writes them) and added.
const files: string[] = [];
const walk = (dir: string, rel: string): void => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) walk(join(dir, e.name), `${rel}/${e.name}`);
    else if (e.isFile() && statSync(join(dir, e.name)).size > 16384) files.push(`${rel}/${e.name}`);
  }
};
walk(join(tree, 'copy-0'), '');
const all: string[] = [];
for (let i = 0; i < COPIES; i++) for (const f of files) all.push(`/copy-${i}${f}`);
let budget = used / 100 - 2 * MiB;
const cmds: string[] = [];
for (const [i, f] of all.sort((a, b) => (createHash('md5').update(a).digest('hex') < createHash('md5').update(b).digest('hex') ? -1 : 1)).entries()) {
  if (budget <= 0) break;
  const content = readFileSync(join(tree, 'copy-0', f.replace(/^\/copy-\d+/, '')));
  const next = Buffer.concat([content.subarray(0, content.length >> 1), randomBytes(100), content.subarray(content.length >> 1)]);
  writeFileSync(join(work, `n${i}`), next);
  cmds.push(`rm ${f}`, `write ${join(work, `n${i}`)} ${f}`);
  budget -= next.length;
}
writeFileSync(join(work, 'add.bin'), randomBytes(2 * MiB));
cmds.push(`write ${join(work, 'add.bin')} /added.bin`);
writeFileSync(join(work, 'cmds'), `${cmds.join('\n')}\n`);
sh('debugfs', ['-w', '-f', join(work, 'cmds'), srcPart]);
sh('blockdev', ['--flushbufs', srcPart]);
sh('blockdev', ['--flushbufs', srcLoop]);
const h2 = await usedHash(srcLoop, pStart, pSize);
const used2 = totalLength((await fsUsage(async (o, l) => { const d = await openDisk(srcLoop, 'r'); try { return await d.read(pStart + o, l); } finally { await d.close(); } }, pSize)).used);

// 5. Second captures: ours knows the first version's chunks (the site holds them); partclone sends all again.
let v2!: DiskImage;
const v1Digests = allChunks(v1).map((c) => c.digest);
const capture2Steps: Step[] = impls.map((impl) => ({ name: impl.name, run: (rep) => measure('capture 1 % changed', impl.name, rep, used2, 'bytesIn', srcLoop, async () => { const v = await ourCapture(impl, v1Digests); v2 ??= v; }, async () => true) }));
// partclone's second capture is a full one again (once: it is the full capture's cost, measured N times above).
if (WITH_PARTCLONE) capture2Steps.push({ name: PC, run: async (rep) => { if (rep === 0) await measure('capture 1 % changed', PC, rep, used2, 'bytesIn', srcLoop, pcCapture('pc-v2'), async () => true); } });
for (let rep = 0; rep < REPS; rep++) for (const s of ordered(capture2Steps, rep)) await s.run(rep);

// 6. Re-deploys of the second version onto disks holding the first. Before each repetition after
//    the first, the target is put back exactly as a full deploy of v1 onto a blank disk leaves it
//    (v1 deployed, then v2's new chunks' bytes outside v1's used blocks zeroed), not measured.
const v1Part = v1.partitions.find((p) => p.fs === 'ext4')!;
const v1Set = new Set(v1Part.chunks.map((c) => `${c.offset}:${c.digest}`));
async function backToV1(impl: Impl, t: string): Promise<void> {
  await ourDeploy(impl, t, v1);
  const disk = await openDisk(t, 'r+');
  try {
    for (const c of v2.partitions.find((p) => p.fs === 'ext4')!.chunks) {
      if (v1Set.has(`${c.offset}:${c.digest}`)) continue;
      const b = await disk.read(pStart + c.offset, c.length);
      maskUnused(b, c.offset, v1Part.used);
      await disk.write(pStart + c.offset, b);
    }
    await disk.sync();
  } finally {
    await disk.close();
  }
}
const redeploySteps: Step[] = impls.map((impl) => ({ name: impl.name, run: async (rep) => {
  const t = targets.get(impl.name)!;
  if (rep > 0) await backToV1(impl, t);
  await measure('re-deploy 1 % changed', impl.name, rep, used2, 'bytesOut', t, () => ourDeploy(impl, t, v2), checkTarget(impl.name, h2));
} }));
// partclone has no compare in place: its re-deploy is a full restore (once).
if (WITH_PARTCLONE) redeploySteps.push({ name: PC, run: async (rep) => {
  if (rep === 0) await measure('re-deploy 1 % changed', PC, rep, used2, 'bytesOut', targets.get(PC)!, pcDeploy('pc-v2', partB), checkTarget(PC, h2));
} });
for (let rep = 0; rep < REPS; rep++) for (const s of ordered(redeploySteps, rep)) await s.run(rep);
server.kill();
serverPid = 0;
const loadEnd = load();

// The report.
const cpuModel = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? '';
console.log(`\n${GIB} GiB GPT disk, ext4 with ${(used / 1e6).toFixed(0)} MB used (${(used2 / 1e6).toFixed(0)} MB after the 1 % change), ${COPIES} copies of the tree; HTTP on loopback (a process of its own); ${cpuModel}, ${sh('nproc', []).trim()} cores`);
console.log(`load average ${loadStart} at the start, ${loadEnd} at the end; ${new Date().toISOString()}`);
console.log('\nEvery run (CPU: this process and its threads, the pipeline\'s processes, the HTTP server):\n');
console.log('| phase | pipeline | rep | s | MB/s of used data | sent MB | read MB | written MB | CPU s | of which server | final fsync s | check |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
for (const r of rows) console.log(`| ${r.phase} | ${r.tool} | ${r.rep + 1} | ${r.wallS.toFixed(2)} | ${(r.usedMB / r.wallS).toFixed(0)} | ${r.sentMB.toFixed(1)} | ${r.readMB.toFixed(1)} | ${r.writtenMB.toFixed(1)} | ${r.cpuS.toFixed(2)} | ${r.serverCpuS.toFixed(2)} | ${r.syncS === null ? '' : r.syncS.toFixed(2)} | ${r.ok ? 'data ok' : 'DATA WRONG'} |`);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const med = (phase: string, tool: string) => {
  const of = rows.filter((r) => r.phase === phase && r.tool === tool);
  if (of.length === 0) return null;
  return { n: of.length, usedMB: of[0]!.usedMB, wallS: median(of.map((r) => r.wallS)), min: Math.min(...of.map((r) => r.wallS)), max: Math.max(...of.map((r) => r.wallS)), sentMB: median(of.map((r) => r.sentMB)), writtenMB: median(of.map((r) => r.writtenMB)), readMB: median(of.map((r) => r.readMB)), cpuS: median(of.map((r) => r.cpuS)), ok: of.every((r) => r.ok) };
};
const phases = ['capture', 'deploy', 're-deploy unchanged', 'capture 1 % changed', 're-deploy 1 % changed'];
const tools = [...impls.map((i) => i.name), ...(WITH_PARTCLONE ? [PC] : [])];
console.log(`\nMedians${REPS > 1 ? ` of ${REPS}` : ''} (wall range in brackets):\n`);
console.log('| phase | pipeline | s | MB/s of used data | sent MB | written MB | read MB | CPU s | check |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
for (const phase of phases) {
  for (const tool of tools) {
    const m = med(phase, tool);
    if (m === null) continue;
    console.log(`| ${phase} | ${tool === PC ? (phase.startsWith('capture') ? 'partclone\\|zstd\\|http' : 'http\\|zstd -d\\|partclone') : tool} | ${m.wallS.toFixed(2)}${m.n > 1 ? ` (${m.min.toFixed(2)}-${m.max.toFixed(2)})` : ''} | ${(m.usedMB / m.wallS).toFixed(0)} | ${m.sentMB.toFixed(1)} | ${m.writtenMB.toFixed(1)} | ${m.readMB.toFixed(1)} | ${m.cpuS.toFixed(2)} | ${m.ok ? 'data ok' : 'DATA WRONG'} |`);
  }
}
const pct = (a: number, b: number): string => `${((100 * a) / b).toFixed(1)} %`;
const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');
console.log('\nTargets (medians):\n');
for (const impl of impls) {
  const cap = med('capture', impl.name)!;
  const dep = med('deploy', impl.name)!;
  const same = med('re-deploy unchanged', impl.name)!;
  const one = med('re-deploy 1 % changed', impl.name)!;
  const cap2 = med('capture 1 % changed', impl.name)!;
  const pcCap = med('capture', PC);
  const pcDep = med('deploy', PC);
  if (pcCap !== null && pcDep !== null) {
    console.log(`- ${impl.name}: full capture ${cap.wallS.toFixed(2)} s against the pipeline's ${pcCap.wallS.toFixed(2)} s (${(cap.usedMB / cap.wallS).toFixed(0)} against ${(pcCap.usedMB / pcCap.wallS).toFixed(0)} MB/s): ${verdict(cap.wallS <= pcCap.wallS)}`);
    console.log(`- ${impl.name}: full deploy ${dep.wallS.toFixed(2)} s against the pipeline's ${pcDep.wallS.toFixed(2)} s (${(dep.usedMB / dep.wallS).toFixed(0)} against ${(pcDep.usedMB / pcDep.wallS).toFixed(0)} MB/s): ${verdict(dep.wallS <= pcDep.wallS)}`);
  }
  console.log(`- ${impl.name}: re-deploy after a 1 % change sent ${pct(one.sentMB, one.usedMB)} and wrote ${pct(one.writtenMB, one.usedMB)} of the used data (${one.sentMB.toFixed(1)} and ${one.writtenMB.toFixed(1)} MB): ${verdict(one.sentMB < 0.02 * one.usedMB && one.writtenMB < 0.02 * one.usedMB)}`);
  console.log(`- ${impl.name}: re-deploy after a 1 % change took ${pct(one.wallS, dep.wallS)} of a full deploy's time (${one.wallS.toFixed(2)} against ${dep.wallS.toFixed(2)} s; CPU ${pct(one.cpuS, dep.cpuS)}): ${verdict(one.wallS < dep.wallS / 5)}; unchanged ${pct(same.wallS, dep.wallS)} (CPU ${pct(same.cpuS, dep.cpuS)})`);
  console.log(`- ${impl.name}: second capture of the 1 % different disk sent ${pct(cap2.sentMB, cap2.usedMB)} of the used data (${cap2.sentMB.toFixed(1)} MB; the first sent ${cap.sentMB.toFixed(1)} MB): ${verdict(cap2.sentMB < 0.02 * cap2.usedMB)}`);
}
