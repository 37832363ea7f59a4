// One read transfer on the wire: owns its connected UDP socket (the server's TID), the
// retransmission timer and the read-ahead ring, and feeds events to the TransferMachine.
// The socket is connected to the client, so the kernel drops datagrams from any other address
// or port: nobody else can ACK, abort or confuse this transfer (RFC 1350 section 4 TIDs).
import type { Socket, RemoteInfo } from 'node:dgram';
import type { Logger } from '../shared/logger.ts';
import { errorMessage } from '../shared/errors.ts';
import type { BlockRing, BlockSource } from './block-ring.ts';
import { ackBlock, decode, encode, errorPacket, TFTP_ERROR, type TftpOption } from './tftp-codec.ts';
import type { Step, TransferMachine } from './transfer.ts';

export type Outcome = 'complete' | 'refused' | 'aborted' | 'shutdown';

export interface SessionEnd {
  readonly outcome: Outcome;
  readonly reason: string;
  readonly bytes: number;
  readonly durationMs: number;
  readonly retransmits: number;
}

export interface SessionParts {
  readonly socket: Socket;
  readonly peer: { readonly address: string; readonly port: number };
  readonly machine: TransferMachine;
  readonly source: BlockSource;
  readonly ring: BlockRing;
  readonly oack: readonly TftpOption[];
  readonly log: Logger;
  /** Monotonic milliseconds (performance.now by default). */
  readonly now?: () => number;
}

export class TftpSession {
  private readonly socket: Socket;
  private readonly machine: TransferMachine;
  private readonly ring: BlockRing;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly startedAt: number;
  private readonly oackPacket: Buffer | null;
  private timer: NodeJS.Timeout | null = null;
  private timerMs = 0;
  /** When the OACK last went out (now()), for telling a repeated request from a crossed one. */
  private oackSentAt = 0;
  /** A window waits for the read-ahead to bring its blocks in. */
  private waiting = false;
  private ended = false;
  readonly done: Promise<SessionEnd>;
  private resolveDone!: (end: SessionEnd) => void;

  constructor(private readonly parts: SessionParts) {
    this.socket = parts.socket;
    this.machine = parts.machine;
    this.ring = parts.ring;
    this.log = parts.log;
    this.now = parts.now ?? (() => performance.now());
    this.startedAt = this.now();
    this.oackPacket = parts.oack.length > 0 ? encode({ op: 'OACK', options: parts.oack }) : null;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  start(): void {
    this.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    this.socket.on('error', (err) => this.onSocketError(err));
    this.timerMs = this.machine.timerMs;
    this.timer = setTimeout(() => this.onTimer(), this.timerMs);
    this.apply(this.machine.start());
  }

  /** Server stop: tell the client, then release everything. */
  shutdown(): void {
    if (this.ended) return;
    this.sendError(TFTP_ERROR.NOT_DEFINED, 'server shutting down');
    this.end('shutdown', 'server shutting down');
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.ended) return;
    if (rinfo.port !== this.parts.peer.port || rinfo.address !== this.parts.peer.address) {
      // Cannot happen on a connected socket; kept so a change there cannot open a hole.
      this.log.debug('ignored datagram from another address', { from: `${rinfo.address}:${rinfo.port}` });
      return;
    }
    const block = ackBlock(msg);
    if (block >= 0) {
      this.apply(this.machine.ack(block));
      return;
    }
    let packet;
    try {
      packet = decode(msg);
    } catch (err) {
      this.log.info('dropped malformed datagram from client', { reason: errorMessage(err), bytes: msg.length });
      return;
    }
    if (packet.op === 'ERROR') {
      this.apply(this.machine.error(packet.code, packet.message));
    } else {
      this.log.info('ignored unexpected packet from client', { op: packet.op });
    }
  }

  /** The client repeated its request on the TFTP port. */
  requestRepeated(): void {
    if (this.ended) return;
    const step = this.machine.requestRepeated(this.now() - this.oackSentAt);
    if (step.kind === 'stale' && this.machine.phase === 'oack') this.log.debug('repeated request crossed our OACK; not answered');
    this.apply(step);
  }

  private onTimer(): void {
    if (this.ended) return;
    this.apply(this.machine.timeout());
  }

  private onSocketError(err: Error): void {
    // On a connected socket an ICMP port unreachable comes back as ECONNREFUSED: the client is gone.
    this.end('aborted', `socket error: ${errorMessage(err)}`);
  }

  private apply(step: Step): void {
    switch (step.kind) {
      case 'send':
        if (this.machine.sendOack) {
          this.socket.send(this.oackPacket as Buffer);
          this.oackSentAt = this.now();
          this.restartTimer();
        } else {
          this.transmit();
        }
        return;
      case 'complete':
        this.end('complete', 'last block acknowledged');
        return;
      case 'refused':
        this.end('refused', 'client answered the OACK with ERROR 8 (option negotiation refused)');
        return;
      case 'aborted':
        if (this.machine.abortReason.startsWith('no acknowledgement')) this.sendError(TFTP_ERROR.NOT_DEFINED, 'transfer timed out');
        this.end('aborted', this.machine.abortReason);
        return;
      case 'wait':
        this.restartTimer();
        return;
      case 'duplicate':
      case 'stale':
        return;
    }
  }

  /** Sends the machine's current range, or waits for the read-ahead to bring it in. */
  private transmit(): void {
    const first = this.machine.sendFirst;
    const last = this.machine.sendLast;
    if (!this.ring.has(first, last)) {
      this.waiting = true;
      this.readAhead();
      return;
    }
    this.waiting = false;
    const socket = this.socket;
    const ring = this.ring;
    for (let n = first; n <= last; n++) socket.send(ring.packet(n));
    this.restartTimer();
    this.readAhead();
  }

  private readAhead(): void {
    const base = this.machine.base;
    if (this.ended || !this.ring.wantsRead(base)) return;
    if (this.socket.getSendQueueCount() > 0) this.ring.detach();
    this.ring.read(base).then(
      () => {
        if (this.ended) return;
        if (this.waiting) this.transmit();
        else this.readAhead();
      },
      (err: unknown) => {
        if (this.ended) return;
        this.log.error('read failed', { err });
        this.sendError(TFTP_ERROR.NOT_DEFINED, 'read error');
        this.end('aborted', `read failed: ${errorMessage(err)}`);
      },
    );
  }

  private restartTimer(): void {
    if (this.timer === null) return;
    if (this.machine.timerMs === this.timerMs) {
      this.timer.refresh(); // no allocation on the per-window path
      return;
    }
    clearTimeout(this.timer);
    this.timerMs = this.machine.timerMs;
    this.timer = setTimeout(() => this.onTimer(), this.timerMs);
  }

  private sendError(code: number, message: string): void {
    try {
      this.socket.send(errorPacket(code, message));
    } catch {
      // The socket may already be closed; the client will time out on its own.
    }
  }

  private end(outcome: Outcome, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    try {
      this.socket.close();
    } catch {
      // Already closed.
    }
    const closed = this.parts.source.close().catch((err: unknown) => this.log.warn('closing the file failed', { err }));
    void closed;
    this.resolveDone({
      outcome,
      reason,
      bytes: outcome === 'complete' ? this.parts.source.size : Math.min(this.parts.source.size, (this.machine.base - 1) * this.ring.blockSize),
      durationMs: this.now() - this.startedAt,
      retransmits: this.machine.retransmits,
    });
  }
}
