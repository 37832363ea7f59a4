// Owns the UDP sockets on the DHCP port (67) and the boot server port (4011), and decides where a
// reply goes. One guard per datagram: whatever a handler throws is logged and the next datagram is
// served. The sockets are our batching addon's (batch-socket.ts) or node:dgram's (dhcp-socket.ts);
// see README.md for what Node's dgram can and cannot do here.
import type { IoPath } from '../../platform/runtime/config.ts';
import { ProtocolError, errorMessage } from '../../platform/runtime/errors.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { BatchSockets, SLOT_BYTES, chooseIoPath, loadUdpBatch, type BatchSupport, type IoPathChoice } from './batch-socket.ts';
import { openDgramSocket, type DatagramEvents, type DhcpSocket, type Peer } from './dhcp-socket.ts';
import type { PxePort } from '../../boot/pxe-request.ts';
import type { ReplyMode, Segment } from '../../boot/answer.ts';

export type { Peer } from './dhcp-socket.ts';

// Where a reply goes is part of the answer path (boot/answer.ts); re-exported for the transport's users.
export { CLIENT_PORT, SERVER_PORT, replyDestination, type ReplyMode, type Segment } from '../../boot/answer.ts';

export function defaultReplyMode(bind: string): ReplyMode {
  return bind.startsWith('127.') ? 'source' : 'broadcast';
}

/** `receivedAt`: performance.now() when the datagram was taken from its socket (DatagramEvents). */
export type DatagramHandler = (message: Buffer, from: Peer, via: PxePort, receivedAt: number) => void | Promise<void>;

export interface TransportOptions {
  readonly bind: string;
  readonly dhcpPort: number;
  readonly proxyPort: number;
  /**
   * Multi-homed: the segments to send broadcast replies on, read when the sockets are bound
   * (README.md, "Several interfaces"). Empty: broadcasts leave as routing decides.
   */
  readonly segments?: () => readonly Segment[];
  /** Which sockets: the batching addon, node:dgram, or (default) the addon when it is built. */
  readonly ioPath?: IoPath;
  /**
   * Called after each batch of datagrams has been handled and its replies sent (DatagramEvents.batchEnd):
   * the PXE server observes its offers' latencies there.
   */
  readonly batchEnd?: () => void;
  /** The addon, or why not (tests: an absent one); default: loaded from native/udp-batch. */
  readonly loadNative?: () => BatchSupport;
}

export class DhcpTransport implements Lifecycle {
  private sockets: Partial<Record<PxePort, DhcpSocket>> = {};
  private segmentSockets: { segment: Segment; socket: DhcpSocket }[] = [];
  private native: BatchSockets | null = null;
  private choice: IoPathChoice | null = null;
  /** The segments of `segmentSockets`, made once per start: read for every broadcast reply. */
  private segmentList: readonly Segment[] = [];

  constructor(private readonly options: TransportOptions, private readonly handler: DatagramHandler, private readonly log: Logger) {}

