// The PXE server's subscription to the Interface's state feed (ws, /feed): keeps the state as of
// the last applied seq, resumes with `since` after a reconnect (with backoff), and carries events
// (pxe-booted) to the Interface, which acknowledges each once it is persisted.
import { WebSocket } from 'ws';
import { backoffDelayMs, type BackoffPolicy } from '../../platform/runtime/backoff.ts';
import { errorMessage } from '../../platform/runtime/errors.ts';
import { EMPTY_STATE, applyChange, type FeedChange, type FeedEvent, type FeedState, type FromInterface } from '../../boot/feed-protocol.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';

export interface FeedListener {
  /** After a snapshot (change null) or one change was applied. */
  onState(state: FeedState, change: FeedChange | null): void;
  onEventAck(eventId: string): void;
  /** A (re)connected feed: the moment to resend unacknowledged events. */
  onConnected(): void;
}

const RECONNECT: BackoffPolicy = { baseMs: 200, capMs: 5000 };

export class FeedClient implements Lifecycle {
  private ws: WebSocket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private seq: number | null = null;
  private current: FeedState = EMPTY_STATE;
  private stopped = false;

  constructor(private readonly url: string, private readonly listener: FeedListener, private readonly log: Logger) {}

  get state(): FeedState {
    return this.current;
  }
  /** The last seq applied (null before the first snapshot). */
  get appliedSeq(): number | null {
    return this.seq;
  }
  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.ws?.terminate();
    this.ws = null;
  }

  /** Sends an event if connected; returns false otherwise (it is resent on reconnect). */
  sendEvent(eventId: string, event: FeedEvent): boolean {
    if (!this.connected) return false;
    this.ws!.send(JSON.stringify({ type: 'event', eventId, event }));
    return true;
  }

  private connect(): void {
    const ws = new WebSocket(this.url, { handshakeTimeout: 5000, maxPayload: 64 * 1024 * 1024 });
    this.ws = ws;
    ws.on('open', () => {
      this.failures = 0;
      ws.send(JSON.stringify(this.seq === null ? { type: 'subscribe' } : { type: 'subscribe', since: this.seq }));
      this.log.info('state feed connected', { url: this.url, since: this.seq });
      this.listener.onConnected();
    });
    ws.on('message', (data) => {
      try {
        this.handle(JSON.parse(String(data)) as FromInterface);
      } catch (err) {
        this.log.error('state feed message not applied; reconnecting', { err });
        ws.terminate();
      }
    });
    ws.on('error', (err) => this.log.debug('state feed error', { err: errorMessage(err) }));
    ws.on('close', () => {
      if (this.ws === ws) this.ws = null;
      if (this.stopped) return;
      this.failures++;
      const delayMs = backoffDelayMs(this.failures, RECONNECT);
      this.log[this.failures === 1 ? 'warn' : 'debug']('state feed unavailable; retrying', { url: this.url, delayMs });
      this.timer = setTimeout(() => {
        this.timer = null;
        if (!this.stopped) this.connect();
      }, delayMs);
    });
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
        this.log.warn('state feed reported an error', { message: msg.message });
        return;
    }
  }
}
