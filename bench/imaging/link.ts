// Captures over a link of a real site's speed: our capture with its chunks raw, ours deflated
// where that pays, ours `auto` (deflating only while the wire is the bottleneck; the agent's own
// UploadSink and SiteClient, images/agent/), and the pipeline
// FOG and Clonezilla use (`partclone.extfs -c | zstd -3 -T0 | curl -T -`), in the same run, first
// over loopback (unshaped: what the CPU costs), then to a site stand-in behind a link shaped to
// BENCH_LINK_RATE (default 1gbit). The link: a network namespace this bench makes, with a veth
// pair and `tc qdisc tbf` on both ends (removed at the end); the site stand-in (serve.ts, the
// agent's upload routes and partclone's upload) runs in it, a process of its own, as the site
// server is. The source is run.ts's disk (source-disk.ts: ext4 about half full of a real tree).
// Prints, per run and as medians: seconds, MB/s of used data, bytes of data (ours: the chunks
// sent, raw; partclone: its image stream before zstd, measured once), bytes on the wire (HTTP
// request bodies the stand-in received; on the link also the IP bytes the veth sent), CPU
// seconds (this process and its threads, the pipeline's processes, the stand-in).
// Run (root): node --import tsx bench/imaging/link.ts
//   BENCH_IMAGING_GIB=8  BENCH_IMAGING_REPS=3  BENCH_IMAGING_CACHE=DIR  BENCH_IMAGING_COPIES=N (as run.ts)
//   BENCH_LINK_RATE=1gbit (tc's rate syntax)  BENCH_LINK_MODES=loopback,link  BENCH_LINK_TOOLS=raw,deflate,auto,partclone
//   BENCH_LINK_DEFLATE_PARALLEL=N  chunks the sink deflates at once (default: the agent's)
//   BENCH_LINK_IN_FLIGHT=N  batches the sink has under way at once (default: the agent's)
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { SiteClient } from '../../images/agent/site-client.ts';
import { UploadSink } from '../../images/agent/upload-sink.ts';
import type { UploadEncoding } from '../../images/agent/options.ts';
import { openDisk } from '../../images/block-device.ts';
import { captureDisk } from '../../images/capture.ts';
import { totalLength } from '../../images/extents.ts';
import { fsUsage } from '../../images/used-blocks.ts';
import { sourceDisk } from './source-disk.ts';

const GIB = Number(process.env.BENCH_IMAGING_GIB ?? 8);
const REPS = Number(process.env.BENCH_IMAGING_REPS ?? 3);
const RATE = process.env.BENCH_LINK_RATE ?? '1gbit';
const MODES = (process.env.BENCH_LINK_MODES ?? 'loopback,link').split(',') as ('loopback' | 'link')[];
const TOOLS = (process.env.BENCH_LINK_TOOLS ?? 'raw,deflate,auto,partclone').split(',') as Tool[];
type Tool = 'raw' | 'deflate' | 'auto' | 'partclone';
const NAME: Record<Tool, string> = { raw: 'ours, raw', deflate: 'ours, deflate', auto: 'ours, auto', partclone: 'partclone\\|zstd\\|http' };

const sh = (cmd: string, args: string[], input?: string): string => execFileSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 64 << 20, timeout: 1_800_000 });
const shAsync = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'bench-link-'));
const loops: string[] = [];
const attach = (file: string, offset = 0, size = 0): string => {
  const dev = sh('losetup', ['-f', '--show', ...(offset ? ['-o', String(offset)] : []), ...(size ? ['--sizelimit', String(size)] : []), file]).trim();
  loops.push(dev);
  return dev;
};
// The namespace and the veth pair: names unique to this run.
const tag = (process.pid % 100000).toString(36);
const NS = `nbl-${tag}`;
const HOST_IF = `nbl${tag}a`;
const NS_IF = `nbl${tag}b`;
const HOST_IP = '10.213.77.1';
const NS_IP = '10.213.77.2';
let netnsMade = false;
const servers: ChildProcess[] = [];
const cleanup = (): void => {
  for (const s of servers) if (s.pid !== undefined && s.exitCode === null) try { process.kill(s.pid, 'SIGKILL'); } catch { /* gone */ }
  if (netnsMade) {
    try { sh('ip', ['link', 'del', HOST_IF]); } catch { /* gone with the namespace */ }
    try { sh('ip', ['netns', 'del', NS]); } catch { /* gone */ }
  }
  for (const d of loops.reverse()) try { sh('losetup', ['-d', d]); } catch { /* gone */ }
  rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(1));
const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const loadStart = load();
console.error(`start ${new Date().toISOString()}, load average ${loadStart}`);

