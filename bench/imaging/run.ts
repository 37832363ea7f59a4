// Our capture and deploy beside the pipeline FOG and Clonezilla use, on loop devices, through a
// real HTTP server on loopback: `partclone.extfs -c | zstd | HTTP upload` and
// `HTTP download | zstd -d | partclone.extfs -r`. A GPT disk with one ext4 holding a realistic
// tree (copies of /usr/share/doc, man, locale and /usr/lib/python3.11), then a 1 % change (files
// rewritten and added by debugfs, as an upgrade does), then a second capture and a re-deploy onto
// the disk that holds the first version. Every restore is checked by its data (the used blocks of
// source and target hashed alike), not by exit codes (partclone 0.3.23 has aborted at the end of a
// correct restore and exited 0 on errors). Prints MB/s of used data, bytes sent, bytes read and
// written (the disk's loop device's own counters), CPU (this process with its threads, the
// pipeline's processes).
// Also a re-deploy of the same version onto a disk that holds it, and the ratios of each re-deploy
// to a full deploy (wall and CPU seconds; CPU is less sensitive to a loaded machine).
// Run: node --import tsx bench/imaging/run.ts   (BENCH_IMAGING_GIB=2, BENCH_IMAGING_COPIES=2)
//   BENCH_IMAGING_ONLY=ours         skip the partclone pipeline
//   BENCH_IMAGING_INLINE=1          also our code with hashing inline (hashThreads 0), as "ours-inline"
//   BENCH_IMAGING_REPS=N            full deploys (onto the target blanked by blkdiscard), unchanged and 1 % re-deploys N times, interleaved across pipelines; ratios from medians
//   BENCH_IMAGING_BASE=DIR          also the images/ of another checkout (e.g. `git archive main | tar -x -C DIR`), as "base", in the same run
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDisk, type Disk } from '../../images/block-device.ts';
import { captureDisk, type CaptureOptions, type CaptureResult } from '../../images/capture.ts';
import { deployImage, type DeployOptions, type DeployResult } from '../../images/deploy.ts';
import { allChunks, type DiskImage } from '../../images/disk-image.ts';
import { maskUnused, totalLength } from '../../images/extents.ts';
import { fsUsage } from '../../images/used-blocks.ts';
import { BenchServer, HttpChunkSink, HttpChunkSource } from './http-chunks.ts';

const MiB = 1024 * 1024;
const GIB = Number(process.env.BENCH_IMAGING_GIB ?? 2);
const COPIES = Number(process.env.BENCH_IMAGING_COPIES ?? 2);
const WITH_PARTCLONE = process.env.BENCH_IMAGING_ONLY !== 'ours';
const REPS = Number(process.env.BENCH_IMAGING_REPS ?? 1);

/** Our capture and deploy, from this tree or another checkout's images/. */
interface Impl {
  readonly name: string;
  readonly openDisk: (path: string, mode: 'r' | 'r+') => Promise<Disk>;
  readonly captureDisk: (disk: Disk, opts: CaptureOptions) => Promise<CaptureResult>;
  readonly deployImage: (disk: Disk, img: DiskImage, opts: DeployOptions) => Promise<DeployResult>;
  readonly extra: { hashThreads?: number };
}
const impls: Impl[] = [{ name: 'ours', openDisk, captureDisk, deployImage, extra: {} }];
if (process.env.BENCH_IMAGING_INLINE === '1') impls.push({ name: 'ours-inline', openDisk, captureDisk, deployImage, extra: { hashThreads: 0 } });
if (process.env.BENCH_IMAGING_BASE) {
  const base = process.env.BENCH_IMAGING_BASE;
  const bd = (await import(join(base, 'images/block-device.ts'))) as { openDisk: Impl['openDisk'] };
  const bc = (await import(join(base, 'images/capture.ts'))) as { captureDisk: Impl['captureDisk'] };
  const bdep = (await import(join(base, 'images/deploy.ts'))) as { deployImage: Impl['deployImage'] };
  impls.push({ name: 'base', openDisk: bd.openDisk, captureDisk: bc.captureDisk, deployImage: bdep.deployImage, extra: {} });
}
const work = mkdtempSync(join(tmpdir(), 'bench-imaging-'));
const loops: string[] = [];
const shAsync = promisify(execFile);
const sh = (cmd: string, args: string[], input?: string): string => execFileSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 64 * MiB, timeout: 1_800_000 });
const attach = (file: string, offset = 0, size = 0): string => {
  const dev = sh('losetup', ['-f', '--show', ...(offset ? ['-o', String(offset)] : []), ...(size ? ['--sizelimit', String(size)] : []), file]).trim();
  loops.push(dev);
  return dev;
};
const cleanup = (): void => {
  for (const d of loops.reverse()) try { sh('losetup', ['-d', d]); } catch { /* gone */ }
  rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(1));

