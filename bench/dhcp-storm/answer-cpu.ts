// The PXE server's answer path alone, without sockets: the storm's datagrams (packets.ts: 1,000
// known BIOS clients, DISCOVER on 67 then REQUEST on 4011) handed to a checkout's
// ServerService.onDatagram in a loop, the replies "sent" to no socket. Prints CPU ns per datagram
// (this process, all threads: GC helpers included) and scavenges per 100,000 datagrams: figures
// that do not depend on what else the machine runs (beyond its cache), unlike bench/dhcp-storm's
// replies/s. Works on this checkout and on one from before the tree moved (8d95a49), so that the
// two can be compared in turns:
//   node --import tsx bench/dhcp-storm/answer-cpu.ts [--dir CHECKOUT] [--passes 200] [--runs 5]
import { Buffer } from 'node:buffer';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { clientMac } from './packets.ts';
import { readFileSync } from 'node:fs';
import { writePackets } from './packets.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? dflt : argv[i + 1]!;
};
const dir = resolve(opt('dir', resolve(import.meta.dirname, '../..')));
const passes = Number(opt('passes', '200'));
const runs = Number(opt('runs', '5'));
const clients = 1000;
const SERVER = '10.77.0.1';
const CLIENT = '10.77.0.2';

const moved = existsSync(join(dir, 'platform/runtime/config.ts'));
const load = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(join(dir, rel)).href)) as T;
const work = mkdtempSync(join(tmpdir(), 'answer-cpu-'));
const toml = `
[paths]
data = "${work}/data"
sbs = "${work}/sbs"
sbs_store = "${work}/sbsstore"
tftp_root = "${work}/tftp"
[log]
level = "warn"
[server]
address = "${SERVER}"
bind = "0.0.0.0"
dhcp_port = 67
proxy_port = 4011
[interface]
bind = "127.0.0.1"
[site]
id = "answer-cpu"
`;
type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const { parseConfigText } = await load<Any>(moved ? 'platform/runtime/config.ts' : 'services/shared/config.ts');
const { createLogger } = await load<Any>(moved ? 'platform/runtime/logger.ts' : 'services/shared/logger.ts');
const config = parseConfigText(toml, 'answer-cpu.toml', work);
const log = createLogger({ level: 'warn' });
const state = {
  config: { respond: 'known', unknown: { type: 'local' }, responseDelayMs: 0, bootFiles: { bios: 'undionly.kpxe', 'efi-x64': 'snponly.efi' } },
  clients: Array.from({ length: clients }, (_, i) => ({ mac: clientMac(i), action: { type: 'boot', image: 'lnx', once: true } })),
  images: [{ id: 'lnx', name: 'Linux', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'vmlinuz' }],
  predefined: [],
};
// The service, its feed holding `state`, serving (no socket is opened: sends go nowhere).
let service: Any;
let sent = 0;
if (moved) {
  const { buildServer } = await load<Any>('services/server/main.ts');
  service = buildServer(config, log, {});
  service.parts.feed.current = state;
  service.parts.transport.send = () => void sent++;
} else {
  const { ServerService } = await load<Any>('services/server/server-service.ts');
  service = new ServerService(config, log, {});
  service.feed.current = state;
  service.transport.send = () => void sent++;
}
service.phase = 'serving';
// As when the server binds its ports: the warm-up runs first (it shapes what the compiler sees).
if (process.env.ANSWER_CPU_NO_WARM_UP === undefined) service.warmUp();

// The storm's datagrams, as storm.c sends them: DISCOVER from 0.0.0.0:68, REQUEST from CLIENT:68.
const file = join(work, 'packets');
writePackets(file, 0, clients, 0x20000000, CLIENT);
const raw = readFileSync(file);
const datagrams: { msg: Buffer; from: { address: string; port: number }; via: 'dhcp' | 'proxy' }[] = [];
for (let off = 0, k = 0; off < raw.length; k++) {
  const n = raw.readUInt16BE(off);
  const msg = Buffer.from(raw.subarray(off + 2, off + 2 + n));
  off += 2 + n;
  const discover = k % 2 === 0;
  datagrams.push({ msg, from: { address: discover ? '0.0.0.0' : CLIENT, port: 68 }, via: discover ? 'dhcp' : 'proxy' });
}

let scavenges = 0;
new PerformanceObserver((list) => {
  // detail.kind: NODE_PERFORMANCE_GC_MINOR (a scavenge) is 1.
  for (const e of list.getEntries()) if ((e as Any).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
}).observe({ entryTypes: ['gc'] });

// As the transport delivers them: a fresh Buffer each, and one clock reading per batch (of 8,
// as at the storm's window 8; a checkout from before the readings per batch ignores it).
function pass(): void {
  let receivedAt = 0;
  for (let i = 0; i < datagrams.length; i++) {
    const d = datagrams[i]!;
    if (i % 8 === 0) receivedAt = performance.now();
    service.onDatagram(Buffer.from(d.msg), d.from, d.via, receivedAt);
    if (i % 8 === 7) service.offersSent?.();
  }
}
// Warm-up: the optimizing compiler done before anything is counted.
for (let i = 0; i < 50; i++) pass();
/** CPU ns of each thread of this process (Linux: /proc/self/task/<tid>/schedstat), by thread name. */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      out.set(`${name}/${tid === String(process.pid) ? 'main' : tid}`, ns);
    } catch {
      // gone
    }
  }
  return out;
}
const threads = new Map<string, number>();
const results: { ns: number; wallNs: number; scav: number }[] = [];
for (let r = 0; r < runs; r++) {
  await new Promise((res) => setTimeout(res, 20)); // GC observer entries of the last run
  const s0 = scavenges;
  sent = 0;
  const th0 = threadCpu();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < passes; i++) pass();
  const wall = Number(process.hrtime.bigint() - t0);
  const c = process.cpuUsage(c0);
  for (const [k, v] of threadCpu()) threads.set(k, (threads.get(k) ?? 0) + v - (th0.get(k) ?? 0));
  await new Promise((res) => setTimeout(res, 20));
  const n = passes * datagrams.length;
  if (sent !== n) throw new Error(`${sent} replies sent for ${n} datagrams`);
  results.push({ ns: ((c.user + c.system) * 1000) / n, wallNs: wall / n, scav: ((scavenges - s0) * 100000) / n });
}
const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(JSON.stringify({
  dir, datagrams: passes * datagrams.length, cpuNsPerDatagram: Math.round(med(results.map((r) => r.ns))), wallNsPerDatagram: Math.round(med(results.map((r) => r.wallNs))),
  scavengesPer100k: +med(results.map((r) => r.scav)).toFixed(2), runs: results.map((r) => Math.round(r.ns)),
  // CPU ns per datagram by thread over all runs: the main thread's is the answer path and its GC.
  threads: Object.fromEntries([...threads].filter(([, v]) => v > 0).map(([k, v]) => [k, Math.round(v / (runs * passes * datagrams.length))])),
}));
process.exit(0);
