// One read transfer on the wire: owns its link (a connected UDP socket: the server's TID), the
// retransmission timer and the read-ahead ring, and feeds events to the TransferMachine.
// The socket is connected to the client, so the kernel drops datagrams from any other address
// or port: nobody else can ACK, abort or confuse this transfer (RFC 1350 section 4 TIDs).
import type { Logger } from '../../platform/runtime/logger.ts';
import { errorMessage } from '../../platform/runtime/errors.ts';
import type { BlockRing, BlockSource } from './block-ring.ts';
import { ackBlock, decode, encode, errorPacket, TFTP_ERROR, type TftpOption } from '../../protocols/tftp/tftp-codec.ts';
import type { TransferLink } from './transfer-link.ts';
import { TurnChain } from './turn-chain.ts';
import { wireBlock, type Step, type TransferMachine } from '../../protocols/tftp/transfer.ts';

export type Outcome = 'complete' | 'refused' | 'aborted' | 'shutdown';

export interface SessionEnd {
  readonly outcome: Outcome;
  readonly reason: string;
  readonly bytes: number;
  readonly durationMs: number;
  readonly retransmits: number;
}

export interface SessionParts {
  readonly link: TransferLink;
  readonly machine: TransferMachine;
  readonly source: BlockSource;
  readonly ring: BlockRing;
  readonly oack: readonly TftpOption[];
  readonly log: Logger;
  /** Monotonic milliseconds (performance.now by default). */
  readonly now?: () => number;
  /** A transfer still running this long after start() is abandoned (none when absent). */
  readonly maxLifetimeMs?: number;
}

export class TftpSession {
  private readonly link: TransferLink;
  private readonly machine: TransferMachine;
  private readonly ring: BlockRing;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly startedAt: number;
  private readonly oackPacket: Buffer | null;
  private timer: NodeJS.Timeout | null = null;
  private timerMs = 0;
  private lifetime: NodeJS.Timeout | null = null;
  /** When the first answer (the OACK, or DATA 1 without one) last went out: a repeat sooner crossed it. */
  private answeredAt = 0;
  /** A window waits for the read-ahead to bring its blocks in. */
  private waiting = false;
  /** Blocks the link could not take yet (its send buffer was full): sent when it is writable. */
  private blockedFirst = 0;
  private blockedLast = -1;
  /** Turns the link takes on its own (lock-step), replayed through the machine after; never armed over node:dgram. */
  private readonly chain: TurnChain;
  private ended = false;
  private evictedFlag = false;
  private firstTurn: (() => void) | null = null;
  readonly done: Promise<SessionEnd>;
  private resolveDone!: (end: SessionEnd) => void;

