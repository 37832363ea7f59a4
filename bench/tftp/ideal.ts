// How fast can lock-step TFTP go here at all? The same 100 MB file fetched with atftp at blksize
// 1468 and 8192, window 1, from netboot, atftpd, tftpd-hpa and bench/tftp/ideal.c (the least a
// server can do per ACK) in its three waits: blocking recv, epoll_wait + recv (an event loop's
// way), and a bounded spin before sleeping (busy-polling, measurement only). Interleaved
// repetitions, medians, ratios to atftpd. Then some servers again with the server and the client
// pinned to one CPU, and to different CPUs, next to unpinned, to show what placement does.
//   node --import tsx bench/tftp/ideal.ts [--reps 5] [--size-mb 100] [--spin-us 50]
//        [--servers netboot,atftpd,tftpd-hpa,ideal-block,ideal-epoll,ideal-spin]
//        [--pin-servers ideal-block,atftpd,netboot | --pin-servers none] [--cache DIR]
// Needs root (cgroups), cc, taskset; atftpd comes from the bench's cache (see run.ts).
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, stringFlag } from '../../cli/args.ts';
import { freeUdpPort } from '../../test/helpers/env.ts';
import { atftp, makeBenchDirs, median } from './client.ts';
import { benchServer, startAtftpd, startNetboot, startTftpdHpa, stopServer, type BenchServer } from './servers.ts';

const args = parseArgs(process.argv.slice(2));
const reps = Number(stringFlag(args, 'reps') ?? 5);
const sizeMb = Number(stringFlag(args, 'size-mb') ?? 100);
const spinUs = Number(stringFlag(args, 'spin-us') ?? 50);
const cache = stringFlag(args, 'cache') ?? '/tmp/netboot-bench-atftpd';
const only = stringFlag(args, 'servers')?.split(',') ?? ['netboot', 'atftpd', 'tftpd-hpa', 'ideal-block', 'ideal-epoll', 'ideal-spin'];
const pinned = (stringFlag(args, 'pin-servers') ?? 'ideal-block,atftpd,netboot').split(',').filter((n) => n !== 'none' && only.includes(n));
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BLKSIZES = [1468, 8192];
const allCpus = `0-${cpus().length - 1}`;
// Placement of server and client: both on CPU 0, or the server on 0 and the client on 1.
const PLACEMENTS = [
  { label: 'unpinned', server: allCpus, client: undefined },
  { label: 'same CPU', server: '0', client: '0' },
  { label: 'different CPUs', server: '0', client: '1' },
];

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** ideal.c serving `file`; spin mode's per-transfer counts of where ACKs were caught land in `spinLog`. */
function startIdeal(bin: string, file: string, port: number, wait: 'block' | 'epoll' | 'spin', spinLog: string[]): BenchServer {
  const child = spawn(bin, [String(port), file, wait, String(spinUs)], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => spinLog.push(...d.toString().trim().split('\n')));
  const note = { block: 'blocking recv', epoll: 'epoll_wait + recv', spin: `recv(MSG_DONTWAIT) for up to ${spinUs} µs, then blocking recv` }[wait];
  return benchServer(`ideal-${wait}`, port, `bench/tftp/ideal.c, ${note}`, child);
}

interface Sample {
  readonly mbps: number;
  readonly cpu: number;
}

async function fetchOnce(s: BenchServer, local: string, blksize: number, expected: string, clientCpus?: string): Promise<Sample> {
  const cpu0 = s.cpuSeconds();
  const t0 = process.hrtime.bigint();
  const code = await atftp(s.port, 'big.bin', local, [`blksize ${blksize}`], { cpus: clientCpus });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await sleep(50); // tftpd-hpa's forked child is counted once reaped
  const cpu = s.cpuSeconds() - cpu0;
  if (code !== 0 || md5(readFileSync(local)) !== expected) throw new Error(`${s.name}: big.bin arrived wrong (exit ${code})`);
  rmSync(local, { force: true });
  return { mbps: sizeMb / seconds, cpu };
}

/** Every thread of the server (and what it forks later) onto `list`. */
function pinServer(s: BenchServer, list: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', list, String(s.child.pid)], { stdio: 'ignore' });
}

function table(title: string, rows: Map<string, Sample[]>, keys: readonly { key: string; label: string; ref: string }[]): void {
  console.log(`\n${title}`);
  console.log(`${'setting'.padEnd(32)}${'server'.padEnd(14)}${'MB/s'.padStart(8)}${'µs/block'.padStart(10)}${'/ atftpd'.padStart(10)}${'CPU s'.padStart(8)}   all runs MB/s`);
  for (const { key, label, ref } of keys) {
    const samples = rows.get(key) ?? [];
    const [setting, name] = label.split('|') as [string, string];
    const mbps = median(samples.map((x) => x.mbps));
    const refMbps = median((rows.get(ref) ?? []).map((x) => x.mbps));
    const blksize = Number(/blksize (\d+)/.exec(setting)![1]);
    const usPerBlock = 1e6 / ((mbps * 1e6) / blksize);
    console.log(
      `${setting.padEnd(32)}${name.padEnd(14)}${mbps.toFixed(1).padStart(8)}${usPerBlock.toFixed(1).padStart(10)}${`${(mbps / refMbps).toFixed(2)}x`.padStart(10)}${median(samples.map((x) => x.cpu)).toFixed(2).padStart(8)}   ${samples.map((x) => x.mbps.toFixed(0)).join(' ')}`,
    );
  }
}

