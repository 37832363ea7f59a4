// One reconnecting, authenticated WebSocket link to another process: the state feed (the PXE
// server to its Interface, over loopback, proved with the local key), the job channel and the
// package feed (an Interface to a peer site, proved with the shared key, frames sealed). Connects,
// answers the challenge (peer-handshake.ts), then carries text messages both ways; a lost or
// refused connection is retried with backoff until stop(). What the messages mean is the user's.
import WebSocket from 'ws';
import { backoffDelayMs, type BackoffPolicy } from '../runtime/backoff.ts';
import { errorMessage } from '../runtime/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import { quote } from '../runtime/quote.ts';
import { ClientHandshake, type SealedChannel } from './peer-handshake.ts';

export interface AuthLinkOptions {
  /** Asked again before each connection when a function (a port recorded at the server's start). */
  readonly url: string | (() => string);
  /** The shared key, asked for at each connection (a local key is made on first use). */
  readonly key: () => Buffer;
  readonly selfId: string;
  /** Who the server must prove to be. */
  readonly serverId: string;
  /** Frames after the handshake sealed (counter + MAC; across the network) or plain (loopback). */
  readonly sealed: boolean;
  readonly backoff: BackoffPolicy;
  readonly maxPayload: number;
  readonly handshakeTimeoutMs?: number;
  /** Measure the round trip with a ws ping this often (rttMs); none when unset. */
  readonly pingMs?: number;
}

export interface AuthLinkHandlers {
  /** Authenticated: the moment to send the first message (subscribe, resend). */
  onUp(): void;
  /** A message after the handshake. A throw drops the connection (reconnecting after). */
  onMessage(text: string): void;
  /** The connection closed; `wasUp` when it had been authenticated. */
  onDown?(reason: string, wasUp: boolean): void;
}

export class AuthLink {
  private ws: WebSocket | null = null;
  private channel: SealedChannel | null = null;
  /** The URL of the latest attempt, for the logs. */
  private lastUrl = '';
  private authenticated = false;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  private pinger: NodeJS.Timeout | null = null;
  private stopped = true;
  /** Why the last connection failed or was refused (null while up). */
  lastError: string | null = null;
  /** Round trip of the last ws ping. */
  rttMs: number | null = null;

  constructor(
    private readonly options: AuthLinkOptions,
    private readonly handlers: AuthLinkHandlers,
    private readonly log: Logger,
  ) {}

  /** Authenticated and open. */
  get up(): boolean {
    return this.authenticated && this.ws?.readyState === WebSocket.OPEN;
  }

  /** The socket is open (perhaps still in the handshake). */
  get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.stopPinger();
    const ws = this.ws;
    this.ws = null;
    ws?.terminate();
  }

  /** Sends a message if the link is up; false otherwise (the caller keeps it for onUp). */
  send(text: string): boolean {
    const ws = this.ws;
    if (ws === null || !this.up) return false;
    ws.send(this.channel === null ? text : this.channel.seal(text));
    return true;
  }

  private connect(): void {
    if (this.stopped) return;
    const o = this.options;
    let key: Buffer;
    try {
      key = o.key();
    } catch (err) {
      return this.retry(errorMessage(err), false);
    }
    const url = typeof o.url === 'string' ? o.url : o.url();
    this.lastUrl = url;
    const ws = new WebSocket(url, { handshakeTimeout: o.handshakeTimeoutMs ?? 5000, maxPayload: o.maxPayload });
    this.ws = ws;
    const handshake = new ClientHandshake(key, o.selfId, o.serverId);
    let reason: string | null = null;
    ws.on('open', () => {
      if (o.pingMs === undefined) return;
      let pingAt = performance.now();
      ws.on('pong', () => (this.rttMs = performance.now() - pingAt));
      ws.ping();
      this.pinger = setInterval(() => {
        pingAt = performance.now();
        ws.ping();
      }, o.pingMs);
    });
    ws.on('message', (data, isBinary) => {
      if (this.ws !== ws) return;
      const text = isBinary ? '' : data.toString();
      try {
        if (!this.authenticated) {
          const step = handshake.next(text);
          if (step.reply !== null) return void ws.send(step.reply);
          this.channel = o.sealed ? step.channel : null;
          this.authenticated = true;
          this.failures = 0;
          this.lastError = null;
          this.handlers.onUp();
          return;
        }
        this.handlers.onMessage(this.channel === null ? text : this.channel.open(text));
      } catch (err) {
        reason = errorMessage(err);
        this.lastError = reason;
        this.log.warn('link dropped', { url, reason: quote(reason, 200) });
        ws.terminate();
      }
    });
    ws.on('error', (err) => {
      reason ??= errorMessage(err);
      this.lastError = reason;
    });
    ws.on('close', (code, why) => {
      const wasUp = this.authenticated;
      if (this.ws === ws) {
        this.ws = null;
        this.channel = null;
        this.authenticated = false;
        this.stopPinger();
      }
      if (code >= 4000 && code < 5000) {
        reason = `refused by peer: ${why.length === 0 ? 'authentication failed' : quote(why.toString())}`;
        this.lastError = reason;
      }
      if (this.stopped) return;
      this.retry(reason ?? `connection closed (code ${code})`, wasUp);
    });
  }

  private retry(reason: string, wasUp: boolean): void {
    this.handlers.onDown?.(reason, wasUp);
    if (this.stopped) return;
    this.failures++;
    const delayMs = backoffDelayMs(this.failures, this.options.backoff);
    this.log[this.failures === 1 ? 'warn' : 'debug']('link unavailable; retrying', { url: this.lastUrl, reason: quote(reason, 200), delayMs });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delayMs);
  }

  private stopPinger(): void {
    if (this.pinger !== null) clearInterval(this.pinger);
    this.pinger = null;
  }
}
