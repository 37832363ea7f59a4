// TFTP throughput: a 100 MB file fetched with the real `atftp` client at blksize 1468 window 1,
// blksize 1468 window 16 and blksize 8192, from netboot, tftpd-hpa and atftpd, all in the same
// run on 127.0.0.1, interleaved so a busy moment on the machine hits every server alike. Then
// 200 atftp clients at once against each server. Prints MB/s (1 MB = 10^6 bytes, median of the
// repetitions) and server CPU seconds; every download's md5 is checked.
// Usage: node --import tsx bench/tftp/run.ts [--reps 5] [--size-mb 100] [--clients 200]
//        [--client-mb 2] [--cache DIR] [--servers netboot,atftpd,tftpd-hpa[,netboot-dgram]] [--settings 1,2,3]
//        [--baseline DIR]: also the mtftp of another checkout (e.g. `git worktree add DIR <commit>`), as netboot@base
// atftpd is unpacked into DIR (default /tmp/netboot-bench-atftpd). Needs root for the cgroups.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, stringFlag } from '../../cli/args.ts';
import { freeUdpPort } from '../../test/helpers/env.ts';
import { atftp, makeBenchDirs, median } from './client.ts';
import { startAtftpd, startNetboot, startTftpdHpa, stopServer, type BenchServer } from './servers.ts';

const args = parseArgs(process.argv.slice(2));
const reps = Number(stringFlag(args, 'reps') ?? 5);
const sizeMb = Number(stringFlag(args, 'size-mb') ?? 100);
const clients = Number(stringFlag(args, 'clients') ?? 200);
const clientMb = Number(stringFlag(args, 'client-mb') ?? 2);
const cache = stringFlag(args, 'cache') ?? '/tmp/netboot-bench-atftpd';
const only = stringFlag(args, 'servers')?.split(',') ?? null;
const baseline = stringFlag(args, 'baseline');
const settingsWanted = stringFlag(args, 'settings')?.split(',').map(Number) ?? null;
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const ALL_SETTINGS = [
  { label: 'blksize 1468, window 1', options: ['blksize 1468'] },
  { label: 'blksize 1468, window 16', options: ['blksize 1468', 'windowsize 16'] },
  { label: 'blksize 8192, window 1', options: ['blksize 8192'] },
];

const SETTINGS = ALL_SETTINGS.filter((_, i) => settingsWanted === null || settingsWanted.includes(i + 1));

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

interface Sample {
  readonly seconds: number;
  readonly cpu: number;
}

async function fetchOnce(s: BenchServer, remote: string, local: string, options: readonly string[], expected: string): Promise<Sample> {
  const cpu0 = s.cpuSeconds();
  const t0 = process.hrtime.bigint();
  const code = await atftp(s.port, remote, local, options);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // tftpd-hpa's forked child is counted once the parent has reaped it.
  await new Promise((r) => setTimeout(r, 50));
  const cpu = s.cpuSeconds() - cpu0;
  if (code !== 0 || md5(readFileSync(local)) !== expected) throw new Error(`${s.name}: ${remote} arrived wrong (exit ${code})`);
  rmSync(local, { force: true });
  return { seconds, cpu };
}

async function concurrent(s: BenchServer, n: number, outDir: string, expected: string, bytes: number): Promise<{ mbps: number; cpu: number; ok: number }> {
  const cpu0 = s.cpuSeconds();
  const t0 = process.hrtime.bigint();
  const codes = await Promise.all(Array.from({ length: n }, (_, i) => atftp(s.port, 'client.bin', join(outDir, `c${i}`), ['blksize 1468', 'windowsize 16'], { timeoutS: 1 })));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await new Promise((r) => setTimeout(r, 200));
  const cpu = s.cpuSeconds() - cpu0;
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const f = join(outDir, `c${i}`);
    if (codes[i] === 0 && existsSync(f) && md5(readFileSync(f)) === expected) ok++;
    rmSync(f, { force: true });
  }
  return { mbps: (n * bytes) / 1e6 / seconds, cpu, ok };
}

