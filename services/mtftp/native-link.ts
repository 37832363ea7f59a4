// The native send path: transfer sockets owned by our addon (native/udp-link), polled on Node's
// own libuv loop. Why the addon owns the socket rather than borrowing node:dgram's fd: libuv
// would keep reading that fd itself, so every ACK would still pay node:dgram's receive path (a
// 64 KiB allocation, an rinfo object and an event emit per datagram, measured as most of the
// server's time at window 1); owning the socket lets one scratch buffer serve every receive and a
// whole window go out in one system call. Absent addon or kernel support: the pure-JS DgramLink.
import { createRequire } from 'node:module';
import type { SendPath } from '../../platform/runtime/config.ts';
import { errorMessage } from '../../platform/runtime/errors.ts';
import { nativeAddonFile } from '../../platform/runtime/native-addon.ts';
import type { BlockRing, CachedReader } from './block-ring.ts';
import type { LinkEvents, Peer, RequestHandler, RequestSocket, TransferLink } from './transfer-link.ts';
import type { TurnsTaken, TurnTaker } from './turn-chain.ts';

interface UdpLinkHandle {
  send(packet: Buffer): number;
  sendRun(buf: Buffer, offset: number, stride: number, count: number, finalLength: number): number;
  wantWritable(): void;
  setRunBuffer(buf: Buffer): void;
  arm(expects: Buffer, width: number, runs: Uint32Array, steps: number, stride: number): void;
  takeProgress(): number;
  disarm(): number;
  close(): void;
  info(): { port: number; sendBufferSize: number; gso: boolean };
  setSendBufferSize(bytes: number): void;
}

interface UdpLinkAddon {
  UdpLink: new (
    bind: string,
    peerAddress: string,
    peerPort: number,
    rx: Buffer,
    gso: boolean,
    onDatagram: (length: number, steps: number, lastSent: number) => void,
    onError: (message: string) => void,
    onWritable: () => void,
  ) => UdpLinkHandle;
  UdpListener: new (bind: string, port: number, rx: Buffer, onDatagram: (length: number, address: string, port: number) => void, onError: (message: string) => void) => {
    port(): number;
    close(): void;
  };
  gsoSupported(): boolean;
  readCached: CachedReader;
}

/** -EAGAIN on Linux: the kernel's send buffer is full. */
const EAGAIN_RESULT = -11;

export type NativeSupport = { readonly ok: true; readonly addon: UdpLinkAddon; readonly gso: boolean } | { readonly ok: false; readonly reason: string };

/** Loads the addon once per call site (the composition root); never throws. */
export function loadNativeLink(): NativeSupport {
  if (process.platform !== 'linux') return { ok: false, reason: `native links are Linux-only (platform ${process.platform})` };
  try {
    const addon = createRequire(import.meta.url)(nativeAddonFile('udp-link', 'udp_link.node')) as UdpLinkAddon;
    return { ok: true, addon, gso: addon.gsoSupported() };
  } catch (err) {
    return { ok: false, reason: `native/udp-link not built (${errorMessage(err).split('\n')[0]})` };
  }
}

/** Opens native links for a server; all of them share one receive buffer (datagrams are handled synchronously). */
export class NativeLinks {
  private readonly rx = Buffer.allocUnsafe(65536);

  constructor(
    private readonly addon: UdpLinkAddon,
    readonly gso: boolean,
  ) {}

  /** Page-cache reads without a thread-pool trip, for the rings of native transfers. */
  get readCached(): CachedReader {
    return this.addon.readCached;
  }

  open(bind: string, peer: Peer): NativeLink {
    return new NativeLink(this.addon, this.rx, this.gso, bind, peer);
  }

  /** The request socket on bind:port (throws EADDRINUSE etc. as bind does). */
  listen(bind: string, port: number, onDatagram: RequestHandler, onError: (err: Error) => void): RequestSocket {
    const rx = Buffer.allocUnsafe(65536);
    const socket = new this.addon.UdpListener(bind, port, rx, (length, address, from) => onDatagram(rx, length, address, from), (message) => onError(new Error(message)));
    return { port: socket.port(), close: () => socket.close() };
  }
}

export class NativeLink implements TransferLink, TurnTaker {
  readonly kind: 'gso' | 'sendmmsg';
  private readonly handle: UdpLinkHandle;
  private events: LinkEvents | null = null;
  private turnsTaken: TurnsTaken | null = null;
  private closed = false;
  private runBuffer: Buffer | null = null;
  /** The armed chain's runs: offset, count, final length per step. */
  private runs = new Uint32Array(0);

