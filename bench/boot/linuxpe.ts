// bench/boot/linuxpe.ts: power-on → LinuxPE banner with the kernel and initrd over TFTP and over
// HTTP, in the same run.
//   node --import tsx bench/boot/linuxpe.ts [--runs N] [--efi | --efi-only] [--keep]   (root: it makes network namespaces)
// --keep leaves the temp folder (captures, consoles, logs) and prints its path.
// BootWiz builds linuxpe-x64 once (Debian's packages, kept in /var/cache/netboot-test/httpboot).
// Identical private LANs (network namespaces), each with dnsmasq handing out addresses and QEMU
// guests under TCG, serving the same kernel and initrd:
// - netboot, Boot HTTP on (the default): iPXE is offered its script's URL, so the kernel and
//   initrd come over HTTP;
// - netboot, `[http] enabled = false`: the same over netboot's TFTP;
// - dnsmasq in proxy mode with its own TFTP server (the reference of bench/boot/run.ts), a static
//   script naming the same files (BIOS only).
// SeaBIOS + iPXE ROM, and with --efi OVMF + iPXE ROM on the two netboot LANs. Boots alternate, one
// warm-up each first. Each time is from QEMU's start to the banner's last line; the file-transfer
// part is read from a packet capture of each LAN (bench/boot/pcap.ts): the kernel's and the
// initrd's request to the last packet of each transfer.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { build } from '../../bootwiz/build.ts';
import { INITRD_FILE, KERNEL_FILE, LINUXPE_X64 } from '../../bootwiz/recipe.ts';
import { parseArgs } from '../../cli/args.ts';
import type { Image } from '../../sbs/types.ts';
import { Cleanup } from '../../test/e2e/harness/cleanup.ts';
import { startDhcpServer, startDnsmasqProxy } from '../../test/e2e/harness/dnsmasq.ts';
import { startGuest, type Firmware } from '../../test/e2e/harness/guest.ts';
import { NetbootSite } from '../../test/e2e/harness/netboot-site.ts';
import { Lan, SERVER_ADDRESS } from '../../test/e2e/harness/network.ts';
import { Running, inNamespace, sleep } from '../../test/e2e/harness/processes.ts';
import { BOOT_FILES, IPXE_BUILDS } from '../../test/e2e/harness/second-stage.ts';
import { keepBootwizCache, seedBootwizCache } from '../../test/httpboot/debian-files.ts';
import { readPackets, transfers, type Transfer } from './pcap.ts';

const args = parseArgs(process.argv.slice(2), ['efi', 'efi-only', 'keep']);
const RUNS = Number(args.flags.get('runs') ?? 3);
const EFI_ONLY = args.flags.has('efi-only');
const EFI = EFI_ONLY || args.flags.has('efi');
const MAC = '52:54:00:be:0c:21';
const UUID = '8a3c1e52-7f0d-4b6a-9e21-525400be0c21';
const HTTP_PORT = 8490;
const BANNER = /==== netboot LinuxPE ====[\s\S]*?\n====\r?\n/;
const DIR = 'linuxpe';
const IMAGE: Image = {
  id: 'linuxpe-bench', name: 'LinuxPE x64', arch: ['bios', 'efi-x64'], type: 'linux',
  kernel: `${DIR}/${KERNEL_FILE}`, initrd: [`${DIR}/${INITRD_FILE}`], cmdline: LINUXPE_X64.cmdline,
};
const DNSMASQ_SCRIPT = 'dnsmasq-linuxpe.ipxe';

type Server = 'netboot-http' | 'netboot-tftp' | 'dnsmasq';
interface Contender { readonly name: string; readonly server: Server; readonly firmware: Firmware }
const LABEL: Record<Server, string> = { 'netboot-http': 'netboot, Boot HTTP', 'netboot-tftp': 'netboot, TFTP', dnsmasq: 'dnsmasq proxy + TFTP' };

const cleanup = new Cleanup();
const dir = mkdtempSync(join(tmpdir(), 'netboot-bench-linuxpe-'));
const removeDir = (): void => {
  if (args.flags.has('keep')) process.stderr.write(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
};
cleanup.add(`remove ${dir}`, removeDir, removeDir);

async function send(site: NetbootSite, ...a: string[]): Promise<void> {
  const r = await site.cli(['sbs', 'send', ...a]);
  if (r.code !== 0) throw new Error(`netboot sbs send ${a.join(' ')}: ${r.stderr}`);
}

const stats = (xs: readonly number[]): { median: number; min: number; max: number } => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, min: s[0]!, max: s[s.length - 1]! };
};

