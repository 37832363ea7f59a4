// A chain of predicted turns for the native link: "on the ACK of block n, send n+1 to
// windowEndAfter(n)", repeated from the newest block sent (0: the OACK) over the blocks already
// resident in the ring. The link takes these turns without a trip through JS (lock-step: one block per ACK);
// the session later replays each taken turn through the TransferMachine and checks that the
// machine asks for exactly that window, so the machine stays the one source of decisions.
// Only a link that can take turns offers a TurnTaker (TransferLink.turns); over a link without one
// (node:dgram) a TurnChain never arms, and every turn goes through JS.
import type { BlockRing } from './block-ring.ts';
import { writeAck } from '../../protocols/tftp/tftp-codec.ts';
import { wireBlock, type TransferMachine } from '../../protocols/tftp/transfer.ts';

const ACK_BYTES = 4;

/**
 * Turns taken by the link: `steps` turns of the armed chain since the last report (the last of
 * them sent only `lastSent` blocks when lastSent >= 0). `datagramFollows`: a datagram the chain
 * did not take ended it, and comes next through LinkEvents.datagram; otherwise the chain ran out.
 */
export type TurnsTaken = (steps: number, lastSent: number, datagramFollows: boolean) => void;

/** What a link that takes lock-step turns on its own offers (the native link). */
export interface TurnTaker {
  /** Where taken turns are reported, before the datagram that ended the chain if any. */
  onTurns(handler: TurnsTaken): void;
  /**
   * A chain of predicted turns: when the next datagram is exactly expects[0] (`width` bytes
   * each), send ring blocks firsts[0]..lasts[0] at once, then wait for expects[1], and so on,
   * without a trip through JS; any other datagram ends the chain. Returns whether it is armed
   * (not for a run that crosses the ring's end).
   */
  arm(expects: Buffer, width: number, ring: BlockRing, firsts: readonly number[], lasts: readonly number[], steps: number): boolean;
  /** Chain turns taken since the last report; the chain goes on. */
  takeProgress(): number;
  /** Ends the chain; returns the turns taken since the last report. */
  disarm(): number;
}

export class TurnChain {
  /** Step i: on the ACK of firsts[i] - 1, send firsts[i]..lasts[i]. */
  readonly firsts: number[] = [];
  readonly lasts: number[] = [];
  /** Steps armed on the link, and how many of them were replayed through the machine. */
  steps = 0;
  replayed = 0;
  private expects = Buffer.alloc(0);

  constructor(private readonly taker: TurnTaker | undefined) {}

  get active(): boolean {
    return this.replayed < this.steps;
  }

  clear(): void {
    this.steps = 0;
    this.replayed = 0;
  }

  /**
   * Plans and arms turns from the machine's newest block while the next window is resident and
   * within `maxAhead` blocks of it (so the chain ends, and the read-ahead runs, before the ring
   * is drained). Returns the steps armed (0: none, e.g. over a link that cannot take turns).
   */
  arm(machine: TransferMachine, ring: BlockRing, maxAhead: number): number {
    this.clear();
    if (this.taker === undefined) return 0;
    // From the newest block sent (the OACK counts as block 0), while one is outstanding.
    let n = machine.phase === 'oack' ? 0 : machine.high;
    if (machine.phase !== 'oack' && (machine.phase !== 'data' || n < machine.base)) return 0;
    const limit = n + maxAhead;
    let steps = 0;
    while (n < machine.plan.lastBlock) {
      const last = machine.windowEndAfter(n);
      if (last > limit || !ring.has(n + 1, last)) break;
      this.firsts[steps] = n + 1;
      this.lasts[steps] = last;
      steps++;
      n = last;
    }
    if (steps === 0) return 0;
    if (this.expects.length < steps * ACK_BYTES) this.expects = Buffer.alloc(Math.max(steps, 64) * ACK_BYTES);
    for (let i = 0; i < steps; i++) writeAck(this.expects.subarray(i * ACK_BYTES), wireBlock((this.firsts[i] as number) - 1));
    if (!this.taker.arm(this.expects, ACK_BYTES, ring, this.firsts, this.lasts, steps)) return 0;
    this.steps = steps;
    return steps;
  }

  /** Turns the link took since the last report; the chain goes on. */
  takeProgress(): number {
    return this.taker?.takeProgress() ?? 0;
  }

  /** Ends the chain on the link and here. */
  disarm(): void {
    this.taker?.disarm();
    this.clear();
  }
}