async function main(): Promise<void> {
  const { dir, root, out } = makeBenchDirs('netboot-bench-ideal');
  const big = randomBytes(sizeMb * 1_000_000);
  writeFileSync(join(root, 'big.bin'), big, { mode: 0o644 });
  writeFileSync(join(root, 'warm.bin'), randomBytes(1_000_000), { mode: 0o644 });
  const bigMd5 = md5(big);
  const bin = join(dir, 'ideal');
  execFileSync('cc', ['-O2', '-o', bin, join(repo, 'bench/tftp/ideal.c')], { stdio: 'inherit' });
  const spinLog: string[] = [];
  const servers: BenchServer[] = [];
  try {
    for (const name of only) {
      const port = await freeUdpPort();
      if (name === 'netboot') servers.push(startNetboot(repo, dir, root, port));
      else if (name === 'atftpd') servers.push(startAtftpd(cache, root, port));
      else if (name === 'tftpd-hpa') servers.push(startTftpdHpa(root, port));
      else if (name.startsWith('ideal-')) servers.push(startIdeal(bin, join(root, 'big.bin'), port, name.slice(6) as 'block' | 'epoll' | 'spin', spinLog));
      else throw new Error(`unknown server ${name}`);
    }
    await sleep(1500); // netboot's node start-up
    for (const s of servers.filter((x) => !x.name.startsWith('ideal-'))) {
      for (const b of BLKSIZES) if ((await atftp(s.port, 'warm.bin', join(out, 'warm'), [`blksize ${b}`])) !== 0) throw new Error(`${s.name}: warm-up failed`);
    }
    const started = new Date().toISOString();
    const results = new Map<string, Sample[]>();
    const add = (key: string, x: Sample): void => void results.set(key, [...(results.get(key) ?? []), x]);
    for (let r = 0; r < reps; r++) {
      for (const b of BLKSIZES) for (const s of servers) add(`${b}|${s.name}`, await fetchOnce(s, join(out, 'big'), b, bigMd5));
    }
    const spinLines = spinLog.splice(0);
    const placed = servers.filter((s) => pinned.includes(s.name));
    for (let r = 0; r < reps && placed.length > 0; r++) {
      for (const b of BLKSIZES) {
        for (const p of PLACEMENTS) {
          for (const s of placed) {
            pinServer(s, p.server);
            add(`${b}|${s.name}|${p.label}`, await fetchOnce(s, join(out, 'big'), b, bigMd5, p.client));
          }
        }
      }
    }
    for (const s of placed) pinServer(s, allCpus);
    console.log(`# ${sizeMb} MB, atftp --option "blksize N" (window 1), 127.0.0.1, ${reps} interleaved repetitions, medians; started ${started}, ended ${new Date().toISOString()}`);
    console.log(`# ${cpus().length} CPUs, cpuidle driver ${readIdleDriver()}`);
    for (const s of servers) console.log(`#   ${s.name}: ${s.note}; CPU from ${s.cpuSource}`);
    const keys = BLKSIZES.flatMap((b) => servers.map((s) => ({ key: `${b}|${s.name}`, label: `blksize ${b}, window 1|${s.name}`, ref: `${b}|atftpd` })));
    table('Unpinned (the scheduler places server and client):', results, keys);
    if (spinLines.length > 0) {
      const sum = (re: RegExp): number => spinLines.reduce((n, l) => n + Number(re.exec(l)?.[1] ?? 0), 0);
      const caught = sum(/spinning (\d+)/);
      const slept = sum(/sleeping (\d+)/);
      console.log(`  ideal-spin: ${((100 * caught) / (caught + slept)).toFixed(1)}% of ACKs caught within the ${spinUs} µs spin (${caught} of ${caught + slept})`);
    }
    if (placed.length === 0) return;
    const pinKeys = BLKSIZES.flatMap((b) =>
      PLACEMENTS.flatMap((p) => placed.map((s) => ({ key: `${b}|${s.name}|${p.label}`, label: `blksize ${b}, ${p.label}|${s.name}`, ref: `${b}|atftpd|${p.label}` }))),
    );
    table('Placement (same CPU: server and client on CPU 0; different: server on 0, client on 1), ratio to atftpd in the same placement:', results, pinKeys);
  } finally {
    for (const s of servers) await stopServer(s);
    rmSync(dir, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
}

function readIdleDriver(): string {
  try {
    return readFileSync('/sys/devices/system/cpu/cpuidle/current_driver', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

await main();
