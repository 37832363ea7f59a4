// The sending side of one read transfer, as a pure state machine: events in (ACK, timer fired,
// ERROR received), decisions out (what to send, what to do with the retransmission timer).
// No sockets, no clock, no file access: the transport turns "send blocks a..b" into datagrams.
//
// Blocks are numbered absolutely from 1 (0 is the OACK); on the wire the number is the low 16
// bits, so block 65536 goes out as 0 (rollover as iPXE, EDK2, tftp-hpa, atftp and curl expect).
// Windowing is RFC 7440: send a window, wait for the ACK of its last block; an ACK for an earlier
// block means the client lost or reordered something, and the next window starts right after it
// (go-back-N). An ACK that acknowledges nothing new is dropped without a resend: only the timer
// retransmits, which is what keeps the Sorcerer's Apprentice storm (RFC 1123 4.2.3.1) away.
//
// The OACK is repeated only when the client repeats its request (so it did not get the OACK),
// never on our timer alone: if the client's ACK 0 was lost, a second OACK makes atftp abort
// ("unexpected OACK"), while its own timer resends ACK 0. The timer still bounds the wait.
// A repeat that arrives within REQUEST_CROSSING_MS of our OACK crossed it in flight (seen: an
// RRQ held ~1 s behind a lost ARP reply lands just before the client's own retry); answering it
// would send the client a second OACK, so it is ignored. If the OACK was in fact lost, the
// client's next retry (>= 1 s later for every client we know) gets it.
//
// The retransmission interval doubles with each timeout without progress (up to a cap) and
// drops back on progress. Besides sparing a congested link, this is what lets a receiver that
// ignores duplicate DATA without re-ACKing it (atftp) recover a lost window ACK: its own timer
// restarts on every packet it receives, so it only resends its ACK once we pause long enough.

export interface TransferPlan {
  /** Absolute number of the final block (the short one, possibly empty); at least 1. */
  readonly lastBlock: number;
  readonly windowSize: number;
  /** Retransmissions allowed without progress before giving up. */
  readonly retries: number;
  /** First retransmission interval; doubled per timeout without progress, up to maxTimeoutMs. */
  readonly timeoutMs: number;
  readonly maxTimeoutMs: number;
  /** An OACK goes first and must be acknowledged with block 0 (RFC 2347). */
  readonly oack: boolean;
}

export type TimerAction = 'restart' | 'keep' | 'stop';

export interface Step {
  readonly kind:
    | 'send' // send the OACK (machine.sendOack) or blocks sendFirst..sendLast
    | 'wait' // nothing to send; keep waiting for the client (timer restarted)
    | 'complete' // the last block is acknowledged
    | 'duplicate' // an ACK that acknowledges nothing new
    | 'stale' // an ACK outside the window, or for the wrong phase
    | 'refused' // the client answered the OACK with ERROR 8 (RFC 2347)
    | 'aborted'; // the client sent ERROR, or retries ran out: see abortReason
  readonly timer: TimerAction;
}

const SEND: Step = Object.freeze({ kind: 'send', timer: 'restart' });
const COMPLETE: Step = Object.freeze({ kind: 'complete', timer: 'stop' });
const DUPLICATE: Step = Object.freeze({ kind: 'duplicate', timer: 'keep' });
const STALE: Step = Object.freeze({ kind: 'stale', timer: 'keep' });
const WAIT: Step = Object.freeze({ kind: 'wait', timer: 'restart' });
const REFUSED: Step = Object.freeze({ kind: 'refused', timer: 'stop' });
const ABORTED: Step = Object.freeze({ kind: 'aborted', timer: 'stop' });

/** A repeated request this soon after our first answer (OACK, or DATA 1 without one) is taken as having crossed it. */
export const REQUEST_CROSSING_MS = 100;

export type Phase = 'new' | 'oack' | 'data' | 'complete' | 'refused' | 'aborted';

export class TransferMachine {
  phase: Phase = 'new';
  /** Lowest block not yet acknowledged. */
  base = 1;
  /** Highest block sent so far (0 = none). */
  high = 0;
  /** For a 'send' step: whether to send the OACK, else the block range. */
  sendOack = false;
  sendFirst = 0;
  sendLast = 0;
  /** Retransmissions so far (all phases), for the log. */
  retransmits = 0;
  abortReason = '';
  /** The interval the timer should run for now (read it when a step says 'restart'). */
  timerMs: number;
  private retriesLeft: number;