  constructor(private readonly parts: SessionParts) {
    this.link = parts.link;
    this.machine = parts.machine;
    this.ring = parts.ring;
    this.log = parts.log;
    this.now = parts.now ?? (() => performance.now());
    this.startedAt = this.now();
    this.oackPacket = parts.oack.length > 0 ? encode({ op: 'OACK', options: parts.oack }) : null;
    this.chain = new TurnChain(parts.link.turns);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  start(): void {
    this.link.listen({
      datagram: (buf, length) => this.onDatagram(buf, length),
      error: (err) => this.onSocketError(err),
      writable: () => this.onWritable(),
    });
    this.link.turns?.onTurns((steps, lastSent, datagramFollows) => this.onTurns(steps, lastSent, datagramFollows));
    this.apply(this.machine.start());
    // Everything else after the first packet: the timer, and with the OACK out, reading the first
    // blocks while the client answers it; once they are in, the link holds the turn "on ACK 0,
    // send the first window" (armNext), so DATA 1 leaves as ACK 0 arrives, not after a read.
    this.timerMs = this.machine.timerMs;
    this.timer = setTimeout(() => this.onTimer(), this.timerMs);
    const lifetimeMs = this.parts.maxLifetimeMs;
    if (lifetimeMs !== undefined) this.lifetime = setTimeout(() => this.expire(lifetimeMs), lifetimeMs);
    if (this.machine.phase === 'oack') this.readAhead();
  }

  /** The session lifetime bound ([mtftp] max_session_s): however well it is going, it ends here. */
  private expire(lifetimeMs: number): void {
    if (this.ended) return;
    this.sendError(TFTP_ERROR.NOT_DEFINED, 'transfer took too long');
    this.end('aborted', `session lifetime exceeded (${lifetimeMs / 1000} s)`);
  }

  /**
   * `fn` runs once, at the session's first event after start (a datagram or a turn the link took,
   * the timer, the end): for work that should not delay the client's first turn (the log line).
   */
  afterFirstTurn(fn: () => void): void {
    this.firstTurn = fn;
  }

  private firstTurnDone(): void {
    const fn = this.firstTurn;
    if (fn === null) return;
    this.firstTurn = null;
    fn();
  }

  /**
   * Whether the client has answered: acknowledged the OACK, or DATA 1 when there was none. A
   * request with a forged source never is (our answer went to the forged address, from a port
   * nobody else knows), so until then the session may be evicted and its ring stays small.
   */
  get answered(): boolean {
    const m = this.machine;
    return m.phase !== 'new' && m.phase !== 'oack' && (m.plan.oack || m.base > 1);
  }

  /** Whether the client has answered, counting turns the link took that JS has not heard of yet. */
  hasAnswered(): boolean {
    if (!this.answered && !this.ended && this.chain.active) this.collectProgress();
    return this.answered;
  }

  /** Replays the chain's turns taken so far (the chain goes on); false if there were none. */
  private collectProgress(): boolean {
    const steps = this.chain.takeProgress();
    if (steps === 0) return false;
    this.replay(steps, -1);
    if (!this.chain.active) this.chain.clear();
    this.armNext();
    return true;
  }

  /** Whether evict() ended it. */
  get evicted(): boolean {
    return this.evictedFlag;
  }

  /** The server needs the slot for a new request (a cap is reached) and this client never answered. */
  evict(reason: string): void {
    if (this.ended) return;
    this.evictedFlag = true;
    this.sendError(TFTP_ERROR.NOT_DEFINED, 'server busy, try again later');
    this.end('aborted', reason);
  }

  /** Server stop: tell the client, then release everything. */
  shutdown(): void {
    if (this.ended) return;
    this.sendError(TFTP_ERROR.NOT_DEFINED, 'server shutting down');
    this.end('shutdown', 'server shutting down');
  }

  private onDatagram(buf: Buffer, length: number): void {
    if (this.ended) return;
    this.chain.clear(); // a datagram the chain did not take ends it
    this.handleDatagram(buf, length);
    this.armNext();
    this.firstTurnDone();
  }

  /** The link took turns of the chain; when a datagram ended it, onDatagram comes next. */
  private onTurns(steps: number, lastSent: number, datagramFollows: boolean): void {
    if (this.ended) return;
    if (steps > 0) this.replay(steps, lastSent);
    if (datagramFollows) return;
    if (lastSent >= 0 || !this.chain.active) this.chain.clear();
    this.armNext();
    this.firstTurnDone();
  }

  /**
   * The link took `steps` turns of the chain: feed their ACKs to the machine, which must ask for
   * exactly the windows already sent. The last turn sent only `lastSent` blocks when >= 0.
   */
  private replay(steps: number, lastSent: number): void {
    const m = this.machine;
    for (let i = 0; i < steps && !this.ended; i++) {
      const k = this.chain.replayed++;
      const first = this.chain.firsts[k] as number;
      const last = this.chain.lasts[k] as number;
      const step = m.ack(wireBlock(first - 1));
      if (step.kind !== 'send' || m.sendOack || m.sendFirst !== first || m.sendLast !== last) {
        // Cannot happen while the chain follows windowEndAfter; if it does, the machine wins.
        this.log.warn('predicted turn differs from the state machine', { acked: first - 1, predicted: `${first}-${last}`, step: step.kind });
        this.chain.disarm();
        this.apply(step);
        return;
      }
      if (i === steps - 1 && lastSent >= 0 && first + lastSent <= last) this.sendRange(first + lastSent, last);
    }
    this.waiting = false;
    this.restartTimer();
    this.readAhead();
  }

  private handleDatagram(buf: Buffer, length: number): void {
    const block = ackBlock(buf, length);
    if (block >= 0) {
      this.apply(this.machine.ack(block));
      return;
    }
    let packet;
    try {
      packet = decode(buf.subarray(0, length));
    } catch (err) {
      this.log.info('dropped malformed datagram from client', { reason: errorMessage(err), bytes: length });
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
    const step = this.machine.requestRepeated(this.now() - this.answeredAt);
    if (step.kind === 'stale') this.log.debug('repeated request not answered (it crossed our answer, or the client is past it)');
    this.apply(step);
  }

  private onTimer(): void {
    if (this.ended) return;
    this.firstTurnDone();
    // The link may have made progress the machine has not seen yet: that is no timeout.
    if (this.chain.active && this.collectProgress()) return;
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
          this.link.send(this.oackPacket as Buffer);
          this.answeredAt = this.now();
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
    this.restartTimer();
    if (this.blockedLast >= this.blockedFirst) {
      // Still waiting for room: this range replaces the one not yet sent (go-back-N resends anyway).
      this.blockedFirst = first;
      this.blockedLast = last;
      return;
    }
    if (first === 1) this.answeredAt = this.now();
    this.sendRange(first, last);
    this.readAhead();
    this.armNext();
  }

  private sendRange(first: number, last: number): void {
    const sent = this.link.sendBlocks(this.ring, first, last);
    if (this.ended) return;
    this.blockedFirst = first + sent;
    this.blockedLast = last;
  }

  /** Arms a chain of turns over the resident blocks; ends halfway through a read chunk so reads overlap. */
  private armNext(): void {
    if (this.ended || this.chain.active || this.blockedLast >= this.blockedFirst) return;
    this.chain.arm(this.machine, this.ring, Math.max(this.machine.plan.windowSize, this.ring.chunk >> 1));
  }

  private onWritable(): void {
    if (this.ended || this.blockedLast < this.blockedFirst) return;
    const first = Math.max(this.blockedFirst, this.machine.base);
    const last = this.blockedLast;
    this.blockedLast = -1;
    if (first <= last && this.ring.has(first, last)) this.sendRange(first, last);
    this.readAhead();
  }

  private readAhead(): void {
    const base = this.machine.base;
    if (this.ended) return;
    // The ring grows only as the client answers (block-ring.ts): ACK 0 after an OACK, else ACK 1.
    if (!this.ring.grow(base, this.answered)) {
      this.sendError(TFTP_ERROR.DISK_FULL, 'server busy: out of transfer buffer memory, try again later');
      this.end('aborted', `transfer buffer budget spent: ${this.ring.minCapacity * this.ring.stride} bytes needed`);
      return;
    }
    if (!this.ring.wantsRead(base)) return;
    if (this.link.holdsBuffers()) this.ring.detach();
    this.ring.read(base).then(
      () => {
        if (this.ended) return;
        if (this.waiting) this.transmit();
        else this.readAhead();
        this.armNext();
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
      this.link.send(errorPacket(code, message));
    } catch {
      // The socket may already be closed; the client will time out on its own.
    }
  }

  private end(outcome: Outcome, reason: string): void {
    if (this.ended) return;
    this.firstTurnDone();
    this.ended = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.lifetime !== null) clearTimeout(this.lifetime);
    this.lifetime = null;
    try {
      this.link.close();
    } catch {
      // Already closed.
    }
    const closed = this.parts.source.close().catch((err: unknown) => this.log.warn('closing the file failed', { err }));
    void closed;
    const blockSize = this.ring.blockSize;
    this.ring.release();
    this.resolveDone({
      outcome,
      reason,
      bytes: outcome === 'complete' ? this.parts.source.size : Math.min(this.parts.source.size, (this.machine.base - 1) * blockSize),
      durationMs: this.now() - this.startedAt,
      retransmits: this.machine.retransmits,
    });
  }
}