const devStat = (dev: string): string[] => readFileSync(`/sys/block/${dev.replace('/dev/', '')}/stat`, 'utf8').trim().split(/\s+/);
const sectorsWritten = (dev: string): number => Number(devStat(dev)[6]) * 512;
const sectorsRead = (dev: string): number => Number(devStat(dev)[2]) * 512;
const childCpu = (): number => {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[13]) + Number(f[14])) / 100; // cutime + cstime (waited-for children), ticks
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

interface Row { phase: string; tool: string; usedMB: number; wallS: number; sentMB: number; readMB: number; writtenMB: number; cpuS: number; ok: string }
const rows: Row[] = [];

/** `dev`: the disk read and written (its loop device's counters; its buffer cache is dropped first, so reads go through the loop driver). */
async function measure(phase: string, tool: string, usedBytes: number, sent: () => number, dev: string | null, fn: () => Promise<void>, check: () => Promise<boolean>): Promise<void> {
  if (dev) sh('blockdev', ['--flushbufs', dev]);
  const s0 = sent();
  const w0 = dev ? sectorsWritten(dev) : 0;
  const r0 = dev ? sectorsRead(dev) : 0;
  const c0 = process.cpuUsage();
  const k0 = childCpu();
  const t0 = performance.now();
  await fn();
  const wallS = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpuS = (c.user + c.system) / 1e6 + (childCpu() - k0);
  const writtenMB = dev ? (sectorsWritten(dev) - w0) / 1e6 : 0;
  const readMB = dev ? (sectorsRead(dev) - r0) / 1e6 : 0;
  rows.push({ phase, tool, usedMB: usedBytes / 1e6, wallS, sentMB: (sent() - s0) / 1e6, readMB, writtenMB, cpuS, ok: (await check()) ? 'data ok' : 'DATA WRONG' });
  const r = rows[rows.length - 1]!;
  console.error(`${phase} ${tool}: ${r.wallS.toFixed(1)} s, ${(r.usedMB / r.wallS).toFixed(0)} MB/s, sent ${r.sentMB.toFixed(1)} MB, read ${r.readMB.toFixed(1)} MB, written ${r.writtenMB.toFixed(1)} MB, cpu ${r.cpuS.toFixed(2)} s, ${r.ok}`);
}

// The source disk.
const tree = join(work, 'tree');
for (let i = 0; i < COPIES; i++) {
  mkdirSync(join(tree, `copy-${i}`), { recursive: true });
  for (const d of ['/usr/share/doc', '/usr/share/man', '/usr/share/locale', '/usr/lib/python3.11']) sh('cp', ['-a', d, join(tree, `copy-${i}`)]);
}
const src = join(work, 'src.img');
sh('truncate', ['-s', `${GIB}G`, src]);
sh('sfdisk', ['-q', src], 'label: gpt\nstart=2048, type=L\n');
const part = JSON.parse(sh('sfdisk', ['-J', src])).partitiontable.partitions[0] as { start: number; size: number };
const pStart = part.start * 512;
const pSize = part.size * 512;
sh('mkfs.ext4', ['-q', '-F', '-E', `offset=${pStart}`, '-d', tree, src, `${pSize / 1024}k`]);
const srcLoop = attach(src);
const srcPart = attach(srcLoop, pStart, pSize);
mkdirSync(join(work, 'server'), { recursive: true });
const server = new BenchServer(join(work, 'server'));
await server.start();
const url = `http://127.0.0.1:${server.port}/raw`;
const sentUp = () => server.bytesIn;
const sentDown = () => server.bytesOut;
const srcHash = async () => usedHash(srcLoop, pStart, pSize);

