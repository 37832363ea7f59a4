// The load side of the DHCP storm: N distinct simulated PXE clients (BIOS firmware), each sending
// a broadcast DISCOVER to :67 and then a boot server request to SERVER:4011, like iPXE after a
// menu (from port 68, ciaddr set, option 43/71). `window` clients are in flight at once. Runs in
// the client network namespace (run.ts starts it); prints one JSON line of results.
import { createSocket, type SocketOptions } from 'node:dgram';
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

// Destinations are addresses: sent at once, without dns.lookup's extra tick (as the server does).
const lookup = ((address: string, _family: unknown, callback: (err: Error | null, address: string, family: number) => void): void => callback(null, address, 4)) as unknown as SocketOptions['lookup'];
const socket = createSocket({ type: 'udp4', reuseAddr: true, lookup });
await new Promise<void>((resolve) => socket.bind(clientPort, clientPort === 68 ? '0.0.0.0' : self, () => resolve()));
socket.setBroadcast(true);
socket.setRecvBufferSize(4 * 1024 * 1024);

// Packets are built before the clock starts, and replies are matched by xid alone, so the client
// spends as little as possible per packet; every 50th reply is fully decoded and checked.
const discovers = Array.from({ length: clients }, (_, i) => packet(i, (xidBase + 2 * i) >>> 0, MESSAGE_TYPE.DISCOVER, '0.0.0.0'));
const requests = Array.from({ length: clients }, (_, i) => packet(i, (xidBase + 2 * i + 1) >>> 0, MESSAGE_TYPE.REQUEST, self));

// The client must cost less per reply than the servers it measures, or it measures itself: no
// promise, closure or timer per exchange. Slot k of the window runs one client at a time; xid
// (xidBase + 2i for the DISCOVER, + 1 for the REQUEST) indexes the arrays directly; one sweep
// every 50 ms finds exchanges that timed out.
const sentAt = new Float64Array(2 * clients).fill(-1);
const latenciesUs = new Float64Array(2 * clients);
/** Each DISCOVER's latency, in order (with --gap-ms: each the first request after an idle gap). */
const discoverUs: number[] = [];
let replies = 0;
let wrong = 0;
let lost = 0;
let next = 0;
let active = 0;
let finish: () => void = () => {};

function sendDiscover(i: number): void {
  sentAt[2 * i] = performance.now();
  socket.send(discovers[i]!, dhcpPort, dhcpAddress);
}

function sendRequest(i: number): void {
  sentAt[2 * i + 1] = performance.now();
  socket.send(requests[i]!, proxyPort, server);
}

/** Starts the next client on a free slot, or ends the run when none is left and none is in flight. */
function startNext(): void {
  if (next < clients) {
    const i = next++;
    if (gapMs > 0) setTimeout(sendDiscover, gapMs, i);
    else sendDiscover(i);
    return;
  }
  if (--active === 0) finish();
}

socket.on('message', (msg: Buffer) => {
  if (msg.length < 240 || msg[0] !== 2) return;
  const k = (msg.readUInt32BE(4) - xidBase) >>> 0;
  if (k >= 2 * clients || sentAt[k]! < 0) return;
  const us = (performance.now() - sentAt[k]!) * 1000;
  sentAt[k] = -1;
  latenciesUs[replies++] = us;
  const expect = k % 2 === 0 ? MESSAGE_TYPE.OFFER : MESSAGE_TYPE.ACK;
  if (expect === MESSAGE_TYPE.OFFER && gapMs > 0) discoverUs.push(us);
  if (replies % 50 === 0) {
    try {
      const p = decode(msg);
      // An ACK must name a boot file (in `file` or option 67); an OFFER may carry a menu instead.
      if (p.options.messageType() !== expect || (expect === MESSAGE_TYPE.ACK && p.file === '' && !p.options.has(67))) wrong++;
    } catch {
      wrong++;
    }
  }
  if (expect === MESSAGE_TYPE.OFFER) sendRequest(k >> 1);
  else startNext();
});

const sweep = setInterval(() => {
  const now = performance.now();
  for (let k = 0; k < 2 * clients; k++) {
    if (sentAt[k]! >= 0 && now - sentAt[k]! > timeoutMs) {
      sentAt[k] = -1;
      lost++;
      startNext();
    }
  }
}, 50);

const started = performance.now();
const cpu0 = process.cpuUsage();
await new Promise<void>((resolve) => {
  finish = resolve;
  active = Math.min(windowSize, clients);
  for (let s = 0; s < active; s++) startNext();
});
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpu0);
clearInterval(sweep);
socket.close();
const sorted = latenciesUs.subarray(0, replies).sort();
const q = (p: number): number => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
process.stdout.write(JSON.stringify({ clients, window: windowSize, replies, lost, wrong, seconds, repliesPerSec: replies / seconds, p50Ms: q(0.5) / 1000, p99Ms: q(0.99) / 1000, maxMs: q(1) / 1000, clientCpuUs: cpu.user + cpu.system, discoverMs: discoverUs.map((us) => us / 1000) }) + '\n');
