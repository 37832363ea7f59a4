// The native path for the DHCP sockets (67, 4011): sockets owned by our addon (native/udp-batch),
// polled on Node's own libuv loop. Why: node:dgram costs, per datagram, a libuv callback, a 64 KiB
// allocation cut down to a Buffer, an rinfo object, an event emit and a send request per reply;
// even a Node responder that decodes nothing answered fewer requests per second than dnsmasq
// (bench/dhcp-storm, node-floor). Here one recvmmsg takes every queued datagram, JS is called once
// for all of them, and the replies made meanwhile leave with one sendmmsg per socket.
// Absent addon or not Linux: node:dgram (dgram-socket.ts), same behaviour.
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { constants } from 'node:os';
import type { IoPath } from '../../platform/runtime/config.ts';
import { errorMessage } from '../../platform/runtime/errors.ts';
import { nativeAddonFile } from '../../platform/runtime/native-addon.ts';
import type { DatagramEvents, DhcpSocket, Peer } from './dhcp-socket.ts';

interface UdpBatchHandle {
  flush(start: number, end: number): number;
  lastError(): number;
  wantWritable(): void;
  port(): number;
  close(): void;
}

interface UdpBatchAddon {
  UdpBatch: new (
    address: string,
    port: number,
    reuseAddr: boolean,
    rx: Buffer,
    slotBytes: number,
    rxDesc: Uint32Array,
    tx: Buffer,
    txDesc: Uint32Array,
    onBatch: (count: number) => void,
    onError: (errno: number) => void,
    onWritable: () => void,
  ) => UdpBatchHandle;
  errorText(errno: number): string;
  readonly RX_WORDS: number;
  readonly TX_WORDS: number;
}

/** Datagrams taken per recvmmsg (and so per JS call). */
export const BATCH_SLOTS = 64;
/**
 * The largest datagram taken whole. DHCP requests fit an Ethernet frame (576 bytes unless option 57
 * says more); a longer one arrives cut off and is dropped with its length logged.
 */
export const SLOT_BYTES = 4096;
/** Replies queued per socket before a flush: a batch's worth, and room for one per segment. */
const TX_SLOTS = 256;
const TX_BYTES = 256 * 1024;

export type BatchSupport = { readonly ok: true; readonly addon: UdpBatchAddon } | { readonly ok: false; readonly reason: string };

/** Loads the addon (the composition root does, once); never throws. */
export function loadUdpBatch(): BatchSupport {
  if (process.platform !== 'linux') return { ok: false, reason: `the native DHCP sockets are Linux-only (platform ${process.platform})` };
  try {
    const addon = createRequire(import.meta.url)(nativeAddonFile('udp-batch', 'udp_batch.node')) as UdpBatchAddon;
    if (addon.RX_WORDS !== RX_WORDS || addon.TX_WORDS !== TX_WORDS) return { ok: false, reason: 'native/udp-batch is a build of another version (descriptor layout differs): rebuild it (npm ci)' };
    return { ok: true, addon };
  } catch (err) {
    return { ok: false, reason: `native/udp-batch not built (${errorMessage(err).split('\n')[0]})` };
  }
}

const RX_WORDS = 3;
const TX_WORDS = 4;

export interface IoPathChoice {
  readonly kind: 'native' | 'dgram';
  /** Why this path, for the start-up log. */
  readonly reason: string;
}

/** `auto` takes the addon when it is there and says why not otherwise; `native` without it is an error. */
export function chooseIoPath(wanted: IoPath, support: BatchSupport): IoPathChoice {
  if (wanted === 'dgram') return { kind: 'dgram', reason: 'configured' };
  if (support.ok) return { kind: 'native', reason: wanted === 'native' ? 'configured' : 'native addon built' };
  if (wanted === 'auto') return { kind: 'dgram', reason: support.reason };
  throw new Error(`[server] io_path = "native": ${support.reason}`);
}

/**
 * The sockets of one server. They share one receive area: a batch is handled synchronously, each
 * datagram copied out into a Buffer of its own (decoded packets share memory with their Buffer,
 * and some of them are kept: delayed replies, `netboot explain`'s last request). Replies made
 * during a batch, on any of the sockets, are queued and flushed when the batch is done.
 */
export class BatchSockets {
  private readonly rx = Buffer.allocUnsafe(BATCH_SLOTS * SLOT_BYTES);
  private readonly rxDesc = new Uint32Array(BATCH_SLOTS * RX_WORDS);
  private batching = false;
  private readonly pending: BatchSocket[] = [];
  // Most datagrams on a port come from few sources (0.0.0.0:68, a relay): one Peer for a run of them.
  private lastAddress = -1;
  private lastPort = -1;
  private lastPeer: Peer = { address: '0.0.0.0', port: 0 };
  /** Batches (one JS call each) and the datagrams they held, since the start: the batching at work. */
  readonly stats = { batches: 0, datagrams: 0, largest: 0 };

  constructor(private readonly addon: UdpBatchAddon) {}

  /** Binds a socket (SO_BROADCAST on; SO_REUSEADDR when asked); throws as bind(2) fails, e.g. EADDRINUSE. */
  open(address: string, port: number, reuseAddr: boolean, events: DatagramEvents): DhcpSocket {
    return new BatchSocket(this, this.addon, address, port, reuseAddr, events);
  }

  /** @internal A replies' flush at the end of the batch, or now when no batch is running. */
  queue(socket: BatchSocket): boolean {
    if (!this.batching) return false;
    if (!socket.queued) {
      socket.queued = true;
      this.pending.push(socket);
    }
    return true;
  }