async function ourCapture(impl: Impl, known: Iterable<string>): Promise<DiskImage> {
  const disk = await impl.openDisk(srcLoop, 'r');
  const sink = new HttpChunkSink(server.port, known);
  try {
    const r = await impl.captureDisk(disk, { sink, madeBy: 'capture', probeOs: false, ...impl.extra });
    await sink.close();
    return r.image;
  } finally {
    await disk.close();
  }
}
async function ourDeploy(impl: Impl, target: string, image: DiskImage): Promise<void> {
  const disk: Disk = await impl.openDisk(target, 'r+');
  try {
    await impl.deployImage(disk, image, { source: new HttpChunkSource(server.port), grow: false, ...impl.extra });
  } finally {
    await disk.close();
  }
}
const pcCapture = (name: string) => async () => {
  // Asynchronous: the HTTP server receiving the upload runs in this process.
  await shAsync('bash', ['-o', 'pipefail', '-c', `partclone.extfs -c -q -s ${srcPart} -o - 2>/dev/null | zstd -3 -T0 -q | curl -sf -T - ${url}/${name}`], { timeout: 1_800_000 });
};
const pcDeploy = (name: string, tgtPart: string) => async () => {
  try {
    await shAsync('bash', ['-c', `curl -sf ${url}/${name} | zstd -d -q | partclone.extfs -r -q -s - -o ${tgtPart} >/dev/null 2>&1`], { timeout: 1_800_000 });
  } catch {
    // partclone's exit status is not trusted either way: the data is checked
  }
};

const used = totalLength((await fsUsage(async (o, l) => { const d = await openDisk(srcLoop, 'r'); try { return await d.read(pStart + o, l); } finally { await d.close(); } }, pSize)).used);
console.error(`source: ${GIB} GiB disk, ext4 ${(pSize / 1e9).toFixed(2)} GB with ${(used / 1e9).toFixed(2)} GB used`);
let v1!: DiskImage;
for (const impl of impls) await measure('capture', impl.name, used, sentUp, srcLoop, async () => { const v = await ourCapture(impl, []); v1 ??= v; }, async () => true);
if (WITH_PARTCLONE) await measure('capture', 'partclone|zstd|http', used, sentUp, srcLoop, pcCapture('pc-v1'), async () => true);

const targets = new Map<string, string>();
for (const name of [...impls.map((i) => i.name), 'partclone']) {
  const file = join(work, `${name}.img`);
  sh('truncate', ['-s', `${GIB}G`, file]);
  targets.set(name, attach(file));
}
const loopB = targets.get('partclone')!;
sh('sfdisk', ['-q', loopB], sh('sfdisk', ['-d', srcLoop]));
const partB = attach(loopB, pStart, pSize);
const h1 = await srcHash();
for (let rep = 0; rep < REPS; rep++) {
  for (const impl of impls) {
    const t = targets.get(impl.name)!;
    if (rep > 0) sh('blkdiscard', ['-f', t]); // blank again (the loop device punches holes in its file)
    await measure('deploy', impl.name, used, sentDown, t, () => ourDeploy(impl, t, v1), async () => (await usedHash(t, pStart, pSize)) === h1);
  }
}
if (WITH_PARTCLONE) await measure('deploy', 'http|zstd -d|partclone', used, sentDown, loopB, pcDeploy('pc-v1', partB), async () => (await usedHash(loopB, pStart, pSize)) === h1);
// The same version again onto the disk that holds it: compare in place, nothing to fetch or write.
for (let rep = 0; rep < REPS; rep++) {
  for (const impl of impls) {
    const t = targets.get(impl.name)!;
    await measure('re-deploy unchanged', impl.name, used, sentDown, t, () => ourDeploy(impl, t, v1), async () => (await usedHash(t, pStart, pSize)) === h1);
  }
}

