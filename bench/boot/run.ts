// bench/boot: power-on to second stage, netboot against dnsmasq, measured in the same run.
//   node --import tsx bench/boot/run.ts [--runs N]   (root: it makes network namespaces)
// Two identical private LANs (network namespaces), each with dnsmasq handing out addresses and a
// BIOS guest (SeaBIOS + iPXE ROM, QEMU under TCG). On one, netboot (`netboot run`, all four
// services) is the PXE server; on the other, dnsmasq in proxy mode with its own TFTP server, serving
// the same files. Both chain to the same second-stage script: netboot's generated per-machine
// script chains it; dnsmasq offers a static script that chains it (after its 4011 exchange, which
// its proxy mode needs). Boots alternate between the two, one warm-up each first; each time is
// from QEMU's start to the second-stage marker on the serial console. The measured boots start once
// netboot's processes are idle (see settled()). Target: netboot <= dnsmasq.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { parseArgs } from '../../cli/args.ts';
import { Cleanup } from '../../test/e2e/harness/cleanup.ts';
import { startDhcpServer, startDnsmasqProxy } from '../../test/e2e/harness/dnsmasq.ts';
import { startGuest } from '../../test/e2e/harness/guest.ts';
import { NetbootSite } from '../../test/e2e/harness/netboot-site.ts';
import { DHCP_ADDRESS, Lan, SERVER_ADDRESS } from '../../test/e2e/harness/network.ts';
import { Running, inNamespace, sleep } from '../../test/e2e/harness/processes.ts';
import { processCpuSeconds } from '../process-cpu.ts';
import { serverLatencies, type Latencies } from './server-latency.ts';
import { BOOT_FILES, NBP_IMAGE, STAGE2_FILE, makeTftpRoot, markerPattern } from '../../test/e2e/harness/second-stage.ts';

const args = parseArgs(process.argv.slice(2));
// 20: a boot's firmware part alone spreads over 150-300 ms (host speed; see the README), the servers' part over ~20.
const RUNS = Number(args.flags.get('runs') ?? 20);
const MAC = '52:54:00:be:0c:01';
const UUID = '8a3c1e52-7f0d-4b6a-9e21-525400be0c01';
const DNSMASQ_SCRIPT = 'dnsmasq-boot.ipxe';

type Contender = 'netboot' | 'dnsmasq';
const LABEL: Record<Contender, string> = { netboot: 'netboot', dnsmasq: 'dnsmasq (proxy + TFTP)' };

const cleanup = new Cleanup();
const dir = mkdtempSync(join(tmpdir(), 'netboot-bench-boot-'));
const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
cleanup.add(`remove ${dir}`, removeDir, removeDir);

/** CPU time (user + system, ms) the processes of this site have used so far; gone ones count 0. */
function siteCpuMs(site: NetbootSite): number {
  const pids = execFileSync('pgrep', ['-f', site.configPath], { encoding: 'utf8' }).trim().split('\n').map(Number);
  let ms = 0;
  for (const pid of pids) {
    try {
      ms += processCpuSeconds(pid) * 1000;
    } catch {
      // exited meanwhile
    }
  }
  return ms;
}

/**
 * Waits until netboot's processes are idle (at most 10 ms of CPU, one clock tick, over 3 s), as on
 * a site server that has been running a while. For about half a minute after a start, V8's
 * collector and compilers work through the start-up's allocations (8-10 ms of CPU per second in
 * each of the five processes); on two cores that time is taken from the guest under QEMU, which a
 * separate machine in a real lab would not feel. Gives up after 120 s and says so.
 */
async function settled(site: NetbootSite): Promise<number> {
  const t0 = Date.now();
  let last = siteCpuMs(site);
  while (Date.now() - t0 < 120000) {
    await sleep(3000);
    const now = siteCpuMs(site);
    if (now - last <= 10) return (Date.now() - t0) / 1000;
    last = now;
  }
  process.stderr.write('netboot did not settle within 120 s: measuring anyway\n');
  return (Date.now() - t0) / 1000;
}

async function send(site: NetbootSite, ...a: string[]): Promise<void> {
  const r = await site.cli(['sbs', 'send', ...a]);
  if (r.code !== 0) throw new Error(`netboot sbs send ${a.join(' ')}: ${r.stderr}`);
}