  async start(): Promise<void> {
    const segments = this.options.segments?.() ?? [];
    this.chooseIoPath();
    try {
      if (segments.length === 0) {
        this.sockets.dhcp = await this.open('dhcp', this.options.dhcpPort, this.options.bind, false);
      } else {
        // A socket per segment, bound to its address, sends limited broadcasts out of that
        // interface only (Linux routes 255.255.255.255 by the bound source address). Beside the
        // wildcard socket that needs SO_REUSEADDR on both; a probe bind without it first keeps
        // the loud failure when another DHCP server holds the port already.
        await this.open('dhcp', this.options.dhcpPort, this.options.bind, false).then((probe) => this.close([probe]));
        this.sockets.dhcp = await this.open('dhcp', this.options.dhcpPort, this.options.bind, true);
        const port = this.sockets.dhcp.port;
        for (const segment of segments) {
          // Unicasts to this address (a relay's, a client's) arrive here rather than on the wildcard.
          try {
            this.segmentSockets.push({ segment, socket: await this.open('dhcp', port, segment.address, true) });
          } catch (err) {
            this.log.warn('no broadcast replies on this segment: cannot bind its address', { segment: segment.name, address: segment.address, err: errorMessage(err) });
          }
        }
      }
      this.sockets.proxy = await this.open('proxy', this.options.proxyPort, this.options.bind, false);
      this.segmentList = this.segmentSockets.map((x) => x.segment);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    const sockets = [...Object.values(this.sockets), ...this.segmentSockets.map((s) => s.socket)];
    this.sockets = {};
    this.segmentSockets = [];
    this.segmentList = [];
    await this.close(sockets);
  }

  /**
   * Which sockets start() opens, and why; loads the addon the first time. Throws when `native` is
   * configured and the addon is not there (the service calls this at its start, to fail early).
   */
  chooseIoPath(): IoPathChoice {
    if (this.choice !== null) return this.choice;
    const support = (this.options.loadNative ?? loadUdpBatch)();
    const choice = chooseIoPath(this.options.ioPath ?? 'auto', support);
    if (choice.kind === 'native' && support.ok) this.native = new BatchSockets(support.addon);
    this.choice = choice;
    return choice;
  }

  /** On the native path: batches received (one JS call each), the datagrams in them, the largest. */
  batchStats(): { readonly batches: number; readonly datagrams: number; readonly largest: number } | null {
    return this.native?.stats ?? null;
  }

  /** The segments broadcast replies go out on, one reply each; empty when routing decides. */
  segments(): readonly Segment[] {
    return this.segmentList;
  }

  /** Sends a broadcast reply out of one segment (its socket's address is the source). */
  sendOnSegment(message: Buffer, to: Peer, segment: Segment): void {
    this.segmentSockets.find((s) => s.segment === segment)?.socket.send(message, to);
  }

  private async close(sockets: readonly DhcpSocket[]): Promise<void> {
    await Promise.all(sockets.map((s) => s.close()));
  }

  /** Bound ports (useful with port 0). */
  ports(): { dhcp: number; proxy: number } | null {
    const { dhcp, proxy } = this.sockets;
    return dhcp === undefined || proxy === undefined ? null : { dhcp: dhcp.port, proxy: proxy.port };
  }

  /**
   * Sends from the socket the request came in on, so the source port is the one the client used.
   * No completion callback (one JS callback less per reply); a refused send is logged by the
   * socket's error event (native path; see DhcpSocket.send). Inside a batch (native path) the
   * reply leaves when the batch is done.
   */
  send(message: Buffer, to: Peer, via: PxePort): void {
    this.sockets[via]?.send(message, to);
  }

  private async open(via: PxePort, port: number, address: string, reuseAddr: boolean): Promise<DhcpSocket> {
    const events: DatagramEvents = {
      datagram: (msg, from, receivedAt) => this.guard(msg, from, via, receivedAt),
      batchEnd: () => this.options.batchEnd?.(),
      oversize: (length, from) => this.log.info('packet dropped: malformed', { via, peer: `${from.address}:${from.port}`, reason: `datagram of ${length} bytes is longer than the ${SLOT_BYTES} taken (DHCP requests fit a frame)` }),
      error: (message) => this.log.warn('socket error (a reply not sent?)', { via, err: message }),
    };
    return this.native === null ? openDgramSocket(address, port, reuseAddr, events) : this.native.open(address, port, reuseAddr, events);
  }

  private guard(msg: Buffer, from: Peer, via: PxePort, receivedAt: number): void {
    try {
      const result = this.handler(msg, from, via, receivedAt);
      if (result instanceof Promise) result.catch((err: unknown) => this.fail(err, from, via));
    } catch (err) {
      this.fail(err, from, via);
    }
  }

  private fail(err: unknown, from: Peer, via: PxePort): void {
    const peer = `${from.address}:${from.port}`;
    if (err instanceof ProtocolError) this.log.info('packet dropped: malformed', { via, peer, reason: err.message });
    else this.log.error('packet dropped: handler failed', { via, peer, err });
  }
}
