// DHCP storm: 1,000 distinct simulated PXE clients, DISCOVER + 4011 boot server request each, as
// fast as the server takes them, against netboot (interface + server, the real `netboot run`) and
// against dnsmasq in proxy mode in the same run. Each server has its own pair of network
// namespaces joined by a veth (same addresses everywhere), all of them running at once, and the
// rounds take turns between the servers: on a shared machine, load from elsewhere falls on every
// server alike instead of on whichever ran in a bad minute. The load client is storm.c (compiled
// here with `cc`), so that it costs less per exchange than the servers it measures; the requests
// are built with our codec (packets.ts). Needs root, dnsmasq, iproute2, a C compiler.
// Usage: node --import tsx bench/dhcp-storm/run.ts [--clients 1000] [--windows 8,32,128] [--rounds 15]
//   [--lone 6] [--gap-ms 2000] [--only dnsmasq,netboot,node-floor] [--baseline DIR]
// --baseline DIR: also runs the netboot of another checkout (e.g. `git worktree add DIR main`),
// as "netboot@base", in the same run: before and after a change, against the same dnsmasq.
// --scrape (or "netboot-scraped" in --only): this netboot again, watched as an operator would:
// Prometheus's GET /metrics every second and the status page's live stream (/events) held open,
// both from the server's namespace, in the same run (issue 20: they must cost the PXE path nothing).
// "netboot-dgram" in --only adds this netboot with `[server] io_path = "dgram"` (node:dgram
// sockets instead of the native/udp-batch addon), in the same run.
// Before the storm, each server gets `lone` single exchanges, each after `gap-ms` of idleness
// (the first one the very first request it sees): the latency of a lone request, as in a real boot.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, stringFlag } from '../../cli/args.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { processCpuSeconds } from '../process-cpu.ts';
import { clientMac, writePackets } from './packets.ts';

const args = parseArgs(process.argv.slice(2));
const clients = Number(stringFlag(args, 'clients') ?? 1000);
const windows = (stringFlag(args, 'windows') ?? stringFlag(args, 'window') ?? '8,32,128').split(',').map(Number);
const rounds = Number(stringFlag(args, 'rounds') ?? 15);
const lone = Number(stringFlag(args, 'lone') ?? 6);
const gapMs = Number(stringFlag(args, 'gap-ms') ?? 2000);
const only = (stringFlag(args, 'only') ?? 'dnsmasq,netboot,node-floor,netboot@base').split(',');
if (args.flags.get('scrape') === true && !only.includes('netboot-scraped')) only.push('netboot-scraped');
const baseline = stringFlag(args, 'baseline');
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tag = `nbs${process.pid % 100000}`;
/** One server's namespaces and veth ends. */
interface Lan { readonly srv: string; readonly cli: string; readonly link: string; readonly peer: string }
const lans: Lan[] = [];
const SERVER = '10.77.0.1';
const CLIENT = '10.77.0.2';
const dir = mkdtempSync(join(tmpdir(), 'dhcp-storm-'));
// The load client (storm.c), compiled once for the whole run.
const stormBin = join(dir, 'storm');
execFileSync('cc', ['-O2', '-Wall', '-o', stormBin, join(repo, 'bench/dhcp-storm/storm.c')], { stdio: ['ignore', 'inherit', 'inherit'] });

function ip(...a: string[]): void {
  execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'inherit'] });
}

function setUp(i: number): Lan {
  const ns: Lan = { srv: `${tag}s${i}`, cli: `${tag}c${i}`, link: `${tag}a${i}`, peer: `${tag}b${i}` };
  lans.push(ns);
  ip('netns', 'add', ns.srv);
  ip('netns', 'add', ns.cli);
  ip('link', 'add', ns.link, 'type', 'veth', 'peer', 'name', ns.peer);
  ip('link', 'set', ns.link, 'netns', ns.srv);
  ip('link', 'set', ns.peer, 'netns', ns.cli);
  for (const [n, link, addr] of [[ns.srv, ns.link, SERVER], [ns.cli, ns.peer, CLIENT]] as const) {
    ip('-n', n, 'link', 'set', 'lo', 'up');
    ip('-n', n, 'addr', 'add', `${addr}/24`, 'dev', link);
    ip('-n', n, 'link', 'set', link, 'up');
    // 255.255.255.255 needs a route, or sending a broadcast fails with ENETUNREACH.
    ip('-n', n, 'route', 'add', 'default', 'dev', link);
  }
  return ns;
}

