// TFTP response time at the protocol level: read request -> the server's first packet (OACK),
// cold (one request after a second of idle, as in a boot) and warm (requests back to back), and
// in the lock-step download that follows, ACK -> next DATA, for netboot's mtftp and dnsmasq's TFTP
// server measured in the same run on loopback. The client asks as iPXE does (blksize 1432, tsize).
// netboot's mtftp runs as its own process (its real entry point), following an in-process PXE
// server's view, so `netboot/` paths are resolved as in a boot. dnsmasq listens on port 69 only,
// so everything runs in a network namespace of its own (made here, removed at the end).
//   node --import tsx bench/tftp/first-packet.ts [--cold 20] [--warm 200] [--idle-ms 1000] [--mtftp-repo DIR]
// Needs root (network namespace) and Debian's dnsmasq and ipxe.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, stringFlag } from '../../cli/args.ts';
import { encode, writeAck } from '../../protocols/tftp/tftp-codec.ts';
import { readCapture, startCapture, type UdpPacket } from './capture.ts';

const args = parseArgs(process.argv.slice(2));
const COLD = Number(stringFlag(args, 'cold') ?? 20);
const WARM = Number(stringFlag(args, 'warm') ?? 200);
const IDLE_MS = Number(stringFlag(args, 'idle-ms') ?? 1000);
/** Another checkout's mtftp against the same server and client (e.g. the code before a change). */
const MTFTP_REPO = resolve(stringFlag(args, 'mtftp-repo') ?? resolve(dirname(fileURLToPath(import.meta.url)), '../..'));
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

interface Fetch {
  /** The client's port (its TID), to find the fetch in the capture. */
  readonly port: number;
  /** RRQ -> first packet, ms, as the client saw it. */
  readonly first: number;
  /** ACK -> next DATA per block, ms. */
  readonly turns: number[];
  readonly bytes: number;
}

