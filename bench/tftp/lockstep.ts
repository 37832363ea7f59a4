// Where a lock-step block's time goes, per server: one download with the atftp client, captured
// on loopback, split into the server's turnaround (ACK n arrives -> DATA n+1 leaves) and the
// client's (DATA n -> its ACK n); then the same download under `strace -c -f` for the server's
// system calls per block. netboot, atftpd and tftpd-hpa, in the same run.
//   node --import tsx bench/tftp/lockstep.ts [--size-mb 20] [--blksize 1468] [--servers netboot,atftpd,tftpd-hpa]
// Needs root (tcpdump, strace attaching) and the bench's atftpd cache (see run.ts).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, stringFlag } from '../../cli/args.ts';
import { freeUdpPort } from '../../test/helpers/env.ts';
import { readCapture, startCapture, type UdpPacket } from './capture.ts';
import { startAtftpd, startNetboot, startTftpdHpa, stopServer, type BenchServer } from './servers.ts';

const args = parseArgs(process.argv.slice(2));
const sizeMb = Number(stringFlag(args, 'size-mb') ?? 20);
const blksize = Number(stringFlag(args, 'blksize') ?? 1468);
const only = stringFlag(args, 'servers')?.split(',') ?? ['netboot', 'atftpd', 'tftpd-hpa'];
const cache = stringFlag(args, 'cache') ?? '/tmp/netboot-bench-atftpd';
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function run(cmd: string, argv: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((res, rej) => {
    const c = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('error', rej);
    c.on('close', (code) => res({ code, stderr }));
  });
}

const download = (port: number, out: string): Promise<{ code: number | null; stderr: string }> =>
  run('atftp', ['--tftp-timeout', '5', '--get', '-r', 'big.bin', '-l', out, '--option', `blksize ${blksize}`, '127.0.0.1', String(port)]);

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.min(s.length - 1, Math.floor(q * s.length))] as number);
}
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
/** median / mean / p99, µs */
const dist = (xs: number[]): string => `${quantile(xs, 0.5).toFixed(0)} / ${mean(xs).toFixed(1)} / ${quantile(xs, 0.99).toFixed(0)}`;

/** Server turnaround (ACK n -> DATA n+1) and client turnaround (DATA n -> ACK n), µs. */
function turnarounds(packets: UdpPacket[], serverPort: number): { server: number[]; client: number[]; blocks: number } {
  const rrq = packets.find((p) => p.dport === serverPort && p.op === 1);
  if (rrq === undefined) throw new Error('no read request in the capture');
  const client = rrq.sport;
  const flow = packets.filter((p) => (p.sport === client || p.dport === client) && p.t >= rrq.t);
  const server: number[] = [];
  const clientT: number[] = [];
  let blocks = 0;
  for (let i = 1; i < flow.length; i++) {
    const a = flow[i - 1]!;
    const b = flow[i]!;
    if (b.op === 3) blocks++;
    if (a.op === 4 && b.op === 3 && b.block === ((a.block + 1) & 0xffff)) server.push(b.t - a.t);
    if (a.op === 3 && b.op === 4 && b.block === a.block) clientT.push(b.t - a.t);
  }
  return { server, client: clientT, blocks };
}

/** strace -c -f's table: calls per system call name. */
function straceCounts(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (m !== null && m[2] !== 'total') out.set(m[2]!, Number(m[1]));
  }
  return out;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-bench-lockstep-'));
  const root = join(dir, 'root');
  mkdirSync(root);
  for (const d of [dir, root]) chmodSync(d, 0o755);
  writeFileSync(join(root, 'big.bin'), randomBytes(sizeMb * 1_000_000), { mode: 0o644 });
  const out = existsShm() ? '/dev/shm/netboot-lockstep.bin' : join(dir, 'out.bin');
  const servers: BenchServer[] = [];
  const rows: string[] = [];
  const calls = new Map<string, Map<string, number>>();
  try {
    if (only.includes('netboot')) servers.push(startNetboot(repo, dir, root, await freeUdpPort()));
    if (only.includes('atftpd')) servers.push(startAtftpd(cache, root, await freeUdpPort()));
    if (only.includes('tftpd-hpa')) servers.push(startTftpdHpa(root, await freeUdpPort()));
    await sleep(1500);
    for (const s of servers) {
      await download(s.port, out); // warm: page cache, JIT
      const pcap = join(dir, `${s.name}.pcap`);
      const capture = await startCapture(pcap);
      const t0 = process.hrtime.bigint();
      const d = await download(s.port, out);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      await capture.stop();
      if (d.code !== 0) throw new Error(`${s.name}: atftp failed: ${d.stderr}`);
      const t = turnarounds(readCapture(pcap), s.port);
      rows.push(
        `${s.name.padEnd(12)}${(sizeMb / seconds).toFixed(1).padStart(8)}${String(t.blocks).padStart(9)}${dist(t.server).padStart(20)}${dist(t.client).padStart(20)}${((seconds * 1e6) / t.blocks).toFixed(1).padStart(12)}`,
      );
      // The same download with the server's system calls counted (tftpd-hpa forks: -f follows).
      const strace = spawn('strace', ['-c', '-f', '-p', String(s.child.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let text = '';
      strace.stderr!.on('data', (b: Buffer) => (text += b.toString()));
      await sleep(500);
      const d2 = await download(s.port, out);
      await sleep(300);
      strace.kill('SIGINT');
      await new Promise((r) => strace.once('close', r));
      if (d2.code !== 0) throw new Error(`${s.name}: atftp under strace failed: ${d2.stderr}`);
      calls.set(s.name, straceCounts(text));
      calls.get(s.name)!.set('(blocks)', t.blocks);
    }
  } finally {
    for (const s of servers) await stopServer(s);
    rmSync(dir, { recursive: true, force: true });
    rmSync(out, { force: true });
  }
  console.log(`\n${sizeMb} MB, atftp --option "blksize ${blksize}" (lock-step), 127.0.0.1, ${new Date().toISOString()}; turnarounds from a capture on lo, median / mean / p99, µs:`);
  console.log(`${'server'.padEnd(12)}${'MB/s'.padStart(8)}${'blocks'.padStart(9)}${'server µs'.padStart(20)}${'client µs'.padStart(20)}${'µs/block'.padStart(12)}`);
  for (const r of rows) console.log(r);
  const names = [...calls.keys()];
  const all = new Set<string>();
  for (const m of calls.values()) for (const [k, v] of m) if (k !== '(blocks)' && v >= 100) all.add(k);
  console.log(`\nServer system calls per block (strace -c -f, a second download of the same file; calls under 100 left out):`);
  console.log(`${'call'.padEnd(16)}${names.map((n) => n.padStart(12)).join('')}`);
  for (const k of [...all].sort()) {
    console.log(`${k.padEnd(16)}${names.map((n) => ((calls.get(n)!.get(k) ?? 0) / calls.get(n)!.get('(blocks)')!).toFixed(3).padStart(12)).join('')}`);
  }
  console.log(`${'total'.padEnd(16)}${names.map((n) => ([...calls.get(n)!].filter(([k]) => k !== '(blocks)').reduce((a, [, v]) => a + v, 0) / calls.get(n)!.get('(blocks)')!).toFixed(3).padStart(12)).join('')}`);
}

function existsShm(): boolean {
  try {
    return readFileSync('/proc/mounts', 'utf8').includes(' /dev/shm ');
  } catch {
    return false;
  }
}

await main();