// A 1 % change: files rewritten (new blocks, as a package upgrade writes them) and added.
const files: string[] = [];
const walk = (dir: string, rel: string): void => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) walk(join(dir, e.name), `${rel}/${e.name}`);
    else if (e.isFile() && statSync(join(dir, e.name)).size > 16384) files.push(`${rel}/${e.name}`);
  }
};
walk(tree, '');
let budget = used / 100 - 2 * MiB;
const cmds: string[] = [];
for (const [i, f] of files.sort((a, b) => (createHash('md5').update(a).digest('hex') < createHash('md5').update(b).digest('hex') ? -1 : 1)).entries()) {
  if (budget <= 0) break;
  const content = readFileSync(join(tree, f));
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
const h2 = await srcHash();

let v2!: DiskImage;
for (const impl of impls) await measure('capture 1 % changed', impl.name, used, sentUp, srcLoop, async () => { const v = await ourCapture(impl, allChunks(v1).map((c) => c.digest)); v2 ??= v; }, async () => true);
if (WITH_PARTCLONE) await measure('capture 1 % changed', 'partclone|zstd|http', used, sentUp, srcLoop, pcCapture('pc-v2'), async () => true);
for (let rep = 0; rep < REPS; rep++) {
  for (const impl of impls) {
    const t = targets.get(impl.name)!;
    if (rep > 0) await ourDeploy(impl, t, v1); // back to the first version (not measured)
    await measure('re-deploy 1 % changed', impl.name, used, sentDown, t, () => ourDeploy(impl, t, v2), async () => (await usedHash(t, pStart, pSize)) === h2);
  }
}
if (WITH_PARTCLONE) await measure('re-deploy 1 % changed', 'http|zstd -d|partclone', used, sentDown, loopB, pcDeploy('pc-v2', partB), async () => (await usedHash(loopB, pStart, pSize)) === h2);
await server.stop();

console.log(`\n${GIB} GiB disk, ext4 with ${(used / 1e6).toFixed(0)} MB used; HTTP on loopback; ${readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? ''}`);
console.log('| phase | pipeline | s | MB/s of used data | sent MB | read MB | written MB | CPU s | check |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
for (const r of rows) console.log(`| ${r.phase} | ${r.tool} | ${r.wallS.toFixed(2)} | ${(r.usedMB / r.wallS).toFixed(0)} | ${r.sentMB.toFixed(1)} | ${r.readMB.toFixed(1)} | ${r.writtenMB.toFixed(1)} | ${r.cpuS.toFixed(2)} | ${r.ok} |`);
console.log(`\n${REPS > 1 ? `medians of ${REPS}: ` : ''}`);
console.log('| pipeline | re-deploy unchanged / deploy, wall (CPU) | re-deploy 1 % changed / deploy, wall (CPU) |');
console.log('| --- | ---: | ---: |');
const pct = (a: number, b: number): string => `${((100 * a) / b).toFixed(1)} %`;
for (const impl of impls) {
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[(xs.length - 1) >> 1]!;
  const find = (phase: string) => {
    const of = rows.filter((r) => r.phase === phase && r.tool === impl.name);
    return { wallS: median(of.map((r) => r.wallS)), cpuS: median(of.map((r) => r.cpuS)) };
  };
  const full = find('deploy');
  const same = find('re-deploy unchanged');
  const one = find('re-deploy 1 % changed');
  console.log(`| ${impl.name} | ${pct(same.wallS, full.wallS)} (${pct(same.cpuS, full.cpuS)}) | ${pct(one.wallS, full.wallS)} (${pct(one.cpuS, full.cpuS)}) |`);
}
console.log(`\n${new Date().toISOString()}; uptime: ${sh('uptime', []).trim()}`);
