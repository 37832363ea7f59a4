// bench/replication/versions.ts: what a new version of a large disk image costs (issue 19). For
// each size, in one run: a generated ext4 image (mkfs.ext4 -d over a tree of varied files) is
// published on A and replicated to B (two `netboot run interface` processes on loopback), then a
// 100 KiB file is written into the image with debugfs and the image published again. Measured:
// the time from the start of the republish to Ready on B, bytes A sent to B, disk used by the
// package on A and on B with both versions held against one, CPU seconds of each process; beside
// `rsync --no-whole-file --inplace` of the same change and `sha256sum` of the image.
//   node --import tsx bench/replication/versions.ts [--sizes 1024,8192] [--dir /tmp] [--keep]
// --dir: where the images and data folders go (its filesystem decides: ext4, no reflinks; a
// loop-mounted XFS with reflink=1: publish from reflinked snapshots).
// Targets: republish -> Ready on B < 3 s at every size, < 1 MiB sent, both versions < 1.01x one.
// Needs e2fsprogs (mkfs.ext4, debugfs), rsync, coreutils, time.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, stringFlag } from '../../cli/args.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { waitFor } from '../../test/helpers/env.ts';
import { spawnService, type ServiceProcess } from '../../test/helpers/process.ts';
import { makeSites, type Described, type Site } from '../../test/packages/sites.ts';
import { textBytes } from './text-bytes.ts';

const args = parseArgs(process.argv.slice(2), ['keep']);
const SIZES = (stringFlag(args, 'sizes') ?? '1024,8192').split(',').map(Number);
const BASE = stringFlag(args, 'dir') ?? '/tmp';
const KEEP = args.flags.has('keep');
const MIB = 1048576;

function log(line: string): void {
  process.stdout.write(line + '\n');
}

/** A tree like an installed system: many small text files, binaries, a database, zeros, media. */
function makeTree(dir: string, budget: number): void {
  let bytes = 0;
  const put = (rel: string, data: Buffer): void => {
    const p = join(dir, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, data);
    bytes += data.length;
  };
  for (let i = 0; i < 3000; i++) put(`etc/conf${i % 40}/file${i}.conf`, textBytes(500 + ((i * 7919) % 20_000), i + 1));
  const big = budget - bytes;
  for (let i = 0, left = Math.floor(big * 0.45); left > 0; i++) {
    const n = Math.min(left, 1_000_000 + ((i * 2_654_435_761) % 9_000_000));
    put(`usr/lib/lib${i}.so`, randomBytes(n));
    left -= n;
  }
  const db = Buffer.alloc(Math.min(Math.floor(big * 0.25), 1024 * MIB));
  for (let off = 0, r = 0; off < db.length; off += 256, r++) db.write(`record ${String(r).padStart(10, '0')} name=user${r % 5000} balance=${(r * 37) % 100000} `.padEnd(256, '.'), off);
  put('var/lib/db/main.db', db);
  put('var/cache/zeros.bin', Buffer.alloc(Math.floor(big * 0.05)));
  for (let i = 0; bytes < budget - 1024; i++) put(`home/user/video${i}.mp4`, randomBytes(Math.min(512 * MIB, budget - bytes - 1024)));
}

/** Disk blocks used under `dir`, each inode once. */
function diskBytes(dir: string, seen = new Set<number>()): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const st = lstatSync(p);
    if (e.isDirectory()) n += diskBytes(p, seen);
    else if (!seen.has(st.ino)) {
      seen.add(st.ino);
      n += st.blocks * 512;
    }
  }
  return n;
}

/** CPU seconds (user + system, every thread) of a running process. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Runs a command under /usr/bin/time: wall seconds, CPU seconds, stdout. */
function timed(cmd: string, argv: string[]): { wall: number; cpu: number; out: string } {
  const t = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', cmd, ...argv], { encoding: 'utf8', maxBuffer: 64 * MIB });
  const wall = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const [u, s] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wall, cpu: u! + s!, out: r.stdout };
}

const control = (s: Site, path: string, body?: unknown): Promise<unknown> =>
  controlCall(controlSocketPath(s.config.paths.data, 'interface'), body === undefined ? 'GET' : 'POST', path, body);

