// bench/replication: a generated ~1 GB filesystem image (mkfs.ext4 -d over a real directory
// tree with varied files), published on A and replicated to B (two `netboot run interface`
// processes on loopback); then a 100 KB change made inside the image with debugfs.
//   node --import tsx bench/replication/run.ts [--size-mib 1024] [--keep] [--hash-only | --copy-only] [--image FILE] [--runs 3]
// --hash-only stops after the hashing figures (no servers); --image FILE uses a copy of that
// image instead of generating one; --runs: hashing runs of each kind (the best is reported);
// --copy-only: only the publish and the first full copy to B.
// Prints, with reference tools measured in the same run on the same files:
//   publish hashing (read + chunk + SHA-256) vs `sha256sum`;
//   for the 100 KB change: bytes transferred, publish -> Ready on B, notify latency, and
//   `rsync --no-whole-file` of the same change (bytes and time).
// Targets: < 1 MiB transferred, Ready < 5 s, notify < 100 ms, hashing >= 1 GB/s.
// Needs e2fsprogs (mkfs.ext4, debugfs) and rsync.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { copyFileSync, mkdirSync, mkdtempSync, openSync, readSync, closeSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, stringFlag } from '../../cli/args.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { ChunkHasher } from '../../packages/chunk-hasher.ts';
import { Chunker, nativeChunking } from '../../packages/chunker.ts';
import { chunkFile } from '../../packages/file-chunks.ts';
import { waitFor } from '../../test/helpers/env.ts';
import { spawnService, type ServiceProcess } from '../../test/helpers/process.ts';
import { makeSites, type Described, type Site } from '../../test/packages/sites.ts';
import { textBytes } from './text-bytes.ts';

const args = parseArgs(process.argv.slice(2), ['keep', 'hash-only', 'copy-only']);
const SIZE_MIB = Number(args.flags.get('size-mib') ?? 1024);
const KEEP = args.flags.has('keep');
const HASH_ONLY = args.flags.has('hash-only');
const COPY_ONLY = args.flags.has('copy-only');
const GIVEN_IMAGE = stringFlag(args, 'image');
const RUNS = Number(args.flags.get('runs') ?? 3);
const MB = 1e6;

/** Thrown to stop early (--copy-only): not a failure. */
class Done extends Error {}

const work = mkdtempSync(join(tmpdir(), 'netboot-bench-repl-'));
const procs: ServiceProcess[] = [];
let env: Awaited<ReturnType<typeof makeSites>> | null = null;

function log(line: string): void {
  process.stdout.write(line + '\n');
}

function time<T>(fn: () => T): [T, number] {
  const t = performance.now();
  const v = fn();
  return [v, performance.now() - t];
}

/** A tree like an installed system: many small text files, binaries, a database, sparse files. */
function makeTree(dir: string, budgetBytes: number): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const put = (rel: string, data: Buffer): void => {
    const p = join(dir, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, data);
    files++;
    bytes += data.length;
  };
  for (let i = 0; i < 3000; i++) put(`etc/conf${i % 40}/file${i}.conf`, textBytes(500 + ((i * 7919) % 20_000), i + 1));
  for (let i = 0; i < 200; i++) put(`usr/share/doc/pkg${i}/README`, textBytes(2000 + ((i * 104729) % 60_000), i + 9000));
  const big = budgetBytes - bytes;
  const binaries = Math.floor(big * 0.45);
  for (let i = 0, left = binaries; left > 0; i++) {
    const n = Math.min(left, 1_000_000 + ((i * 2_654_435_761) % 9_000_000));
    put(`usr/lib/lib${i}.so`, randomBytes(n));
    left -= n;
  }
  // A database-like file: structured, compressible records.
  const db = Buffer.alloc(Math.floor(big * 0.25));
  for (let off = 0, r = 0; off < db.length; off += 256, r++) db.write(`record ${String(r).padStart(10, '0')} name=user${r % 5000} balance=${(r * 37) % 100000} status=${r % 3 ? 'active' : 'closed'} `.padEnd(256, '.'), off);
  put('var/lib/db/main.db', db);
  put('var/cache/zeros.bin', Buffer.alloc(Math.floor(big * 0.05)));
  put('home/user/video.mp4', randomBytes(Math.max(0, budgetBytes - bytes - 1024)));
  return { files, bytes };
}

const control = (s: Site, path: string, body?: unknown): Promise<unknown> =>
  controlCall(controlSocketPath(s.config.paths.data, 'interface'), body === undefined ? 'GET' : 'POST', path, body);