const procCpu = (pid: number | 'self'): { own: number; children: number } => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { own: (Number(f[11]) + Number(f[12])) / 100, children: (Number(f[13]) + Number(f[14])) / 100 };
};
const txBytes = (): number => Number(readFileSync(`/sys/class/net/${HOST_IF}/statistics/tx_bytes`, 'utf8'));

// The source disk.
const source = sourceDisk({ gib: GIB, copies: process.env.BENCH_IMAGING_COPIES === undefined ? undefined : Number(process.env.BENCH_IMAGING_COPIES), cache: process.env.BENCH_IMAGING_CACHE, work });
const srcLoop = attach(source.path);
const srcPart = attach(srcLoop, source.partStart, source.partBytes);
const used = totalLength((await fsUsage(async (o, l) => { const d = await openDisk(srcLoop, 'r'); try { return await d.read(source.partStart + o, l); } finally { await d.close(); } }, source.partBytes)).used);
console.error(`source: ${GIB} GiB disk, ext4 ${(source.partBytes / 1e9).toFixed(2)} GB with ${(used / 1e9).toFixed(2)} GB used (${source.copies} copies of the tree)`);
const pcStreamBytes = TOOLS.includes('partclone') ? Number(sh('bash', ['-o', 'pipefail', '-c', `partclone.extfs -c -q -s ${srcPart} -o - 2>/dev/null | wc -c`]).trim()) : 0;

