// The PXE server's subscription to the Interface's state feed (ws, /feed): keeps the state as of
// the last applied seq, resumes with `since` after a reconnect (with backoff), and carries events
// (pxe-booted) to the Interface, which acknowledges each once it is persisted. The connection is
// an AuthLink proved with the local key (platform/trust/local-key.ts): the Interface serves the
// feed only to our own processes.
import type { BackoffPolicy } from '../../platform/runtime/backoff.ts';
import { EMPTY_STATE, applyChange, type FeedChange, type FeedEvent, type FeedState, type FromInterface } from '../../boot/feed-protocol.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { quote } from '../../platform/runtime/quote.ts';
import { AuthLink } from '../../platform/trust/auth-link.ts';
import { LOCAL_CLIENT_ID, LOCAL_SERVER_ID, type LocalKey } from '../../platform/trust/local-key.ts';

export interface FeedListener {
  /** After a snapshot (change null) or one change was applied. */
  onState(state: FeedState, change: FeedChange | null): void;
  onEventAck(eventId: string): void;
  /** A (re)connected feed: the moment to resend unacknowledged events. */
  onConnected(): void;
}

const RECONNECT: BackoffPolicy = { baseMs: 200, capMs: 5000 };

export class FeedClient implements Lifecycle {
  private readonly link: AuthLink;
  private seq: number | null = null;
  private current: FeedState = EMPTY_STATE;

  constructor(private readonly url: string | (() => string), localKey: LocalKey, private readonly listener: FeedListener, private readonly log: Logger) {
    this.link = new AuthLink(
      { url, key: () => localKey.get(), selfId: LOCAL_CLIENT_ID, serverId: LOCAL_SERVER_ID, sealed: false, backoff: RECONNECT, maxPayload: 64 * 1024 * 1024 },
      { onUp: () => this.onUp(), onMessage: (text) => this.handle(JSON.parse(text) as FromInterface) },
      log,
    );
  }

  get state(): FeedState {
    return this.current;
  }
  /** The last seq applied (null before the first snapshot). */
  get appliedSeq(): number | null {
    return this.seq;
  }
  get connected(): boolean {
    return this.link.up;
  }

  async start(): Promise<void> {
    this.link.start();
  }

  async stop(): Promise<void> {
    this.link.stop();
  }

  /** Sends an event if connected; returns false otherwise (it is resent on reconnect). */
  sendEvent(eventId: string, event: FeedEvent): boolean {
    return this.link.send(JSON.stringify({ type: 'event', eventId, event }));
  }

  private onUp(): void {
    this.link.send(JSON.stringify(this.seq === null ? { type: 'subscribe', jobs: true } : { type: 'subscribe', since: this.seq, jobs: true }));
    this.log.info('state feed connected', { url: typeof this.url === 'string' ? this.url : this.url(), since: this.seq });
    this.listener.onConnected();
  }

  private handle(msg: FromInterface): void {
    switch (msg.type) {
      case 'snapshot':
        this.current = msg.state;
        this.seq = msg.seq;
        this.listener.onState(this.current, null);
        return;
      case 'change':
        if (this.seq !== null && msg.seq !== this.seq + 1) throw new Error(`feed gap: have seq ${this.seq}, got ${msg.seq}`);
        this.current = applyChange(this.current, msg.change);
        this.seq = msg.seq;
        this.listener.onState(this.current, msg.change);
        return;
      case 'event-ack':
        this.listener.onEventAck(msg.eventId);
        return;
      case 'error':
        this.log.warn('state feed reported an error', { message: quote(msg.message) });
        return;
    }
  }
}