async function publish(s: Site, dir: string, id: string): Promise<{ ref: { seq: number; digest: string; updatedAt: string }; hashMs: number; wallMs: number }> {
  const t = performance.now();
  const { job } = (await control(s, '/packages/publish', { dir, id, kind: 'image' })) as { job: string };
  const j = await waitFor('publish', async () => {
    const r = (await control(s, `/packages/jobs?id=${job}`)) as { state: string; error?: string; ref?: { seq: number; digest: string; updatedAt: string }; hashMs?: number };
    return r.state === 'running' ? undefined : r;
  }, 600_000, 5);
  if (j.state !== 'done') throw new Error(`publish failed: ${j.error}`);
  return { ref: j.ref!, hashMs: j.hashMs!, wallMs: performance.now() - t };
}

function served(d: Described, peer: string): { bytes: number; chunks: number; manifestBytes: number; manifests: number } {
  const c = d.served[peer];
  return { bytes: c?.bytes ?? 0, chunks: c?.chunks ?? 0, manifestBytes: c?.manifestBytes ?? 0, manifests: c?.manifests ?? 0 };
}

function changedBlocks(a: string, b: string, block = 4096): number {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  const ba = Buffer.alloc(4 << 20);
  const bb = Buffer.alloc(4 << 20);
  let changed = 0;
  for (let off = 0; ; off += ba.length) {
    const na = readSync(fa, ba, 0, ba.length, off);
    const nb = readSync(fb, bb, 0, bb.length, off);
    if (na === 0 && nb === 0) break;
    for (let i = 0; i < Math.max(na, nb); i += block) if (!ba.subarray(i, i + block).equals(bb.subarray(i, i + block))) changed++;
  }
  closeSync(fa);
  closeSync(fb);
  return changed;
}

/** The parts of hashing, each alone: the read, the read with chunking, the read with SHA-256 per 64 KiB. */
async function hashingParts(image: string, hasher: ChunkHasher): Promise<{ readMs: number; scanMs: number; shaMs: number }> {
  const pass = async (each: (data: Buffer) => void): Promise<number> => {
    const fh = await open(image, 'r');
    const block = await hasher.block();
    const t0 = performance.now();
    try {
      for (let pos = 0; ; ) {
        const { bytesRead } = await fh.read(block, 0, block.length, pos);
        if (bytesRead === 0) break;
        each(block.subarray(0, bytesRead));
        pos += bytesRead;
      }
      return performance.now() - t0;
    } finally {
      hasher.recycle(block);
      await fh.close();
    }
  };
  const readMs = await pass(() => {});
  const chunker = new Chunker(hasher.scan);
  const scanMs = await pass((data) => void chunker.push(data));
  const shaMs = await pass((data) => {
    for (let off = 0; off < data.length; off += 65536) createHash('sha256').update(data.subarray(off, off + 65536)).digest();
  });
  return { readMs, scanMs, shaMs };
}