/** One download as iPXE asks for it, on a fresh client port (a new TID), timed from the client. */
async function fetch(port: number, file: string): Promise<Fetch> {
  const sock: Socket = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const ack = Buffer.alloc(4);
  const turns: number[] = [];
  let bytes = 0;
  let sentAt = 0;
  let first = -1;
  let expect = 1;
  let blockSize = 512;
  try {
    return await new Promise<Fetch>((resolveFetch, reject) => {
      const timer = setTimeout(() => reject(new Error(`${file}: no answer from :${port}`)), 5000);
      sock.on('message', (msg, rinfo) => {
        const at = now();
        const op = msg.readUInt16BE(0);
        if (first < 0) first = at - sentAt;
        else turns.push(at - sentAt);
        const reply = (block: number): void => {
          writeAck(ack, block);
          sentAt = now();
          sock.send(ack, rinfo.port, rinfo.address);
        };
        if (op === 6) {
          const opts = msg.subarray(2).toString('latin1').split('\0');
          const i = opts.findIndex((o) => o.toLowerCase() === 'blksize');
          if (i >= 0) blockSize = Number(opts[i + 1]);
          reply(0);
          return;
        }
        if (op === 3 && msg.readUInt16BE(2) === (expect & 0xffff)) {
          bytes += msg.length - 4;
          expect++;
          reply(msg.readUInt16BE(2));
          if (msg.length - 4 < blockSize) {
            clearTimeout(timer);
            resolveFetch({ port: sock.address().port, first, turns, bytes });
          }
          return;
        }
        if (op === 5) {
          clearTimeout(timer);
          reject(new Error(`${file}: ERROR ${msg.readUInt16BE(2)} ${msg.subarray(4).toString('latin1')}`));
        }
      });
      const rrq = encode({ op: 'RRQ', filename: file, mode: 'octet', options: [{ name: 'blksize', value: '1432' }, { name: 'tsize', value: '0' }] });
      sentAt = now();
      sock.send(rrq, port, '127.0.0.1');
    });
  } finally {
    sock.close();
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const pct = (xs: readonly number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;

async function inner(): Promise<void> {
  const { startSite, serving, snapshots } = await import('../../test/server/service-site.ts');
  const mac = '52:54:00:12:34:56';
  const s = await startSite(snapshots([{ mac, action: { type: 'boot', image: 'lnx' } }]), '[log]\nlevel = "info"\n');
  const children: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'netboot-first-packet-'));
  try {
    await serving(s);
    const root = s.site.config.paths.tftpRoot;
    copyFileSync('/usr/lib/ipxe/undionly.kpxe', join(root, 'undionly.kpxe'));
    mkdirSync(join(root, 'lnx'), { recursive: true });
    writeFileSync(join(root, 'lnx/vmlinuz'), Buffer.alloc(30_000, 7));
    writeFileSync(join(root, 'small.ipxe'), '#!ipxe\necho hello\nchain /stage2/second-stage.ipxe\n');
    const droot = join(dir, 'dnsmasq-root');
    cpSync(root, droot, { recursive: true });

    // The site's config without keys an older checkout would refuse (mtftp reads none of them).
    const mtftpConfig = join(dir, 'mtftp.toml');
    writeFileSync(mtftpConfig, readFileSync(s.site.configPath, 'utf8').split('\n').filter((l) => !/^io_path\s*=/.test(l)).join('\n'));
    // BENCH_MTFTP_NODE_FLAGS: node flags for mtftp, e.g. "--no-flush-bytecode".
    const flags = (process.env.BENCH_MTFTP_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
    const mtftp = spawn(process.execPath, [...flags, '--import', 'tsx', join(MTFTP_REPO, 'services/mtftp/main.ts'), '--config', mtftpConfig], { cwd: MTFTP_REPO, stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(mtftp);
    const dnsmasq = spawn('dnsmasq', ['--keep-in-foreground', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--enable-tftp', `--tftp-root=${droot}`, '--interface=lo', '--bind-interfaces', '--user=root', '--quiet-tftp', `--pid-file=${join(dir, 'dnsmasq.pid')}`], { stdio: 'ignore' });
    children.push(dnsmasq);
    const nport = s.site.config.mtftp.port;
    const dir0 = `netboot/${mac.replaceAll(':', '-')}`;
    // Until both answer (mtftp's view is followed within a few hundred ms of its start).
    for (let i = 0; ; i++) {
      try {
        await fetch(nport, `${dir0}/boot.ipxe`);
        await fetch(69, 'undionly.kpxe');
        break;
      } catch (err) {
        if (i > 100) throw err;
        await sleep(100);
      }
    }
    await sleep(1500);
    const asked0 = s.log.records.filter((r) => r.msg === 'tftp path resolved').length;
    const files: [string, number, string][] = [
      ['root file undionly.kpxe', nport, 'undionly.kpxe'],
      ['root file small.ipxe', nport, 'small.ipxe'],
      ['netboot/…/boot.ipxe', nport, `${dir0}/boot.ipxe`],
      ['netboot/…/image/lnx/…', nport, `${dir0}/image/lnx/lnx/vmlinuz`],
      ['dnsmasq undionly.kpxe', 69, 'undionly.kpxe'],
      ['dnsmasq small.ipxe', 69, 'small.ipxe'],
    ];
    const capture = await startCapture(join(dir, 'lo.pcap'));
    const cold = new Map<string, Fetch[]>(files.map(([l]) => [l, []]));
    const warm = new Map<string, Fetch[]>(files.map(([l]) => [l, []]));
    for (let i = 0; i < COLD; i++) {
      for (const [label, port, file] of files) {
        await sleep(IDLE_MS);
        cold.get(label)!.push(await fetch(port, file));
      }
    }
    for (const [label, port, file] of files) {
      for (let i = 0; i < WARM; i++) warm.get(label)!.push(await fetch(port, file));
    }
    const asked = s.log.records.filter((r) => r.msg === 'tftp path resolved').length - asked0;
    await capture.stop();
    const byClient = new Map<number, UdpPacket[]>();
    for (const p of readCapture(join(dir, 'lo.pcap'))) {
      for (const port of [p.sport, p.dport]) byClient.set(port, [...(byClient.get(port) ?? []), p]);
    }
    // From the capture: RRQ -> the server's first packet, and ACK 0 -> DATA 1, in ms.
    const wire = (x: Fetch): { first: number; data1: number } => {
      const ps = byClient.get(x.port) ?? [];
      const rrq = ps.find((p) => p.sport === x.port && p.op === 1);
      const reply = rrq && ps.find((p) => p.dport === x.port && p.t >= rrq.t);
      const ack0 = ps.find((p) => p.sport === x.port && p.op === 4 && p.block === 0);
      const data1 = ack0 && ps.find((p) => p.dport === x.port && p.op === 3 && p.block === 1 && p.t >= ack0.t);
      return { first: rrq && reply ? (reply.t - rrq.t) / 1000 : NaN, data1: ack0 && data1 ? (data1.t - ack0.t) / 1000 : NaN };
    };
    const f = (x: number): string => x.toFixed(3);
    const ok = (xs: number[]): number[] => xs.filter((x) => !Number.isNaN(x));
    console.log(`\nmtftp from ${MTFTP_REPO}`);
    console.log(`TFTP response times on loopback, ms, from a capture (packet timestamps: no client scheduling in them); the client`);
    console.log(`asks as iPXE does (blksize 1432, tsize); ${COLD} cold requests per file (${IDLE_MS} ms idle before each), then ${WARM} warm ones:`);
    console.log(`${'file'.padEnd(26)}${'RRQ->OACK cold'.padStart(16)}${'p90'.padStart(8)}${'warm'.padStart(8)}${'ACK0->DATA1 cold'.padStart(18)}${'warm'.padStart(8)}${'ACK->DATA warm (client)'.padStart(25)}`);
    for (const [label] of files) {
      const c = cold.get(label)!.map(wire);
      const w = warm.get(label)!.map(wire);
      const cf = ok(c.map((x) => x.first));
      const wt = warm.get(label)!.flatMap((x) => x.turns);
      console.log(
        `${label.padEnd(26)}${f(median(cf)).padStart(16)}${f(pct(cf, 0.9)).padStart(8)}${f(median(ok(w.map((x) => x.first)))).padStart(8)}${f(median(ok(c.map((x) => x.data1)))).padStart(18)}${f(median(ok(w.map((x) => x.data1)))).padStart(8)}${f(median(wt)).padStart(25)}`,
      );
    }
    console.log(`(netboot/ requests the PXE server was asked for instead of the followed view: ${asked})`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await sleep(300);
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.env.NETBOOT_FIRST_PACKET_INNER !== '1') {
  // Outer: a private namespace with loopback up, this script again inside it.
  const ns = `nb-first-${process.pid}`;
  const ip = (...a: string[]): void => {
    const r = spawnSync('ip', a, { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`ip ${a.join(' ')} failed`);
  };
  ip('netns', 'add', ns);
  try {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
      stdio: 'inherit',
      cwd: repo,
      env: { ...process.env, NETBOOT_FIRST_PACKET_INNER: '1' },
    });
    process.exitCode = r.status ?? 1;
  } finally {
    ip('netns', 'del', ns);
  }
} else {
  await inner();
}