  constructor(addon: UdpLinkAddon, rx: Buffer, gso: boolean, bind: string, peer: Peer) {
    this.kind = gso ? 'gso' : 'sendmmsg';
    this.handle = new addon.UdpLink(
      bind,
      peer.address,
      peer.port,
      rx,
      gso,
      (length, steps, lastSent) => {
        // The turns the addon took come first, then the datagram that ended the chain (if any).
        if (steps > 0 || length < 0) this.turnsTaken?.(steps, lastSent, length >= 0);
        if (length >= 0) this.events?.datagram(rx, length);
      },
      (message) => this.fail(message),
      () => this.events?.writable(),
    );
  }

  listen(events: LinkEvents): void {
    this.events = events;
  }

  /** This link takes lock-step turns in the addon (turn-chain.ts). */
  get turns(): TurnTaker {
    return this;
  }

  onTurns(handler: TurnsTaken): void {
    this.turnsTaken = handler;
  }

  send(packet: Buffer): void {
    if (this.closed) return;
    const r = this.handle.send(packet);
    // A full buffer drops it (the peer's timer recovers); any other failure ends the transfer.
    if (r < 0 && r !== EAGAIN_RESULT) this.fail(`send failed (errno ${-r})`);
  }

  sendBlocks(ring: BlockRing, first: number, last: number): number {
    if (this.closed) return 0;
    const stride = ring.stride;
    let n = first;
    while (n <= last) {
      // One run per contiguous stretch of ring slots (a window can wrap around the ring's end).
      const slot = ring.slotOf(n);
      const count = Math.min(last - n + 1, ring.capacity - slot);
      const end = n + count - 1;
      const r = this.handle.sendRun(ring.buffer, slot * stride, stride, count, ring.packetLength(end));
      if (r < 0) {
        if (r !== EAGAIN_RESULT) this.fail(`send failed (errno ${-r})`);
        break;
      }
      n += r;
      if (r < count) break;
    }
    if (n <= last && !this.closed) this.handle.wantWritable();
    return n - first;
  }

  arm(expects: Buffer, width: number, ring: BlockRing, firsts: readonly number[], lasts: readonly number[], steps: number): boolean {
    if (this.closed || steps === 0) return false;
    if (this.runs.length < steps * 3) this.runs = new Uint32Array(steps * 3);
    for (let i = 0; i < steps; i++) {
      const first = firsts[i] as number;
      const last = lasts[i] as number;
      const slot = ring.slotOf(first);
      const count = last - first + 1;
      if (slot + count > ring.capacity) return false; // wraps around the ring: not one run
      this.runs[3 * i] = slot * ring.stride;
      this.runs[3 * i + 1] = count;
      this.runs[3 * i + 2] = ring.packetLength(last);
    }
    if (this.runBuffer !== ring.buffer) {
      this.runBuffer = ring.buffer;
      this.handle.setRunBuffer(ring.buffer);
    }
    this.handle.arm(expects, width, this.runs, steps, ring.stride);
    return true;
  }

  takeProgress(): number {
    return this.closed ? 0 : this.handle.takeProgress();
  }

  disarm(): number {
    return this.closed ? 0 : this.handle.disarm();
  }

  holdsBuffers(): boolean {
    return false; // sendmsg copies into the kernel before it returns
  }

  sendBufferSize(): number {
    return this.handle.info().sendBufferSize;
  }

  setSendBufferSize(bytes: number): void {
    this.handle.setSendBufferSize(bytes);
  }

  get localPort(): number {
    return this.handle.info().port;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handle.close();
  }

  private fail(message: string): void {
    if (this.closed) return;
    this.events?.error(new Error(message));
  }
}

export interface SendPathChoice {
  readonly kind: 'gso' | 'sendmmsg' | 'dgram';
  /** Why this path, for the start-up log. */
  readonly reason: string;
}

/**
 * The send path for `wanted` given what this machine supports: `auto` takes the best one and
 * says why; asking for a native path that is not there is an error, never a silent downgrade.
 */
export function chooseSendPath(wanted: SendPath, support: NativeSupport): SendPathChoice {
  if (wanted === 'dgram') return { kind: 'dgram', reason: 'configured' };
  if (!support.ok) {
    if (wanted === 'auto') return { kind: 'dgram', reason: support.reason };
    throw new Error(`[mtftp] send_path = "${wanted}": ${support.reason}`);
  }
  if (wanted === 'sendmmsg') return { kind: 'sendmmsg', reason: 'configured' };
  if (support.gso) return { kind: 'gso', reason: wanted === 'gso' ? 'configured' : 'native addon, kernel has UDP_SEGMENT' };
  if (wanted === 'gso') throw new Error('[mtftp] send_path = "gso": this kernel refuses UDP_SEGMENT (Linux 4.18 or later needed)');
  return { kind: 'sendmmsg', reason: 'native addon; kernel lacks UDP_SEGMENT' };
}