// The link: a namespace holding the stand-in, tbf on both ends of the veth pair.
if (MODES.includes('link')) {
  sh('ip', ['netns', 'add', NS]);
  netnsMade = true;
  sh('ip', ['link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF]);
  sh('ip', ['link', 'set', NS_IF, 'netns', NS]);
  sh('ip', ['addr', 'add', `${HOST_IP}/30`, 'dev', HOST_IF]);
  sh('ip', ['link', 'set', HOST_IF, 'up']);
  sh('ip', ['-n', NS, 'addr', 'add', `${NS_IP}/30`, 'dev', NS_IF]);
  sh('ip', ['-n', NS, 'link', 'set', NS_IF, 'up']);
  sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  for (const [ns, dev] of [[null, HOST_IF], [NS, NS_IF]] as const) {
    sh('tc', [...(ns === null ? [] : ['-n', ns]), 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', RATE, 'burst', '256kb', 'latency', '20ms']);
  }
}

interface Site { readonly host: string; readonly port: number; readonly pid: number }
async function startSite(mode: 'loopback' | 'link'): Promise<Site> {
  const dir = join(work, `site-${mode}`);
  mkdirSync(dir, { recursive: true });
  const host = mode === 'link' ? NS_IP : '127.0.0.1';
  const cmd = [process.execPath, '--import', 'tsx', join(import.meta.dirname, 'serve.ts'), dir, host];
  const child = mode === 'link' ? spawn('ip', ['netns', 'exec', NS, ...cmd], { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(child);
  const port = Number(await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve)));
  return { host, port, pid: child.pid! }; // `ip netns exec` execs the command: the pid is the stand-in's
}
const sites = new Map<string, Site>();
for (const m of MODES) sites.set(m, await startSite(m));
const stats = async (s: Site): Promise<{ bytesIn: number; chunkBytesIn: number }> => (await fetch(`http://${s.host}:${s.port}/stats`)).json() as Promise<{ bytesIn: number; chunkBytesIn: number }>;

interface Row { mode: string; tool: Tool; rep: number; wallS: number; dataMB: number; wireMB: number; ipMB: number | null; cpuS: number; siteCpuS: number; deflated: string }
const rows: Row[] = [];

async function ours(site: Site, encoding: UploadEncoding): Promise<{ dataBytes: number; deflated: string }> {
  const client = new SiteClient(`${site.host}:${site.port}`, '0'.repeat(64));
  const disk = await openDisk(srcLoop, 'r');
  try {
    const env = (name: string): number | undefined => (process.env[name] === undefined ? undefined : Number(process.env[name]));
    const sink = new UploadSink(client, 'bench', { encoding, deflateParallel: env('BENCH_LINK_DEFLATE_PARALLEL'), inFlight: env('BENCH_LINK_IN_FLIGHT') });
    const r = await captureDisk(disk, { sink, madeBy: 'capture', probeOs: false });
    await sink.commit(r.image);
    return { dataBytes: sink.bytesSent, deflated: `${sink.chunksDeflated} of ${sink.chunksSent}` };
  } finally {
    await disk.close();
    client.close();
  }
}
async function partclone(site: Site): Promise<{ dataBytes: number; deflated: string }> {
  await shAsync('bash', ['-o', 'pipefail', '-c', `partclone.extfs -c -q -s ${srcPart} -o - 2>/dev/null | zstd -3 -T0 -q | curl -sf -T - http://${site.host}:${site.port}/raw/pc`], { timeout: 1_800_000 });
  return { dataBytes: pcStreamBytes, deflated: 'zstd -3' };
}

async function measure(mode: 'loopback' | 'link', tool: Tool, rep: number): Promise<void> {
  const site = sites.get(mode)!;
  await (await fetch(`http://${site.host}:${site.port}/reset`, { method: 'POST' })).text(); // a site that holds none of it
  sh('blockdev', ['--flushbufs', srcLoop]);
  sh('blockdev', ['--flushbufs', srcPart]);
  const s0 = await stats(site);
  const ip0 = mode === 'link' ? txBytes() : 0;
  const c0 = process.cpuUsage();
  const k0 = procCpu('self').children;
  const v0 = procCpu(site.pid).own;
  const t0 = performance.now();
  const r = tool === 'partclone' ? await partclone(site) : await ours(site, tool);
  const wallS = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const siteCpuS = procCpu(site.pid).own - v0;
  const cpuS = (c.user + c.system) / 1e6 + (procCpu('self').children - k0) + siteCpuS;
  const s1 = await stats(site);
  const row: Row = { mode, tool, rep, wallS, dataMB: r.dataBytes / 1e6, wireMB: (s1.bytesIn - s0.bytesIn) / 1e6, ipMB: mode === 'link' ? (txBytes() - ip0) / 1e6 : null, cpuS, siteCpuS, deflated: r.deflated };
  rows.push(row);
  console.error(`${mode} ${tool} #${rep + 1}: ${wallS.toFixed(2)} s, ${(used / 1e6 / wallS).toFixed(0)} MB/s, data ${row.dataMB.toFixed(1)} MB, wire ${row.wireMB.toFixed(1)} MB${row.ipMB === null ? '' : ` (IP ${row.ipMB.toFixed(1)} MB)`}, cpu ${cpuS.toFixed(2)} s (site ${siteCpuS.toFixed(2)}), ${r.deflated}; load ${load()}`);
}

for (let rep = 0; rep < REPS; rep++) {
  for (const mode of MODES) {
    const order = rep % 2 === 0 ? TOOLS : [...TOOLS].reverse();
    for (const tool of order) await measure(mode, tool, rep);
  }
}
for (const s of servers) s.kill('SIGKILL');
const loadEnd = load();

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const cpuModel = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? '';
console.log(`\n${GIB} GiB GPT disk, ext4 with ${(used / 1e6).toFixed(0)} MB used (${source.copies} copies of the tree); site stand-in a process of its own; ${cpuModel}, ${sh('nproc', []).trim()} cores`);
console.log(`link: veth into a network namespace, tbf rate ${RATE} burst 256kb latency 20ms on both ends; loopback unshaped`);
console.log(`load average ${loadStart} at the start, ${loadEnd} at the end; ${new Date().toISOString()}`);
console.log('\nEvery run (CPU: this process with its threads, the pipeline\'s processes, the site stand-in):\n');
console.log('| link | capture | rep | s | MB/s of used data | data MB | wire MB (HTTP bodies) | IP MB | CPU s | of which site | compressed |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
for (const r of rows) console.log(`| ${r.mode === 'link' ? RATE : 'loopback'} | ${NAME[r.tool]} | ${r.rep + 1} | ${r.wallS.toFixed(2)} | ${(used / 1e6 / r.wallS).toFixed(0)} | ${r.dataMB.toFixed(1)} | ${r.wireMB.toFixed(1)} | ${r.ipMB === null ? '' : r.ipMB.toFixed(1)} | ${r.cpuS.toFixed(2)} | ${r.siteCpuS.toFixed(2)} | ${r.deflated} |`);
console.log(`\nMedians${REPS > 1 ? ` of ${REPS}` : ''} (wall range in brackets), side by side:\n`);
console.log('| link | capture | s | MB/s of used data | data MB | wire MB | CPU s |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
for (const mode of MODES) {
  for (const tool of TOOLS) {
    const of = rows.filter((r) => r.mode === mode && r.tool === tool);
    if (of.length === 0) continue;
    const w = median(of.map((r) => r.wallS));
    const range = of.length > 1 ? ` (${Math.min(...of.map((r) => r.wallS)).toFixed(2)}-${Math.max(...of.map((r) => r.wallS)).toFixed(2)})` : '';
    console.log(`| ${mode === 'link' ? RATE : 'loopback'} | ${NAME[tool]} | ${w.toFixed(2)}${range} | ${(used / 1e6 / w).toFixed(0)} | ${median(of.map((r) => r.dataMB)).toFixed(0)} | ${median(of.map((r) => r.wireMB)).toFixed(0)} | ${median(of.map((r) => r.cpuS)).toFixed(2)} |`);
  }
}
process.exit(0); // the stand-ins' keep-alive sockets would hold the loop open