try {
  // netboot's LAN: standalone, configured by instructions as a task server would.
  const lanN = await Lan.create(cleanup);
  await startDhcpServer(lanN, join(dir, 'dhcp-netboot'), cleanup);
  const site = new NetbootSite(lanN, join(dir, 'netboot'), cleanup, { logLevel: 'info' });
  const { token } = makeTftpRoot(site.tftpRoot);
  site.start();
  await site.waitServing(60000);
  const payload = (name: string, value: unknown): string => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(value));
    return file;
  };
  await send(site, 'config', '--file', payload('config', { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES }));
  await send(site, 'images', '--file', payload('images', [NBP_IMAGE]));
  await send(site, 'client', '--mac', MAC, '--boot', NBP_IMAGE.id, '--no-once');
  await site.waitDecision(MAC, 'bios', true, (d) => d.offer !== undefined);

  // dnsmasq's LAN: the same files, plus the static script it offers to iPXE.
  const lanD = await Lan.create(cleanup);
  await startDhcpServer(lanD, join(dir, 'dhcp-dnsmasq'), cleanup);
  const dnsmasqRoot = join(dir, 'dnsmasq-tftp');
  cpSync(site.tftpRoot, dnsmasqRoot, { recursive: true });
  // Relative to the script, as netboot's scripts name their files: iPXE prints each path it fetches.
  writeFileSync(join(dnsmasqRoot, DNSMASQ_SCRIPT), ['#!ipxe', `echo dnsmasq: ${MAC} boots ${NBP_IMAGE.name}`, `chain ${STAGE2_FILE}`, ''].join('\n'));
  await startDnsmasqProxy(lanD, dnsmasqRoot, DNSMASQ_SCRIPT, join(dir, 'dnsmasq-proxy'), cleanup);

  const taps: Record<Contender, { lan: Lan; tap: string }> = {
    netboot: { lan: lanN, tap: await lanN.addTap() },
    dnsmasq: { lan: lanD, tap: await lanD.addTap() },
  };
  let n = 0;
  /** Wall-clock power-on of each measured boot, ms since the epoch (to split off the firmware's part). */
  const poweredOn: Record<Contender, number[]> = { netboot: [], dnsmasq: [] };
  const boot = async (who: Contender, measured = false): Promise<number> => {
    const { lan, tap } = taps[who];
    const guest: Running = startGuest({ name: `${who}-${++n}`, firmware: 'bios', mac: MAC, uuid: UUID, namespace: lan.lan, tap, dir: join(dir, 'guests', who) }, cleanup);
    if (measured) poweredOn[who].push(performance.timeOrigin + guest.startedAt);
    try {
      return (await guest.waitFor(markerPattern(token, MAC), 60000)).at;
    } finally {
      await guest.stop();
    }
  };

  const times: Record<Contender, number[]> = { netboot: [], dnsmasq: [] };
  await boot('netboot');
  await boot('dnsmasq');
  process.stderr.write(`netboot's processes idle after ${(await settled(site)).toFixed(0)} s more\n`);
  // Packet captures of the measured boots, for the servers' own response times.
  const captures = {} as Record<Contender, { file: string; proc: Running }>;
  for (const who of ['netboot', 'dnsmasq'] as const) {
    const file = join(dir, `${who}.pcap`);
    const [command, full] = inNamespace(taps[who].lan.lan, 'tcpdump', ['-i', 'br0', '--immediate-mode', '-U', '-w', file, 'ip and udp']);
    const proc = new Running(`tcpdump ${who}`, command, full, join(dir, `tcpdump-${who}.log`), cleanup);
    await proc.waitFor(/listening on br0/, 10000);
    captures[who] = { file, proc };
  }
  for (let i = 0; i < RUNS; i++) {
    for (const who of i % 2 === 0 ? (['netboot', 'dnsmasq'] as const) : (['dnsmasq', 'netboot'] as const)) {
      const ms = await boot(who, true);
      times[who].push(ms);
      process.stderr.write(`run ${i + 1} ${who}: ${(ms / 1000).toFixed(3)} s\n`);
    }
  }

  await sleep(500);
  const latency = {} as Record<Contender, Latencies>;
  for (const who of ['netboot', 'dnsmasq'] as const) {
    await captures[who].proc.stop();
    latency[who] = serverLatencies(captures[who].file, SERVER_ADDRESS, DHCP_ADDRESS);
  }

  const stats = (xs: number[]): { median: number; min: number; max: number } => {
    const s = [...xs].sort((a, b) => a - b);
    const mid = s.length >> 1;
    return { median: s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, min: s[0]!, max: s[s.length - 1]! };
  };
  const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  console.log(`\nBIOS guest (SeaBIOS + iPXE ROM, QEMU TCG), power-on to second-stage marker, ${RUNS} boots each, alternating:`);
  console.log(`${'server'.padEnd(22)}${'median'.padStart(10)}${'min'.padStart(10)}${'max'.padStart(10)}`);
  for (const who of ['netboot', 'dnsmasq'] as const) {
    const s = stats(times[who]);
    const label = LABEL[who];
    console.log(`${label.padEnd(22)}${sec(s.median).padStart(10)}${sec(s.min).padStart(10)}${sec(s.max).padStart(10)}`);
  }
  console.log(`\nServer response times from packet captures of the same boots (median / max, ms; the last column is`);
  console.log(`the ordinary DHCP server's, the same dnsmasq on both LANs):`);
  console.log(`${'server'.padEnd(22)}${'proxy offer'.padStart(16)}${'4011 reply'.padStart(16)}${'TFTP RRQ->1st'.padStart(16)}${'ACK0->DATA1'.padStart(14)}${'DHCP ACK (ctrl)'.padStart(18)}`);
  const ms = (xs: number[], digits = 1): string => (xs.length === 0 ? '-' : `${stats(xs).median.toFixed(digits)} / ${stats(xs).max.toFixed(digits)}`);
  for (const who of ['netboot', 'dnsmasq'] as const) {
    const l = latency[who];
    const label = LABEL[who];
    console.log(`${label.padEnd(22)}${ms(l.offer).padStart(16)}${ms(l.bootServer).padStart(16)}${ms(l.tftpFirst, 2).padStart(16)}${ms(l.tftpData1, 2).padStart(14)}${ms(l.dhcpAck).padStart(18)}`);
  }
  console.log(`\nEach boot's network phases from the same captures (median / max, ms): first DISCOVER -> DHCPREQUEST (about 1 s:`);
  console.log(`QEMU's e1000 holds received frames for 1 s after iPXE opens the NIC), then on to the first TFTP read request (the ACK,`);
  console.log(`dnsmasq's 4011 exchange, iPXE's console output), then both files:`);
  console.log(`${'server'.padEnd(22)}${'DISCOVER->REQ'.padStart(16)}${'-> 1st RRQ'.padStart(16)}${'TFTP'.padStart(16)}`);
  for (const who of ['netboot', 'dnsmasq'] as const) {
    const l = latency[who];
    const label = LABEL[who];
    console.log(`${label.padEnd(22)}${ms(l.choose, 0).padStart(16)}${ms(l.toTftp, 0).padStart(16)}${ms(l.tftp, 0).padStart(16)}`);
  }
  // Power-on -> first DISCOVER is firmware alone (SeaBIOS, the iPXE ROM, its 2 s Ctrl-B prompt):
  // no server has been asked anything yet. The rest is where the servers are.
  console.log(`\nEach boot split at its first DISCOVER (median / min / max, ms): firmware alone before it, the servers' part after it:`);
  console.log(`${'server'.padEnd(22)}${'power-on -> DISCOVER'.padStart(24)}${'DISCOVER -> marker'.padStart(24)}`);
  for (const who of ['netboot', 'dnsmasq'] as const) {
    const at = latency[who].discoverAt;
    if (at.length !== poweredOn[who].length) {
      console.log(`${who}: ${at.length} DISCOVER starts in the capture for ${poweredOn[who].length} boots: not split`);
      continue;
    }
    const firmware = at.map((t, i) => t - poweredOn[who][i]!);
    const rest = times[who].map((t, i) => t - firmware[i]!);
    const f = (xs: number[]): string => { const s = stats(xs); return `${s.median.toFixed(0)} / ${s.min.toFixed(0)} / ${s.max.toFixed(0)}`; };
    const label = LABEL[who];
    console.log(`${label.padEnd(22)}${f(firmware).padStart(24)}${f(rest).padStart(24)}`);
  }
  const verdict = stats(times.netboot).median <= stats(times.dnsmasq).median;
  console.log(`target netboot <= dnsmasq (median): ${verdict ? 'met' : 'NOT met'}`);
  process.exitCode = verdict ? 0 : 1;
} finally {
  const problems = await cleanup.run();
  if (problems.length > 0) console.error(`cleanup problems:\n${problems.join('\n')}`);
}