function tearDown(): void {
  for (const n of lans.flatMap((l) => [l.srv, l.cli])) {
    try {
      ip('netns', 'del', n);
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Result {
  replies: number; lost: number; wrong: number; seconds: number; repliesPerSec: number; p50Ms: number; p99Ms: number; maxMs: number;
  clientCpuUs: number; stealMs: number; discoverMs: number[];
}

/** One round: `n` of the simulated clients (from the first), `window` in flight, run by storm.c in the client namespace. */
function load(ns: Lan, n: number, xidBase: number, window: number, gap = 0): Result {
  const file = join(dir, 'packets');
  writePackets(file, 0, n, xidBase, CLIENT);
  const out = execFileSync('ip', ['netns', 'exec', ns.cli, stormBin, file, String(window), SERVER, '255.255.255.255', '67', '4011', '0.0.0.0', '68', '2000', String(gap)], { encoding: 'utf8' });
  return JSON.parse(out.trim()) as Result;
}

async function startDnsmasq(ns: Lan): Promise<ChildProcess[]> {
  const child = spawn('ip', ['netns', 'exec', ns.srv, 'dnsmasq', '-d', '-p0', '--quiet-dhcp', `--interface=${ns.link}`, '--dhcp-range=10.77.0.0,proxy',
    '--pxe-service=x86PC,netboot bench,undionly', `--dhcp-leasefile=${dir}/leases`, `--pid-file=${dir}/dnsmasq.pid`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await until('dnsmasq to start', () => log.includes('proxy on subnet'));
  return [child];
}

async function startNetboot(ns: Lan, code = repo, ioPath = 'auto', scraped = false): Promise<ChildProcess[]> {
  const site = join(dir, `netboot-${code === repo ? 'this' : 'base'}-${ioPath}${scraped ? '-scraped' : ''}`);
  mkdirSync(join(site, 'sbs'), { recursive: true });
  writeFileSync(join(site, 'netboot.toml'), `
[paths]
data = "${site}/data"
sbs = "${site}/sbs"
sbs_store = "${site}/sbsstore"
tftp_root = "${site}/tftp"
[log]
level = "${process.env.BENCH_LOG_LEVEL ?? 'warn'}"
[server]
address = "${SERVER}"
bind = "0.0.0.0"
dhcp_port = 67
proxy_port = 4011
io_path = "${ioPath}"
[interface]
bind = "127.0.0.1"
[site]
id = "dhcp-storm"
`);
  // Every simulated client is a known machine with a boot action: the policy does its real work.
  const issued = new Date().toISOString();
  const macs = Array.from({ length: clients }, (_, i) => clientMac(i));
  const doc = (n: number, kind: string, body: object): void => writeFileSync(join(site, 'sbs', `${n}.sbs`), JSON.stringify({ sbs: 1, id: `7d0e8f00-0000-4000-8000-00000000000${n}`, kind, issued, ...body }));
  doc(1, 'config', { config: { respond: 'known', unknown: { type: 'local' }, bootFiles: { bios: 'undionly.kpxe', 'efi-x64': 'snponly.efi' } } });
  doc(2, 'clients', { clients: macs.map((mac) => ({ mac, action: { type: 'boot', image: 'lnx', once: true } })) });
  doc(3, 'images', { images: [{ id: 'lnx', name: 'Linux', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'vmlinuz' }] });
  // The Interface and the server as two processes (`netboot run interface`, `netboot run server`);
  // BENCH_SERVER_NODE_FLAGS adds node flags to the server's, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p".
  // BENCH_SERVER_STDOUT=FILE keeps the server's stdout (its log, or --trace-gc output); else it is
  // a pipe read here, as the supervisor reads it. BENCH_LOG_LEVEL=info: a record per answer, as
  // in production (dnsmasq then still runs with --quiet-dhcp: use it for lone requests only).
  const out = (service: string): 'pipe' | number => (service === 'server' && process.env.BENCH_SERVER_STDOUT !== undefined ? openSync(process.env.BENCH_SERVER_STDOUT, 'w') : 'pipe');
  // A baseline checkout from before the tree moved has its command under services/cli.
  const cliPath = (dir: string): string => (existsSync(join(dir, 'cli/main.ts')) ? join(dir, 'cli/main.ts') : join(dir, 'services/cli/main.ts'));
  const run = (service: string, flags: string[]): ChildProcess => {
    const child = spawn('ip', ['netns', 'exec', ns.srv, process.execPath, ...flags, '--import', 'tsx',
      cliPath(code), 'run', service, '--config', join(site, 'netboot.toml')], { cwd: code, stdio: ['ignore', out(service), 'inherit'] });
    child.stdout?.resume();
    return child;
  };
  const iface = run('interface', []);
  const server = run('server', (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(' ').filter((f) => f !== ''));
  const sock = controlSocketPath(join(site, 'data'), 'server');
  await until('netboot to serve', async () => {
    try {
      const s = await controlCall<{ state: string; feed: { complete: boolean } }>(sock, 'GET', '/status');
      const state = await controlCall<{ state: { clients: unknown[] | null } }>(controlSocketPath(join(site, 'data'), 'interface'), 'GET', '/state');
      return s.state === 'serving' && state.state.clients?.length === clients;
    } catch {
      return false;
    }
  }, 60000);
  if (!scraped) return [server, iface];
  // The watchers, in the server's namespace ([web] listens on its loopback, 127.0.0.1:9490).
  const web = 'http://127.0.0.1:9490';
  await until('the web address', () => {
    try {
      execFileSync('ip', ['netns', 'exec', ns.srv, 'curl', '-sf', '-o', '/dev/null', `${web}/metrics`]);
      return true;
    } catch {
      return false;
    }
  });
  const scraper = spawn('ip', ['netns', 'exec', ns.srv, 'sh', '-c', `while :; do curl -s -o /dev/null --max-time 5 ${web}/metrics; sleep 1; done`], { stdio: 'ignore' });
  const page = spawn('ip', ['netns', 'exec', ns.srv, 'curl', '-sN', '-o', '/dev/null', `${web}/events`], { stdio: 'ignore' });
  return [server, iface, scraper, page];
}

/** CPU time (user + system, ms) a process has used. */
function cpuMs(pid: number): number {
  return processCpuSeconds(pid) * 1000;
}

async function startNodeFloor(ns: Lan): Promise<ChildProcess[]> {
  const child = spawn('ip', ['netns', 'exec', ns.srv, process.execPath, '--import', 'tsx', join(repo, 'bench/dhcp-storm/node-floor.ts')], { cwd: repo, stdio: 'ignore' });
  await until('node-floor to bind', () => {
    try {
      return execFileSync('ip', ['netns', 'exec', ns.srv, 'ss', '-Huln', 'sport = :4011'], { encoding: 'utf8' }).trim() !== '';
    } catch {
      return false;
    }
  });
  return [child];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const results: Record<string, Record<number, { rounds: Result[]; cpuUs: number }>> = {};
const lones: Record<string, { cold: number[]; warm: number[] }> = {};
process.on('SIGINT', () => {
  tearDown();
  process.exit(130);
});
const running: { name: string; ns: Lan; children: ChildProcess[] }[] = [];
try {
  const servers: [string, (ns: Lan) => Promise<ChildProcess[]>][] = [['dnsmasq', startDnsmasq], ['netboot', (ns) => startNetboot(ns)], ['node-floor', startNodeFloor]];
  if (baseline !== undefined) servers.splice(2, 0, ['netboot@base', (ns) => startNetboot(ns, resolve(baseline))]);
  servers.splice(2, 0, ['netboot-dgram', (ns) => startNetboot(ns, repo, 'dgram')]);
  servers.splice(2, 0, ['netboot-scraped', (ns) => startNetboot(ns, repo, 'auto', true)]);
  // In the order --only names them: a server's place in the rounds can bias its figures.
  for (const [name, start] of servers.filter(([name]) => only.includes(name)).sort(([a], [b]) => only.indexOf(a) - only.indexOf(b))) {
    const ns = setUp(running.length);
    running.push({ name, ns, children: await start(ns) });
  }
  // Lone requests first, so that the first is the first this server ever answers.
  if (lone > 0) for (const { name, ns } of running) lones[name] = { cold: load(ns, lone, 0x00100000, 1, gapMs).discoverMs, warm: [] };
  // Warm-up, not counted: ARP, caches, and V8's optimizing compiler, which runs on other threads
  // for the first few thousand requests (with 100 it was still compiling through the first window,
  // taking CPU from the client and charging the server tens of µs per reply).
  const warmups = Math.ceil(Number(process.env.BENCH_WARMUP ?? 2000) / clients);
  for (const { ns } of running) for (let i = 0; i < warmups; i++) load(ns, clients, 0x01000000 + i * 0x10000, 32);
  windows.forEach((window, w) => {
    const cpu: Record<string, number> = {};
    for (const { name } of running) results[name] = { ...results[name], [window]: { rounds: [], cpuUs: 0 } };
    for (let r = 0; r < rounds; r++) {
      for (const { name, ns, children } of running) {
        const pid = children[0]!.pid!;
        const before = cpuMs(pid);
        results[name]![window]!.rounds.push(load(ns, clients, 0x20000000 + (w * rounds + r) * 0x100000, window));
        cpu[name] = (cpu[name] ?? 0) + cpuMs(pid) - before;
      }
    }
    for (const { name } of running) {
      const byWindow = results[name]![window]!;
      byWindow.cpuUs = (cpu[name]! * 1000) / byWindow.rounds.reduce((n, x) => n + x.replies, 0);
    }
  });
  // And again once the server has served thousands (its JIT warm), each after an idle gap.
  if (lone > 0) for (const { name, ns } of running) lones[name]!.warm = load(ns, lone, 0x00200000, 1, gapMs).discoverMs;
} finally {
  for (const { children } of running) for (const child of children) await stop(child);
  tearDown();
}

console.log(`dhcp-storm: ${clients} clients x (DISCOVER + 4011 REQUEST), ${rounds} rounds per window (medians), the servers' rounds in turn, each on a veth between two namespaces of its own`);
console.log('(node-floor: a Node process that answers without decoding anything, for reference; CPU: user + system time per reply)');
console.log('(steal: CPU time the hypervisor gave to other guests during the rounds, as a share of both CPUs: stalls that no server can help)');
console.log('window  server       replies (all rounds) lost  replies/s   p50 ms   p99 ms   max ms  server CPU µs  client CPU µs  steal');
for (const window of windows) {
  for (const [name, byWindow] of Object.entries(results)) {
    const { rounds: rs, cpuUs } = byWindow[window]!;
    const replies = rs.reduce((n, r) => n + r.replies, 0);
    const clientUs = rs.reduce((n, r) => n + r.clientCpuUs, 0) / replies;
    const steal = rs.reduce((n, r) => n + r.stealMs, 0) / (2 * 1000 * rs.reduce((n, r) => n + r.seconds, 0));
    console.log(`${String(window).padStart(6)}  ${name.padEnd(12)} ${`${replies}/${rs.length * 2 * clients}`.padEnd(20)} ${String(rs.reduce((n, r) => n + r.lost + r.wrong, 0)).padStart(4)} `
      + `${median(rs.map((r) => r.repliesPerSec)).toFixed(0).padStart(10)} ${median(rs.map((r) => r.p50Ms)).toFixed(3).padStart(8)} ${median(rs.map((r) => r.p99Ms)).toFixed(3).padStart(8)} `
      + `${median(rs.map((r) => r.maxMs)).toFixed(3).padStart(8)} ${cpuUs.toFixed(1).padStart(14)} ${clientUs.toFixed(1).padStart(14)} ${(steal * 100).toFixed(1).padStart(5)}%`);
  }
}
if (Object.keys(lones).length > 0) {
  console.log(`\nlone DISCOVER -> offer, each after ${gapMs} ms idle (ms): a fresh server (its first request ever, then the median and max`);
  console.log('of the rest), and the same after the storm:');
  const row = (ms: number[]): string => {
    const rest = ms.slice(1);
    return `first ${ms[0]?.toFixed(3) ?? '-'}  median ${rest.length === 0 ? '-' : median(rest).toFixed(3)}  max ${rest.length === 0 ? '-' : Math.max(...rest).toFixed(3)}`;
  };
  for (const [name, { cold, warm }] of Object.entries(lones)) {
    console.log(`${name.padEnd(12)} fresh: ${row(cold)}   after the storm: median ${median(warm).toFixed(3)}  max ${Math.max(...warm).toFixed(3)}`);
  }
}