  /** @internal Called by a socket with the datagrams C has just received into the shared area. */
  receive(count: number, events: DatagramEvents): void {
    const d = this.rxDesc;
    const stats = this.stats;
    stats.batches++;
    stats.datagrams += count;
    if (count > stats.largest) stats.largest = count;
    // A lone datagram's replies leave at once, before the handler goes on to its bookkeeping.
    this.batching = count > 1;
    // One clock reading per batch: every datagram in it was taken by the same recvmmsg.
    const receivedAt = performance.now();
    try {
      for (let i = 0; i < count; i++) {
        const length = d[RX_WORDS * i]!;
        const from = this.peer(d[RX_WORDS * i + 1]!, d[RX_WORDS * i + 2]!);
        if (length > SLOT_BYTES) {
          events.oversize(length, from);
          continue;
        }
        const start = i * SLOT_BYTES;
        const message = Buffer.allocUnsafe(length);
        this.rx.copy(message, 0, start, start + length);
        events.datagram(message, from, receivedAt);
      }
    } finally {
      this.batching = false;
      const sockets = this.pending.splice(0);
      for (const s of sockets) {
        s.queued = false;
        s.flush();
      }
    }
    events.batchEnd();
  }

  get receiveArea(): { readonly rx: Buffer; readonly rxDesc: Uint32Array } {
    return { rx: this.rx, rxDesc: this.rxDesc };
  }

  private peer(address: number, port: number): Peer {
    if (address !== this.lastAddress || port !== this.lastPort) {
      this.lastAddress = address;
      this.lastPort = port;
      this.lastPeer = { address: ipv4Text(address), port };
    }
    return this.lastPeer;
  }
}

class BatchSocket implements DhcpSocket {
  readonly port: number;
  /** @internal Waits in BatchSockets' pending list. */
  queued = false;
  private readonly handle: UdpBatchHandle;
  private readonly tx = Buffer.allocUnsafe(TX_BYTES);
  private readonly txDesc = new Uint32Array(TX_SLOTS * TX_WORDS);
  /** Queued replies: [head, count) not sent yet, `bytes` of `tx` in use. */
  private head = 0;
  private count = 0;
  private bytes = 0;
  private waiting = false;
  private closed = false;
  private lastTo = '';
  private lastToValue = 0;

  constructor(private readonly group: BatchSockets, private readonly addon: UdpBatchAddon, address: string, port: number, reuseAddr: boolean, private readonly events: DatagramEvents) {
    const { rx, rxDesc } = group.receiveArea;
    try {
      this.handle = new addon.UdpBatch(
        address, port, reuseAddr, rx, SLOT_BYTES, rxDesc, this.tx, this.txDesc,
        (count) => group.receive(count, events),
        (errno) => events.error(`${codeOf(errno)} (${addon.errorText(errno)})`),
        () => {
          this.waiting = false;
          this.flush();
        },
      );
    } catch (err) {
      // Like node:dgram's: the code, and where.
      const code = (err as { code?: string }).code ?? 'ESOCKET';
      throw Object.assign(new Error(`bind ${code} ${address}:${port}: ${errorMessage(err)}`), { code });
    }
    this.port = this.handle.port();
  }

  send(message: Buffer, to: Peer): void {
    if (this.closed) return;
    const length = message.length;
    if (this.count === TX_SLOTS || this.bytes + length > TX_BYTES) {
      this.flush();
      if (this.count === TX_SLOTS || this.bytes + length > TX_BYTES) return this.events.error(`ENOBUFS (replies queued faster than the kernel takes them: one to ${to.address}:${to.port} dropped)`);
    }
    if (to.address !== this.lastTo) {
      const value = parseIpv4(to.address);
      if (value < 0) return this.events.error(`EINVAL (not an IPv4 address: ${to.address})`);
      this.lastTo = to.address;
      this.lastToValue = value;
    }
    const k = TX_WORDS * this.count++;
    this.txDesc[k] = this.bytes;
    this.txDesc[k + 1] = length;
    this.txDesc[k + 2] = this.lastToValue;
    this.txDesc[k + 3] = to.port;
    message.copy(this.tx, this.bytes);
    this.bytes += length;
    if (!this.group.queue(this)) this.flush();
  }

  /** @internal Sends what is queued; on a full kernel buffer, the rest when the socket is writable. */
  flush(): void {
    if (this.closed || this.waiting) return;
    while (this.head < this.count) {
      const r = this.handle.flush(this.head, this.count);
      if (r >= 0) {
        this.head = r;
        if (r < this.count) {
          this.waiting = true;
          this.handle.wantWritable();
          return;
        }
      } else {
        const k = -r - 1;
        const errno = this.handle.lastError();
        const to = `${ipv4Text(this.txDesc[TX_WORDS * k + 2]!)}:${this.txDesc[TX_WORDS * k + 3]!}`;
        this.events.error(`send ${codeOf(errno)} ${to} (${this.addon.errorText(errno)})`);
        this.head = k + 1;
      }
    }
    this.head = this.count = this.bytes = 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handle.close();
  }
}

/** A dotted quad as a 32-bit number, or -1. Destinations here are always dotted quads. */
function parseIpv4(s: string): number {
  let value = 0;
  let part = -1;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (part < 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = -1;
      dots++;
    } else if (c >= 48 && c <= 57) {
      part = part < 0 ? c - 48 : part * 10 + c - 48;
      if (part > 255) return -1;
    } else {
      return -1;
    }
  }
  return dots === 3 && part >= 0 ? value * 256 + part : -1;
}

function ipv4Text(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));

function codeOf(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}