try {
  // 1. LinuxPE, as BootWiz builds it.
  const data = join(dir, 'bootwiz-data');
  seedBootwizCache(data);
  const built = await build({ dataDir: data, recipe: LINUXPE_X64 });
  keepBootwizCache(data);
  const place = (root: string): void => {
    mkdirSync(join(root, DIR), { recursive: true });
    for (const f of [KERNEL_FILE, INITRD_FILE]) copyFileSync(join(built.dir, f), join(root, DIR, f));
  };
  process.stderr.write(`LinuxPE built: kernel ${built.info.kernel.bytes} B, initrd ${built.info.initrd.bytes} B\n`);

  // 2. The LANs.
  const lans = {} as Record<Server, { lan: Lan; tap: () => Promise<string> }>;
  const taps = new Map<string, string>();
  const payload = (name: string, value: unknown): string => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(value));
    return file;
  };
  for (const server of ['netboot-http', 'netboot-tftp'] as const) {
    const lan = await Lan.create(cleanup);
    await startDhcpServer(lan, join(dir, `dhcp-${server}`), cleanup);
    const site = new NetbootSite(lan, join(dir, server), cleanup, {
      logLevel: 'info',
      serverToml: `[server]\naddress = "${SERVER_ADDRESS}"\n\n[http]\nenabled = ${server === 'netboot-http'}\nport = ${HTTP_PORT}\n`,
    });
    for (const [arch, file] of Object.entries(BOOT_FILES)) copyFileSync(IPXE_BUILDS[arch as keyof typeof IPXE_BUILDS], join(site.tftpRoot, file!));
    place(site.tftpRoot);
    site.start();
    await site.waitServing(60_000);
    await send(site, 'config', '--file', payload(`config-${server}`, { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES }));
    await send(site, 'images', '--file', payload(`images-${server}`, [IMAGE]));
    await send(site, 'client', '--mac', MAC, '--boot', IMAGE.id, '--no-once');
    await site.waitDecision(MAC, 'bios', true, (d) => d.offer !== undefined);
    lans[server] = { lan, tap: () => lan.addTap() };
  }
  {
    const lan = await Lan.create(cleanup);
    await startDhcpServer(lan, join(dir, 'dhcp-dnsmasq'), cleanup);
    const root = join(dir, 'dnsmasq-tftp');
    mkdirSync(root, { recursive: true });
    for (const [arch, file] of Object.entries(BOOT_FILES)) copyFileSync(IPXE_BUILDS[arch as keyof typeof IPXE_BUILDS], join(root, file!));
    place(root);
    // The settings netboot's scripts add (bootwiz/README.md), so the banner reads the same.
    writeFileSync(join(root, DNSMASQ_SCRIPT), [
      '#!ipxe',
      `echo dnsmasq: \${net0/mac} boots ${IMAGE.name}`,
      `kernel ${IMAGE.kernel} ${IMAGE.cmdline} netboot.server=\${proxydhcp/next-server} netboot.next-server=\${next-server} BOOTIF=01-\${mac:hexhyp}`,
      `initrd ${IMAGE.initrd![0]}`,
      'boot',
      '',
    ].join('\n'));
    await startDnsmasqProxy(lan, root, DNSMASQ_SCRIPT, join(dir, 'dnsmasq-proxy'), cleanup);
    lans.dnsmasq = { lan, tap: () => lan.addTap() };
  }

  const contenders: Contender[] = [
    ...(EFI_ONLY ? [] : [
      { name: 'bios netboot-http', server: 'netboot-http', firmware: 'bios' },
      { name: 'bios netboot-tftp', server: 'netboot-tftp', firmware: 'bios' },
      { name: 'bios dnsmasq', server: 'dnsmasq', firmware: 'bios' },
    ] as Contender[]),
    ...(EFI ? [
      { name: 'efi netboot-http', server: 'netboot-http', firmware: 'efi-ipxe' },
      { name: 'efi netboot-tftp', server: 'netboot-tftp', firmware: 'efi-ipxe' },
    ] as Contender[] : []),
  ];

  // 3. Captures of each LAN for the whole run.
  const captures = {} as Record<Server, { file: string; proc: Running }>;
  for (const server of Object.keys(lans) as Server[]) {
    const file = join(dir, `${server}.pcap`);
    const [command, full] = inNamespace(lans[server].lan.lan, 'tcpdump', ['-i', 'br0', '--immediate-mode', '-U', '-s', '256', '-w', file, `host ${SERVER_ADDRESS} and (udp or tcp port ${HTTP_PORT})`]);
    const proc = new Running(`tcpdump ${server}`, command, full, join(dir, `tcpdump-${server}.log`), cleanup);
    await proc.waitFor(/listening on br0/, 10_000);
    captures[server] = { file, proc };
  }

  let n = 0;
  interface Boot { readonly c: Contender; readonly from: number; readonly to: number; readonly ms: number; readonly measured: boolean }
  const boots: Boot[] = [];
  const boot = async (c: Contender, measured: boolean): Promise<void> => {
    const key = `${c.server}/${c.firmware}`;
    if (!taps.has(key)) taps.set(key, await lans[c.server].tap());
    const guest = startGuest({ name: `${c.name.replace(/ /g, '-')}-${++n}`, firmware: c.firmware, mac: MAC, uuid: UUID, namespace: lans[c.server].lan.lan, tap: taps.get(key)!, dir: join(dir, 'guests') }, cleanup);
    const from = performance.timeOrigin + guest.startedAt;
    try {
      const { at } = await guest.waitFor(BANNER, 240_000);
      boots.push({ c, from, to: from + at, ms: at, measured });
      if (measured) process.stderr.write(`${c.name}: ${(at / 1000).toFixed(2)} s\n`);
    } finally {
      await guest.stop();
    }
  };
  for (const c of contenders) await boot(c, false);
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 === 0 ? contenders : [...contenders].reverse();
    for (const c of order) await boot(c, true);
  }
  await sleep(500); // not an ordering: lets tcpdump write the last packets
  const seen = {} as Record<Server, Transfer[]>;
  for (const server of Object.keys(lans) as Server[]) {
    await captures[server].proc.stop();
    seen[server] = transfers(readPackets(captures[server].file), SERVER_ADDRESS, HTTP_PORT);
  }

  // 4. The table.
  const fileOf = (t: Transfer, name: string): boolean => t.path.endsWith(`/${DIR}/${name}`) || t.path === `${DIR}/${name}`;
  const ms = (x: { median: number; min: number; max: number }, digits = 0): string => `${x.median.toFixed(digits)} (${x.min.toFixed(digits)}-${x.max.toFixed(digits)})`;
  console.log(`\nLinuxPE (kernel ${(built.info.kernel.bytes / 2 ** 20).toFixed(1)} MiB, initrd ${(built.info.initrd.bytes / 2 ** 20).toFixed(1)} MiB), QEMU TCG, ${RUNS} boots each after a warm-up, alternating.`);
  console.log('Medians (min-max); transfer = request -> last packet of that file, from the capture; MB/s of the initrd.\n');
  console.log('| firmware | server | power-on → banner (s) | kernel transfer (ms) | initrd transfer (ms) | initrd MB/s | protocol seen |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  const medians: Record<string, { boot: number; kernel: number; initrd: number }> = {};
  for (const c of contenders) {
    const mine = boots.filter((b) => b.measured && b.c === c);
    const within = (t: Transfer, b: Boot): boolean => t.start >= b.from && t.start <= b.to;
    const kernel: number[] = [];
    const initrd: number[] = [];
    const protocols = new Set<string>();
    for (const b of mine) {
      const k = seen[c.server].filter((t) => within(t, b) && fileOf(t, KERNEL_FILE));
      const r = seen[c.server].filter((t) => within(t, b) && fileOf(t, INITRD_FILE));
      if (k.length === 0 || r.length === 0) throw new Error(`${c.name}: a boot without its kernel or initrd in the capture`);
      kernel.push(k[k.length - 1]!.end - k[k.length - 1]!.start);
      initrd.push(r[r.length - 1]!.end - r[r.length - 1]!.start);
      for (const t of [...k, ...r]) protocols.add(t.protocol.toUpperCase());
    }
    const bootS = stats(mine.map((b) => b.ms / 1000));
    const ir = stats(initrd);
    medians[c.name] = { boot: bootS.median, kernel: stats(kernel).median, initrd: ir.median };
    console.log(`| ${c.firmware === 'bios' ? 'SeaBIOS + iPXE' : 'OVMF + iPXE'} | ${LABEL[c.server]} | ${ms(bootS, 2)} | ${ms(stats(kernel))} | ${ms(ir)} | ${(built.info.initrd.bytes / 1e6 / (ir.median / 1000)).toFixed(1)} | ${[...protocols].join(', ')} |`);
  }
  console.log('');
  for (const fw of [...(EFI_ONLY ? [] : ['bios']), ...(EFI ? ['efi'] : [])]) {
    const h = medians[`${fw} netboot-http`]!;
    const t = medians[`${fw} netboot-tftp`]!;
    console.log(`${fw}: HTTP vs TFTP (netboot): initrd ${(t.initrd / h.initrd).toFixed(1)}x faster, kernel+initrd ${((t.initrd + t.kernel) / (h.initrd + h.kernel)).toFixed(1)}x, power-on → banner ${(t.boot - h.boot).toFixed(2)} s sooner`);
  }
  const fw = EFI_ONLY ? 'efi' : 'bios';
  const target = medians[`${fw} netboot-tftp`]!.initrd / medians[`${fw} netboot-http`]!.initrd >= 3;
  console.log(`target HTTP >= 3x faster for the initrd transfer (${fw}): ${target ? 'met' : 'NOT met'}`);
  process.exitCode = target ? 0 : 1;
} finally {
  const problems = await cleanup.run();
  if (problems.length > 0) console.error(`cleanup problems:\n${problems.join('\n')}`);
}