  constructor(readonly plan: TransferPlan) {
    if (!Number.isInteger(plan.lastBlock) || plan.lastBlock < 1) throw new RangeError('lastBlock must be an integer >= 1');
    if (!Number.isInteger(plan.windowSize) || plan.windowSize < 1 || plan.windowSize > 65535) throw new RangeError('windowSize must be 1..65535');
    this.retriesLeft = plan.retries;
    this.timerMs = plan.timeoutMs;
  }

  get finished(): boolean {
    return this.phase === 'complete' || this.phase === 'refused' || this.phase === 'aborted';
  }

  start(): Step {
    if (this.phase !== 'new') return STALE;
    if (this.plan.oack) {
      this.phase = 'oack';
      this.sendOack = true;
      return SEND;
    }
    this.phase = 'data';
    return this.window();
  }

  /** An ACK carrying the 16-bit block number `wire`. */
  ack(wire: number): Step {
    if (this.phase === 'oack') {
      if (wire !== 0) return STALE;
      this.phase = 'data';
      this.progress();
      return this.window();
    }
    if (this.phase !== 'data') return STALE;
    // The absolute block this ACK names: the one in base-1..high with these low 16 bits. The
    // range spans at most 65,536 numbers (window <= 65535), so the match is unique.
    const n = this.base - 1 + ((wire - ((this.base - 1) & 0xffff) + 0x10000) & 0xffff);
    if (n > this.high) return STALE;
    if (n === this.base - 1) return DUPLICATE;
    this.base = n + 1;
    this.progress();
    if (n === this.plan.lastBlock) {
      this.phase = 'complete';
      return COMPLETE;
    }
    return this.window();
  }

  /** The retransmission timer fired with no progress since it was (re)started. */
  timeout(): Step {
    if (this.phase !== 'oack' && this.phase !== 'data') return STALE;
    if (this.retriesLeft <= 0) {
      this.abortReason = `no acknowledgement after ${this.plan.retries} retransmissions`;
      this.phase = 'aborted';
      return ABORTED;
    }
    this.retriesLeft--;
    this.timerMs = Math.min(this.timerMs * 2, Math.max(this.plan.maxTimeoutMs, this.plan.timeoutMs));
    if (this.phase === 'oack') return WAIT;
    this.retransmits++;
    // Go back to the first unacknowledged block and resend what was outstanding.
    this.sendOack = false;
    this.sendFirst = this.base;
    this.sendLast = this.high;
    return SEND;
  }

  /**
   * The client sent its request again (same TID): it is still waiting for our first answer (the
   * OACK, or DATA 1 when there is none), unless the repeat crossed that answer (`msSinceAnswer`
   * below REQUEST_CROSSING_MS). Once the client has acknowledged anything, a repeat is stale.
   */
  requestRepeated(msSinceAnswer: number): Step {
    if (msSinceAnswer < REQUEST_CROSSING_MS) return STALE;
    if (this.phase === 'oack') {
      this.retransmits++;
      this.sendOack = true;
      return SEND;
    }
    if (this.phase !== 'data' || this.plan.oack || this.base !== 1) return STALE;
    this.retransmits++;
    this.sendOack = false;
    this.sendFirst = 1;
    this.sendLast = this.high;
    return SEND;
  }

  /** The client sent ERROR: the transfer ends either way (RFC 1350 section 7). */
  error(code: number, message: string): Step {
    if (this.finished) return STALE;
    if (this.phase === 'oack' && code === 8) {
      this.phase = 'refused';
      return REFUSED;
    }
    this.abortReason = `client sent ERROR ${code} ${JSON.stringify(message)}`;
    this.phase = 'aborted';
    return ABORTED;
  }

  private progress(): void {
    this.retriesLeft = this.plan.retries;
    this.timerMs = this.plan.timeoutMs;
  }

  /**
   * The window an ACK of block n (the newest sent, n < lastBlock) makes us send: n+1 to this.
   * The transport may send it ahead of ack() (a predicted turn) and then check ack()'s answer.
   */
  windowEndAfter(n: number): number {
    return Math.min(n + this.plan.windowSize, this.plan.lastBlock);
  }

  private window(): Step {
    this.sendOack = false;
    this.sendFirst = this.base;
    this.sendLast = this.windowEndAfter(this.base - 1);
    if (this.sendLast > this.high) this.high = this.sendLast;
    return SEND;
  }
}

/** The 16-bit number a block carries on the wire. */
export function wireBlock(n: number): number {
  return n & 0xffff;
}

/** Blocks needed for `size` bytes: the last one is short, empty when size is a multiple. */
export function lastBlockFor(size: number, blockSize: number): number {
  return Math.floor(size / blockSize) + 1;
}