async function publish(s: Site, dir: string, id: string): Promise<{ seq: number; digest: string; updatedAt: string }> {
  const { job } = (await control(s, '/packages/publish', { dir, id, kind: 'image' })) as { job: string };
  const j = await waitFor('publish', async () => {
    const r = (await control(s, `/packages/jobs?id=${job}`).catch(() => null)) as { state: string; error?: string; ref?: { seq: number; digest: string; updatedAt: string } } | null;
    return r === null || r.state === 'running' ? undefined : r;
  }, 1_800_000, 5);
  if (j.state !== 'done') throw new Error(`publish failed: ${j.error}`);
  return j.ref!;
}

const sent = (d: Described, peer: string): number => (d.served[peer]?.bytes ?? 0) + (d.served[peer]?.manifestBytes ?? 0);

async function one(sizeMib: number): Promise<void> {
  const work = mkdtempSync(join(BASE, 'netboot-bench-versions-'));
  const procs: ServiceProcess[] = [];
  let env: Awaited<ReturnType<typeof makeSites>> | null = null;
  const savedTmp = process.env.TMPDIR;
  try {
    const fsType = execFileSync('stat', ['-f', '-c', '%T', work]).toString().trim();
    const pub = join(work, 'package');
    mkdirSync(pub);
    const image = join(pub, 'disk.img');
    const tree = join(work, 'tree');
    let t = performance.now();
    makeTree(tree, Math.floor(sizeMib * MIB * 0.85));
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'bench', '-d', tree, image, `${sizeMib}M`]);
    rmSync(tree, { recursive: true, force: true });
    log(`\n== ${sizeMib} MiB ext4 image (made in ${((performance.now() - t) / 1000).toFixed(0)} s); data folders on ${fsType} (${work})`);

    process.env.TMPDIR = work; // the sites' data folders go here too
    env = await makeSites(['a', 'b'], { extra: '[log]\nlevel = "info"\n[packages]\nscrub_interval_ms = 0\n' });
    const [A, B] = env.sites as [Site, Site];
    for (const s of [A, B]) procs.push(spawnService(['interface'], s.configPath));
    const [aProc, bProc] = procs as [ServiceProcess, ServiceProcess];
    for (const s of [A, B]) await waitFor(`${s.id} up`, async () => ((await control(s, '/packages').catch(() => undefined)) !== undefined ? true : undefined), 60_000, 50);
    await waitFor('peers linked', async () => ((await control(B, '/packages')) as Described).links.every((l) => l.connected) || undefined, 30_000, 50);
    const serving = await waitFor('B serving', () => bProc.logs.find((l) => l.msg === 'packages serving'), 30_000, 20);
    log(`B at start: reflinks ${String(serving?.reflinks)}: ${String(serving?.versions)}`);

    t = performance.now();
    const v1 = await publish(A, pub, 'img');
    const firstMs = performance.now() - t;
    // A busy server may not answer a poll in time (indexing a first version of 8 GiB): ask again.
    const statusOf = async (s: Site, digest: string) => ((await control(s, '/packages?id=img').catch(() => null)) as Described | null)?.packages[0]?.statuses.find((x) => x.server === s.id && x.state === 'ready' && x.digest === digest);
    t = performance.now();
    await waitFor('B ready at v1', () => statusOf(B, v1.digest), 3_600_000, 50);
    log(`v1: publish on A ${(firstMs / 1000).toFixed(1)} s; first copy to B ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const pkgDir = (s: Site): string => join(s.config.paths.data, 'packages', 'img');
    const oneA = diskBytes(pkgDir(A));
    const oneB = diskBytes(pkgDir(B));

    // rsync's side: the replica's copy of v1 (a plain copy: rsync needs a file).
    const old = join(work, 'old.img');
    copyFileSync(image, old);

    // The change: a 100 KiB file written into the filesystem (data, inode, bitmaps, directory).
    writeFileSync(join(work, 'new.bin'), randomBytes(100 * 1024));
    execFileSync('debugfs', ['-w', '-R', `write ${join(work, 'new.bin')} new-100k.bin`, image], { stdio: 'ignore' });

    const sentBefore = sent((await control(A, '/packages')) as Described, 'b');
    const cpuA0 = cpuSeconds(aProc.child.pid!);
    const cpuB0 = cpuSeconds(bProc.child.pid!);
    const logsA = aProc.logs.length;
    const logsB = bProc.logs.length;
    const start = Date.now();
    const v2 = await publish(A, pub, 'img');
    await waitFor('B ready at v2', () => statusOf(B, v2.digest), 1_800_000, 10);
    const ready = bProc.logs.slice(logsB).find((l) => l.msg === 'package ready' && l.digest === v2.digest)!;
    const published = aProc.logs.slice(logsA).find((l) => l.msg === 'package published')!;
    const readyMs = Date.parse(String(ready.ts)) - start;
    const publishMs = Date.parse(v2.updatedAt) - start;
    const cpuA = cpuSeconds(aProc.child.pid!) - cpuA0;
    const cpuB = cpuSeconds(bProc.child.pid!) - cpuB0;
    const bytesSent = sent((await control(A, '/packages')) as Described, 'b') - sentBefore;
    const bothA = diskBytes(pkgDir(A));
    const bothB = diskBytes(pkgDir(B));

    const rs = timed('rsync', ['--no-whole-file', '--inplace', '--ignore-times', '--stats', image, old]);
    const num = (label: string): number => Number((new RegExp(`${label}: ([\\d,]+)`).exec(rs.out)?.[1] ?? '0').replace(/,/g, ''));
    rmSync(old, { force: true });
    const sum = timed('sha256sum', [image]);

    const mib = (n: number): string => (n / MIB).toFixed(1);
    log(`100 KiB change: republish -> Ready on B ${(readyMs / 1000).toFixed(2)} s (publish on A ${(publishMs / 1000).toFixed(2)} s: large file ${JSON.stringify(published.largeFiles)}, hashed ${mib(Number(published.bytesHashed))} MiB, ${published.segmentsWritten} segments written, ${mib(Number(published.segmentBytesWritten))} MiB; B: sync ${ready.ms} ms, ${ready.sharedSegments} segments shared, ${ready.newSegments} new, ${ready.localChunks} chunks local, ${ready.fetchedChunks} fetched, fsync ${ready.fsyncMs} ms)`);
    log(`  sent A -> B: ${(bytesSent / MIB).toFixed(3)} MiB`);
    log(`  disk, package folder: A ${mib(oneA)} -> ${mib(bothA)} MiB (${(bothA / oneA).toFixed(4)}x); B ${mib(oneB)} -> ${mib(bothB)} MiB (${(bothB / oneB).toFixed(4)}x)   [image ${mib(statSync(image).blocks * 512)} MiB on disk]`);
    log(`  CPU seconds from the republish to Ready: A ${cpuA.toFixed(2)}, B ${cpuB.toFixed(2)}`);
    log(`  rsync --no-whole-file --inplace of the same change (local): ${rs.wall.toFixed(2)} s wall, ${rs.cpu.toFixed(2)} CPU-s, literal ${mib(num('Literal data'))} MiB, sent+received ${mib(num('Total bytes sent') + num('Total bytes received'))} MiB`);
    log(`  sha256sum of the image: ${sum.wall.toFixed(2)} s wall, ${sum.cpu.toFixed(2)} CPU-s`);
    const ok = (b: boolean): string => (b ? 'met' : 'NOT met');
    log(`  targets: Ready < 3 s ${ok(readyMs < 3000)}; sent < 1 MiB ${ok(bytesSent < MIB)}; both versions < 1.01x: A ${ok(bothA < 1.01 * oneA)}, B ${ok(bothB < 1.01 * oneB)}`);
  } finally {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    for (const p of procs) await p.kill('SIGTERM');
    env?.cleanup();
    if (!KEEP) rmSync(work, { recursive: true, force: true });
    else log(`kept ${work}`);
  }
}

for (const tool of ['mkfs.ext4', 'debugfs', 'rsync', 'sha256sum', '/usr/bin/time']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is needed (apt-get install e2fsprogs rsync coreutils time)`);
}
log(`bench/replication/versions.ts ${new Date().toISOString()} load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
for (const size of SIZES) await one(size);
