// What the answer path (boot/answer.ts) is given for each datagram on the sockets: the server's
// parts as they are at that moment. A class with the changing parts (the feed's state, the
// consumed boots, the bound segments) as getters on its prototype and the rest as fields set
// once: every datagram reads the same object of the same shape, so the optimizing compiler
// inlines these reads (an object literal with getters and a spread was read through the generic
// property look-up, about 0.1 µs a datagram in bench/dhcp-storm/answer-cpu.ts).
import type { AddressChoice, AddressTarget, AnswerState, Chosen, ReplyMode, Segment } from '../../boot/answer.ts';
import type { FeedState } from '../../boot/feed-protocol.ts';
import type { ReplyOptionCache } from '../../boot/pxe-reply.ts';
import type { BootEvents } from './boot-events.ts';
import type { DhcpTransport } from './dhcp-transport.ts';
import type { FeedClient } from './feed-client.ts';
import type { ServerAddresses } from './server-address.ts';
import { known } from './explain-route.ts';

export class LiveAnswerState implements AnswerState {
  readonly fixed: AddressChoice | null;
  /** While rehearse() runs: the state answered from instead of the server's parts. */
  private stand: AnswerState | null = null;

  constructor(
    private readonly feedClient: FeedClient,
    private readonly events: BootEvents,
    private readonly transport: DhcpTransport,
    private readonly addresses: ServerAddresses,
    readonly replyMode: ReplyMode,
    readonly cache: ReplyOptionCache,
    /** Boot HTTP's port when [http] is enabled. */
    readonly httpPort: number | undefined,
  ) {
    this.fixed = addresses.fixed;
  }

  get feed(): FeedState {
    return this.stand === null ? this.feedClient.state : this.stand.feed;
  }

  get consumed(): ReadonlySet<string> {
    return this.stand === null ? this.events.consumedMacs() : this.stand.consumed;
  }

  get segments(): readonly Segment[] {
    return this.stand === null ? this.transport.segments() : this.stand.segments;
  }

  isOurs(address: string): boolean {
    return this.stand === null ? this.addresses.isOurs(address) : this.stand.isOurs(address);
  }

  forSegment(segment: Segment): AddressChoice {
    return this.stand === null ? this.addresses.forSegment(segment) : this.stand.forSegment(segment);
  }

  address(target: AddressTarget): Chosen | undefined {
    return this.stand === null ? (this.addresses.fixed ?? known(this.addresses.choose(target))) : this.stand.address(target);
  }

  /**
   * Runs `run` with this object answering from `state` (the feed, the consumed boots, the
   * segments and the address choice; its reply mode, fixed address, cache and Boot HTTP port stay
   * the server's): the warm-up compiles the answer path on this very object, so that the
   * compiler sees one shape of state, not two (with two, its reads were generic look-ups).
   */
  rehearse(state: AnswerState, run: () => void): void {
    this.stand = state;
    try {
      run();
    } finally {
      this.stand = null;
    }
  }

  /** The state as plain values, as of now (a spread of this object would miss its getters and methods). */
  snapshot(): AnswerState {
    return {
      feed: this.feed, consumed: this.consumed, replyMode: this.replyMode, isOurs: (a) => this.isOurs(a), segments: this.segments,
      forSegment: (s) => this.forSegment(s), address: (t) => this.address(t), fixed: this.fixed, cache: this.cache,
      ...(this.httpPort === undefined ? {} : { httpPort: this.httpPort }),
    };
  }
}