try {
  for (const tool of ['mkfs.ext4', 'debugfs', 'rsync', 'sha256sum', '/usr/bin/time']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is needed (apt-get install e2fsprogs rsync coreutils time)`);
  }
  const tree = join(work, 'tree');
  const pub = join(work, 'package');
  mkdirSync(pub);
  const image = join(pub, 'disk.img');
  if (GIVEN_IMAGE !== undefined) {
    copyFileSync(GIVEN_IMAGE, image);
    log(`image: ${(statSync(image).size / 1048576).toFixed(0)} MiB, a copy of ${GIVEN_IMAGE}`);
  } else {
    const [made, makeMs] = time(() => makeTree(tree, Math.floor(SIZE_MIB * 1048576 * 0.85)));
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'bench', '-d', tree, image, `${SIZE_MIB}M`]);
    log(`image: ${(statSync(image).size / 1048576).toFixed(0)} MiB ext4 built with mkfs.ext4 -d over ${made.files} files, ${(made.bytes / 1048576).toFixed(0)} MiB (tree made in ${(makeMs / 1000).toFixed(1)} s)`);
    rmSync(tree, { recursive: true, force: true });
  }
  const imageBytes = statSync(image).size;

  let oursMs = NaN; // best hashing run
  if (!COPY_ONLY) {
    // Hashing, from the page cache for both: ours (read + gear-hash chunking on this thread,
    // SHA-256 per chunk on the hash workers) against sha256sum of the same file, best of RUNS runs
    // each; ours without the native addon (WebAssembly scan, node:crypto) too, the three in turn
    // within each run; then where our time
    // goes: the read alone, read + chunking, read + SHA-256 (node:crypto) on one thread.
    execFileSync('cat', [image], { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 << 30 });
    const hasher = new ChunkHasher();
    const plain = new ChunkHasher({ native: false });
    const ours: number[] = [];
    const ref: number[] = [];
    const oursCpu: number[] = [];
    const refCpu: number[] = [];
    const plainRuns: number[] = [];
    const plainCpu: number[] = [];
    let chunkCount = 0;
    // Ours, sha256sum and ours without the addon take turns, so a busy moment hits all three alike.
    for (let r = 0; r < RUNS; r++) {
      let c0 = process.cpuUsage();
      let t0 = performance.now();
      chunkCount = (await chunkFile(image, null, undefined, hasher)).chunks.length;
      ours.push(performance.now() - t0);
      let c = process.cpuUsage(c0); // every thread of this process: reads, chunking, hash workers
      oursCpu.push((c.user + c.system) / 1000);
      // CPU time too, from the child's rusage: on a shared machine wall time says less about the work.
      const [out, ms] = time(() => spawnSync('/usr/bin/time', ['-f', '%U %S', 'sha256sum', image], { encoding: 'utf8' }));
      ref.push(ms);
      const [u, sys] = out.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
      refCpu.push((u! + sys!) * 1000);
      c0 = process.cpuUsage();
      t0 = performance.now();
      await chunkFile(image, null, undefined, plain);
      plainRuns.push(performance.now() - t0);
      c = process.cpuUsage(c0);
      plainCpu.push((c.user + c.system) / 1000);
    }
    await plain.close();
    const parts = await hashingParts(image, hasher);
    await hasher.close();
    oursMs = Math.min(...ours);
    const refMs = Math.min(...ref);
    const rate = (ms: number): string => `${(imageBytes / MB / (ms / 1000)).toFixed(0)} MB/s`;
    const native = nativeChunking();
    const how = native.ok ? `WebAssembly scan, SHA-256 ${hasher.hashing === 'lanes' ? 'in AVX-512 lanes' : 'native'}` : `no native addon: ${native.reason}`;
    log(`hashing ${(imageBytes / 1048576).toFixed(0)} MiB: ours ${rate(oursMs)} (${(oursMs / 1000).toFixed(2)} s, ${chunkCount} chunks, ${hasher.workerCount} hash workers; ${how}) | sha256sum ${rate(refMs)} (${(refMs / 1000).toFixed(2)} s)   [runs: ours ${ours.map((x) => x.toFixed(0)).join(', ')} ms; sha256sum ${ref.map((x) => x.toFixed(0)).join(', ')} ms]`);
    const perGb = (ms: number): string => `${(ms / 1000 / (imageBytes / 1e9)).toFixed(2)} s`;
    log(`  CPU per GB (all threads, best run): ours ${perGb(Math.min(...oursCpu))} | sha256sum ${perGb(Math.min(...refCpu))}`);
    log(`  ours without the native addon (WebAssembly scan, node:crypto on the workers): ${rate(Math.min(...plainRuns))}, CPU per GB ${perGb(Math.min(...plainCpu))}   [runs: ${plainRuns.map((x) => x.toFixed(0)).join(', ')} ms]`);
    log(`  where the time goes (each alone, same file): read ${rate(parts.readMs)}; read + chunking ${rate(parts.scanMs)}; read + SHA-256 on one thread ${rate(parts.shaMs)}`);
  }

  if (!HASH_ONLY) {
    env = await makeSites(['a', 'b'], { extra: '[log]\nlevel = "info"\n[packages]\nscrub_interval_ms = 0\n' });
    const [A, B] = env.sites as [Site, Site];
    for (const s of [A, B]) procs.push(spawnService(['interface'], s.configPath));
    const bProc = procs[1]!;
    for (const s of [A, B]) await waitFor(`${s.id} up`, async () => ((await control(s, '/packages').catch(() => undefined)) !== undefined ? true : undefined), 30_000, 50);
    await waitFor('peers linked', async () => ((await control(B, '/packages')) as Described).links.every((l) => l.connected) || undefined, 30_000, 50);

    const v1 = await publish(A, pub, 'bench-image');
    log(`publish v1 on A: ${(v1.wallMs / 1000).toFixed(2)} s wall (read + chunk + hash + copy ${(imageBytes / MB / (v1.hashMs / 1000)).toFixed(0)} MB/s, then fsync), seq ${v1.ref.seq}`);
    const statusOf = async (s: Site, digest: string) => ((await control(s, '/packages?id=bench-image')) as Described).packages[0]?.statuses.find((x) => x.server === s.id && x.state === 'ready' && x.digest === digest);
    const t1 = performance.now();
    await waitFor('B ready at v1', () => statusOf(B, v1.ref.digest), 600_000, 20);
    log(`initial replication to B: ${((performance.now() - t1) / 1000).toFixed(2)} s for ${(imageBytes / 1048576).toFixed(0)} MiB over loopback`);
    if (COPY_ONLY) throw new Done();

    // The replica side of rsync: B's copy of v1.
    const rsyncDest = join(work, 'rsync-dest');
    mkdirSync(rsyncDest);
    copyFileSync(image, join(rsyncDest, 'disk.img'));
    const before = join(work, 'before.img');
    copyFileSync(image, before);

    // The change: a new 100 KB file written into the filesystem (data blocks, inode, bitmaps, directory).
    writeFileSync(join(work, 'new.bin'), randomBytes(100 * 1024));
    execFileSync('debugfs', ['-w', '-R', `write ${join(work, 'new.bin')} new-100k.bin`, image], { stdio: 'ignore' });
    const blocks = changedBlocks(before, image);
    log(`change: debugfs write of a 100 KiB file into the image: ${blocks} blocks of 4 KiB differ (${(blocks * 4)} KiB)`);

    const servedBefore = served((await control(A, '/packages')) as Described, 'b');
    const logsBefore = bProc.logs.length;
    const v2 = await publish(A, pub, 'bench-image');
    await waitFor('B ready at v2', () => statusOf(B, v2.ref.digest), 120_000, 10);
    const readyLog = bProc.logs.slice(logsBefore).find((l) => l.msg === 'package ready' && l.digest === v2.ref.digest)!;
    const refLog = bProc.logs.slice(logsBefore).find((l) => l.msg === 'package ref received' && l.digest === v2.ref.digest)!;
    const servedAfter = served((await control(A, '/packages')) as Described, 'b');
    const chunkBytes = servedAfter.bytes - servedBefore.bytes;
    const metaBytes = servedAfter.manifestBytes - servedBefore.manifestBytes;
    const readyMs = Date.parse(String(readyLog.ts)) - Date.parse(v2.ref.updatedAt);
    const notifyMs = Date.parse(String(refLog.ts)) - Date.parse(v2.ref.updatedAt);
    const transferred = chunkBytes + metaBytes;

    const [rs, rsyncMs] = time(() => execFileSync('rsync', ['--no-whole-file', '--ignore-times', '--stats', image, join(rsyncDest, 'disk.img')]).toString());
    const num = (label: string): number => Number((new RegExp(`${label}: ([\\d,]+)`).exec(rs)?.[1] ?? '0').replace(/,/g, ''));
    const rsyncLiteral = num('Literal data');
    const rsyncSent = num('Total bytes sent');
    const rsyncReceived = num('Total bytes received');

    log('');
    log(`100 KB change, ours: ${(transferred / 1048576).toFixed(3)} MiB transferred (${servedAfter.chunks - servedBefore.chunks} chunks ${(chunkBytes / 1024).toFixed(0)} KiB + ${servedAfter.manifests - servedBefore.manifests} manifest/part blobs ${(metaBytes / 1024).toFixed(0)} KiB)`);
    log(`  publish on A ${(v2.wallMs / 1000).toFixed(2)} s; notify A -> B ${notifyMs} ms; publish -> Ready on B ${(readyMs / 1000).toFixed(2)} s (B: ${readyLog.localChunks} chunks copied locally, ${readyLog.runChunks} of them in runs from the previous version in ${readyLog.runMs} ms, ${readyLog.fetchedChunks} fetched; sync ${readyLog.ms} ms of which manifest ${readyLog.manifestMs} ms, fsync ${readyLog.fsyncMs} ms)`);
    log(`100 KB change, rsync --no-whole-file (same run, local): literal data ${(rsyncLiteral / 1048576).toFixed(3)} MiB, ${((rsyncSent + rsyncReceived) / 1048576).toFixed(3)} MiB sent+received, ${(rsyncMs / 1000).toFixed(2)} s (and rsync learns of a change only when someone runs it)`);
    const t0 = Date.parse(v2.ref.updatedAt);
    log(`  timeline on B (ms after the ref moved on A): ${bProc.logs.slice(logsBefore).filter((l) => ['package ref received', 'manifest fetched', 'package status', 'package ready'].includes(String(l.msg))).map((l) => `${String(l.msg).replace('package ', '')}${l.state ? ` ${String(l.state)}` : ''} +${Date.parse(String(l.ts)) - t0}`).join(', ')}`);
    log('');
    const check = (ok: boolean): string => (ok ? 'met' : 'NOT met');
    log(`targets: transferred < 1 MiB: ${check(transferred < 1048576)}; Ready < 5 s: ${check(readyMs < 5000)}; notify < 100 ms: ${check(notifyMs < 100)}; hashing >= 1 GB/s: ${check(imageBytes / MB / (oursMs / 1000) >= 1000)}`);
  }
} catch (err) {
  if (!(err instanceof Done)) throw err;
} finally {
  for (const p of procs) await p.kill('SIGTERM');
  env?.cleanup();
  if (!KEEP) rmSync(work, { recursive: true, force: true });
  else log(`kept ${work}`);
}
