// bench/preboot: power-on → LinuxPE's banner (network up) beside power-on → the Debian
// installer's first dialog, both booted through netboot in the same run.
//   node --import tsx bench/preboot/run.ts [--runs N]   (root: it makes network namespaces)
// One private LAN (test/e2e/harness): dnsmasq hands out addresses, netboot (`netboot run`) is the
// PXE server. LinuxPE is built from Debian's packages (downloaded here), then by the site itself
// (`netboot bootwiz build`), published and offered; Debian's `debian-installer-12-netboot-amd64`
// (text) kernel and initrd sit in the TFTP root as a `linux` image with console=ttyS0. Two BIOS
// machines (SeaBIOS + QEMU's e1000 iPXE ROM, TCG, 1 GiB: the installer's own minimum for its
// normal mode), one per image, boot alternately; each time is from QEMU's start to the marker on
// the serial console. Target: LinuxPE no slower than the installer; initrd ≤ 64 MiB.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from '../../cli/args.ts';
import { build, buildDir } from '../../bootwiz/build.ts';
import { INITRD_FILE, KERNEL_FILE, LINUXPE_X64 } from '../../bootwiz/recipe.ts';
import { E2eSite, plain } from '../../test/e2e/harness/e2e-site.ts';
import { poll } from '../../test/e2e/harness/netboot-site.ts';
import { Running, inNamespace } from '../../test/e2e/harness/processes.ts';
import { BOOT_FILES } from '../../test/e2e/harness/second-stage.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import type { Image } from '../../sbs/types.ts';

const args = parseArgs(process.argv.slice(2));
const RUNS = Number(args.flags.get('runs') ?? 3);
const DI_DIR = 'usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64';
const DI_IMAGE: Image = { id: 'debian-installer-12', name: 'Debian installer 12 (text)', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'd-i/linux', initrd: ['d-i/initrd.gz'], cmdline: 'console=ttyS0,115200n8' };

interface Contender {
  readonly label: string;
  readonly image: string;
  readonly mac: string;
  readonly marker: RegExp;
  kernelBytes: number;
  initrdBytes: number;
  readonly times: number[];
}

const contenders: Contender[] = [
  { label: 'netboot LinuxPE (power-on → banner, network up)', image: LINUXPE_X64.id, mac: '52:54:00:be:0b:01', marker: /==== netboot LinuxPE ====[\s\S]*?\n====\r?\n/, kernelBytes: 0, initrdBytes: 0, times: [] },
  { label: 'Debian installer 12 netboot (power-on → first dialog)', image: DI_IMAGE.id, mac: '52:54:00:be:0b:02', marker: /Select a language|Choose language/, kernelBytes: 0, initrdBytes: 0, times: [] },
];

const e2e = await E2eSite.start('bench-preboot', {
  config: { respond: 'all', unknown: { type: 'local' }, bootFiles: BOOT_FILES },
  clients: contenders.map((c) => ({ mac: c.mac, name: c.image, action: { type: 'boot', image: c.image, once: false } })),
  images: [DI_IMAGE],
  predefinedComputers: [],
});
try {
  // The installer's files, from Debian's archive through apt, into the TFTP root.
  const scratch = mkdtempSync(join(e2e.dir, 'd-i-'));
  execFileSync('apt-get', ['download', '-q', 'debian-installer-12-netboot-amd64'], { cwd: scratch, stdio: 'ignore' });
  const deb = execFileSync('sh', ['-c', 'ls *.deb'], { cwd: scratch, encoding: 'utf8' }).trim();
  execFileSync('sh', ['-c', `dpkg-deb --fsys-tarfile '${deb}' | tar -x -C . ./${DI_DIR}/linux ./${DI_DIR}/initrd.gz`], { cwd: scratch });
  mkdirSync(join(e2e.site.tftpRoot, 'd-i'), { recursive: true });
  for (const f of ['linux', 'initrd.gz']) copyFileSync(join(scratch, DI_DIR, f), join(e2e.site.tftpRoot, 'd-i', f));
  rmSync(scratch, { recursive: true, force: true });
  contenders[1]!.kernelBytes = statSync(join(e2e.site.tftpRoot, 'd-i', 'linux')).size;
  contenders[1]!.initrdBytes = statSync(join(e2e.site.tftpRoot, 'd-i', 'initrd.gz')).size;

  // LinuxPE: the apt download from this namespace, then the site's own build from the lock.
  await build({ dataDir: e2e.site.data, recipe: LINUXPE_X64 });
  const r = await e2e.site.cli(['bootwiz', 'build', LINUXPE_X64.id], 600_000);
  if (r.code !== 0) throw new Error(`netboot bootwiz build failed: ${r.stderr}`);
  contenders[0]!.kernelBytes = statSync(join(buildDir(e2e.site.data, LINUXPE_X64.id), KERNEL_FILE)).size;
  contenders[0]!.initrdBytes = statSync(join(buildDir(e2e.site.data, LINUXPE_X64.id), INITRD_FILE)).size;
  for (const c of contenders) {
    await poll(`${c.image} bootable`, 30_000, async () => {
      const x = await controlCall<{ chain: { cannotBoot: string | null; ends: string } | null }>(controlSocketPath(e2e.site.data, 'server'), 'GET', `/explain?mac=${c.mac}&arch=bios`).catch(() => null);
      return x?.chain !== null && x?.chain !== undefined && x.chain.cannotBoot === null && x.chain.ends.includes(c.image) ? true : undefined;
    });
  }

  let n = 0;
  for (let run = 0; run < RUNS; run++) {
    for (const c of run % 2 === 0 ? contenders : [...contenders].reverse()) {
      const tap = await e2e.lan.addTap();
      const gdir = join(e2e.dir, 'guests', `${++n}`);
      mkdirSync(gdir, { recursive: true });
      const sercon = join(gdir, 'sercon-port');
      writeFileSync(sercon, Buffer.from([0xf8, 0x03]));
      const [command, full] = inNamespace(e2e.lan.lan, 'qemu-system-x86_64', [
        '-accel', 'tcg', '-m', '1024', '-nodefaults', '-vga', 'none', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
        '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`, '-fw_cfg', `name=etc/sercon-port,file=${sercon}`, '-boot', 'n',
        '-device', `e1000,netdev=n0,mac=${c.mac}`,
      ]);
      const guest = new Running(`bench ${c.image} ${n}`, command, full, join(gdir, 'console.log'), e2e.cleanup);
      try {
        const { at } = await guest.waitFor(c.marker, 300_000);
        c.times.push(at);
        process.stderr.write(`${c.image}: ${(at / 1000).toFixed(1)} s\n`);
      } catch (err) {
        process.stderr.write(`${c.image}: ${(err as Error).message}\n${plain(guest.output).slice(-1500)}\n`);
      } finally {
        await guest.stop();
      }
    }
  }

  const s = (ms: number): string => (ms / 1000).toFixed(1);
  const mib = (b: number): string => (b / 1048576).toFixed(1);
  const median = (xs: number[]): number => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length === 0 ? NaN : v.length % 2 === 1 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  };
  console.log(`\nbench/preboot, ${RUNS} boot(s) each, BIOS (SeaBIOS + iPXE ROM), QEMU TCG, 1 GiB, through netboot (MTFTP)\n`);
  console.log('| contender | median s | min s | max s | kernel MiB | initrd MiB |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const c of contenders) {
    console.log(`| ${c.label} | ${s(median(c.times))} | ${s(Math.min(...c.times))} | ${s(Math.max(...c.times))} | ${mib(c.kernelBytes)} | ${mib(c.initrdBytes)} |`);
  }
} finally {
  await e2e.stop();
}