async function main(): Promise<void> {
  const { dir, root, out: outDir } = makeBenchDirs('netboot-bench-tftp');
  const big = randomBytes(sizeMb * 1_000_000);
  const small = randomBytes(clientMb * 1_000_000);
  writeFileSync(join(root, 'big.bin'), big, { mode: 0o644 });
  writeFileSync(join(root, 'client.bin'), small, { mode: 0o644 });
  writeFileSync(join(root, 'warm.bin'), randomBytes(1_000_000), { mode: 0o644 });
  const bigMd5 = md5(big);
  const smallMd5 = md5(small);
  const warmMd5 = md5(readFileSync(join(root, 'warm.bin')));

  const servers: BenchServer[] = [];
  try {
    const want = (name: string): boolean => only === null || only.includes(name);
    if (want('netboot')) servers.push(startNetboot(repo, dir, root, await freeUdpPort()));
    // The pure-JS send path (no addon), for comparison; only when asked for by name.
    if (only?.includes('netboot-dgram') === true) servers.push(startNetboot(repo, dir, root, await freeUdpPort(), 'dgram'));
    if (baseline !== undefined) servers.push(startNetboot(baseline, dir, root, await freeUdpPort(), 'auto', 'netboot@base'));
    if (want('atftpd')) servers.push(startAtftpd(cache, root, await freeUdpPort()));
    if (want('tftpd-hpa')) servers.push(startTftpdHpa(root, await freeUdpPort()));
    await new Promise((r) => setTimeout(r, 1500)); // netboot's node start-up
    for (const s of servers) {
      for (const setting of SETTINGS) await fetchOnce(s, 'warm.bin', join(outDir, 'warm'), setting.options, warmMd5);
    }
    console.log(`# ${sizeMb} MB file, atftp client, 127.0.0.1, ${reps} repetitions each (median), ${new Date().toISOString()}`);
    for (const s of servers) console.log(`#   ${s.name}: ${s.note}; CPU from ${s.cpuSource}`);
    const results = new Map<string, Sample[]>();
    for (let r = 0; r < reps; r++) {
      for (const setting of SETTINGS) {
        for (const s of servers) {
          const key = `${setting.label}|${s.name}`;
          const sample = await fetchOnce(s, 'big.bin', join(outDir, 'big'), setting.options, bigMd5);
          results.set(key, [...(results.get(key) ?? []), sample]);
        }
      }
    }
    console.log('');
    console.log(`${'setting'.padEnd(26)}${'server'.padEnd(12)}${'MB/s'.padStart(8)}${'all runs MB/s'.padStart(26)}${'server CPU s'.padStart(14)}`);
    for (const setting of SETTINGS) {
      const mbps: Record<string, number> = {};
      for (const s of servers) {
        const samples = results.get(`${setting.label}|${s.name}`) ?? [];
        const rates = samples.map((x) => sizeMb / x.seconds);
        mbps[s.name] = median(rates);
        const cpu = median(samples.map((x) => x.cpu));
        console.log(`${setting.label.padEnd(26)}${s.name.padEnd(12)}${(mbps[s.name] as number).toFixed(1).padStart(8)}${rates.map((x) => x.toFixed(0)).join(' ').padStart(26)}${cpu.toFixed(2).padStart(14)}`);
      }
      if (mbps.netboot !== undefined && mbps.atftpd !== undefined) {
        console.log(`${''.padEnd(26)}netboot / atftpd = ${(mbps.netboot / mbps.atftpd).toFixed(2)}x (target >= 1.2x)`);
      }
    }
    if (clients === 0) return;
    console.log('');
    console.log(`# ${clients} atftp clients at once, blksize 1468 window 16, ${clientMb} MB each`);
    for (const s of servers) {
      const c = await concurrent(s, clients, outDir, smallMd5, clientMb * 1_000_000);
      console.log(`${s.name.padEnd(12)} aggregate ${c.mbps.toFixed(1).padStart(7)} MB/s   server CPU ${c.cpu.toFixed(2)} s   md5 correct ${c.ok}/${clients}`);
    }
  } finally {
    for (const s of servers) await stopServer(s);
    rmSync(dir, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
}

await main();
