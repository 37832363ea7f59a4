// The load side of the DHCP storm: N distinct simulated PXE clients (BIOS firmware), each sending
// a broadcast DISCOVER to :67 and then a boot server request to SERVER:4011, like iPXE after a
// menu (from port 68, ciaddr set, option 43/71). `window` clients are in flight at once. Runs in
// the client network namespace (run.ts starts it); prints one JSON line of results.
import { createSocket } from 'node:dgram';
import { parseArgs, stringFlag } from '../../services/cli/args.ts';
import { decode, encode, FLAG_BROADCAST, BOOTREQUEST } from '../../services/server/dhcp-codec.ts';
import { DhcpOptions, encodeOption, MESSAGE_TYPE } from '../../services/server/dhcp-options.ts';

const args = parseArgs(process.argv.slice(2));
const server = stringFlag(args, 'server') ?? '10.77.0.1';
const self = stringFlag(args, 'self') ?? '10.77.0.2';
const clients = Number(stringFlag(args, 'clients') ?? 1000);
const windowSize = Number(stringFlag(args, 'window') ?? 32);
const timeoutMs = Number(stringFlag(args, 'timeout-ms') ?? 2000);
const xidBase = Number(stringFlag(args, 'xid-base') ?? 0x10000000);
// Idle time before each client (window 1): a lone request to a server that has been idle.
const gapMs = Number(stringFlag(args, 'gap-ms') ?? 0);
// Defaults are the real ones; a loopback run names the server's ports and a local port to use.
const dhcpAddress = stringFlag(args, 'dhcp-address') ?? '255.255.255.255';
const dhcpPort = Number(stringFlag(args, 'dhcp-port') ?? 67);
const proxyPort = Number(stringFlag(args, 'proxy-port') ?? 4011);
const clientPort = Number(stringFlag(args, 'client-port') ?? 68);

function mac(i: number): Buffer {
  return Buffer.from([0x02, 0x4e, 0x42, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff]);
}

function packet(i: number, xid: number, type: number, ciaddr: string): Buffer {
  const entries: [number, Buffer][] = [
    [53, encodeOption.u8(type)],
    [57, encodeOption.u16(1472)],
    [93, encodeOption.u16(0)],
    [94, Buffer.from([1, 2, 1])],
    [60, encodeOption.text('PXEClient:Arch:00000:UNDI:002001')],
    [97, Buffer.concat([Buffer.from([0]), Buffer.alloc(10), mac(i)])],
  ];
  if (type === MESSAGE_TYPE.REQUEST) entries.push([43, Buffer.from([71, 4, 0x80, 0x00, 0x00, 0x00, 255])]);
  return encode({
    op: BOOTREQUEST, htype: 1, hlen: 6, hops: 0, xid, secs: 0, flags: FLAG_BROADCAST, ciaddr, yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
    chaddr: Buffer.concat([mac(i), Buffer.alloc(10)]), sname: '', file: '', options: new DhcpOptions(entries),
  });
}

const socket = createSocket({ type: 'udp4', reuseAddr: true });
await new Promise<void>((resolve) => socket.bind(clientPort, clientPort === 68 ? '0.0.0.0' : self, () => resolve()));
socket.setBroadcast(true);
socket.setRecvBufferSize(4 * 1024 * 1024);

// Packets are built before the clock starts, and replies are matched by xid alone, so the client
// spends as little as possible per packet; every 50th reply is fully decoded and checked.
const discovers = Array.from({ length: clients }, (_, i) => packet(i, (xidBase + 2 * i) >>> 0, MESSAGE_TYPE.DISCOVER, '0.0.0.0'));
const requests = Array.from({ length: clients }, (_, i) => packet(i, (xidBase + 2 * i + 1) >>> 0, MESSAGE_TYPE.REQUEST, self));

const waiting = new Map<number, { sentAt: bigint; resolve: (ok: boolean) => void; expect: number }>();
const latenciesUs: number[] = [];
/** Each DISCOVER's latency, in order (with --gap-ms: each the first request after an idle gap). */
const discoverUs: number[] = [];
let replies = 0;
let wrong = 0;
socket.on('message', (msg: Buffer) => {
  if (msg.length < 240 || msg[0] !== 2) return;
  const xid = msg.readUInt32BE(4);
  const w = waiting.get(xid);
  if (w === undefined) return;
  waiting.delete(xid);
  const us = Number(process.hrtime.bigint() - w.sentAt) / 1000;
  latenciesUs.push(us);
  if (w.expect === MESSAGE_TYPE.OFFER && gapMs > 0) discoverUs.push(us);
  replies++;
  if (replies % 50 === 0) {
    try {
      const p = decode(msg);
      // An ACK must name a boot file (in `file` or option 67); an OFFER may carry a menu instead.
      if (p.options.messageType() !== w.expect || (w.expect === MESSAGE_TYPE.ACK && p.file === '' && !p.options.has(67))) wrong++;
    } catch {
      wrong++;
    }
  }
  w.resolve(true);
});

function exchange(bytes: Buffer, xid: number, to: string, port: number, expect: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      waiting.delete(xid);
      resolve(false);
    }, timeoutMs);
    waiting.set(xid, { sentAt: process.hrtime.bigint(), expect, resolve: (ok) => { clearTimeout(timer); resolve(ok); } });
    socket.send(bytes, port, to);
  });
}

let next = 0;
let lost = 0;
async function worker(): Promise<void> {
  while (next < clients) {
    const i = next++;
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
    const xid1 = (xidBase + 2 * i) >>> 0;
    if (!(await exchange(discovers[i]!, xid1, dhcpAddress, dhcpPort, MESSAGE_TYPE.OFFER))) {
      lost++;
      continue;
    }
    const xid2 = (xidBase + 2 * i + 1) >>> 0;
    if (!(await exchange(requests[i]!, xid2, server, proxyPort, MESSAGE_TYPE.ACK))) lost++;
  }
}

const started = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
await Promise.all(Array.from({ length: windowSize }, () => worker()));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const cpu = process.cpuUsage(cpu0);
socket.close();
latenciesUs.sort((a, b) => a - b);
const q = (p: number): number => latenciesUs.length === 0 ? NaN : latenciesUs[Math.min(latenciesUs.length - 1, Math.floor(p * latenciesUs.length))]!;
process.stdout.write(JSON.stringify({ clients, window: windowSize, replies, lost, wrong, seconds, repliesPerSec: replies / seconds, p50Ms: q(0.5) / 1000, p99Ms: q(0.99) / 1000, maxMs: q(1) / 1000, clientCpuUs: cpu.user + cpu.system, discoverMs: discoverUs.map((us) => us / 1000) }) + '\n');
