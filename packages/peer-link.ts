// This server's link to one configured peer: a subscription to the peer's package feed (ws,
// mutual challenge-response, sealed frames) kept open with reconnects, and signed HTTP requests
// for refs, manifests and chunks. Everything received is verified by the caller against digests.
import { Agent, request, type IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { backoffDelayMs } from '../platform/runtime/backoff.ts';
import { NetbootError, errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { PeerAuthError, httpAuthHeader } from '../platform/trust/peer-auth.ts';
import { ClientHandshake, type SealedChannel } from '../platform/trust/peer-handshake.ts';
import { FrameParser, type Frame } from './chunk-frames.ts';
import { decodeRecords, type RecordsMessage } from './feed-messages.ts';
import type { PeerAddress } from '../platform/trust/peer-keys.ts';

const PING_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;

export class PeerRequestError extends NetbootError {
  constructor(readonly status: number, message: string) {
    super('PEER_REQUEST_FAILED', message);
  }
}

export interface PeerLinkHandlers {
  /** Where to resume this peer's feed from (null: from the start). */
  cursor(peerId: string): { epoch: string; cursor: number } | null;
  onRecords(peerId: string, msg: RecordsMessage): void;
  onConnection(peerId: string, up: boolean): void;
}

export class PeerLink {
  private ws: WebSocket | null = null;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  private pinger: NodeJS.Timeout | null = null;
  private stopped = true;
  private readonly agent: Agent;
  /** Set once the feed is authenticated and subscribed. */
  connected = false;
  /** Round trip of the last ws ping: how near this peer is. */
  rttMs: number | null = null;

  constructor(
    private readonly selfId: string,
    readonly peer: PeerAddress,
    private readonly key: Buffer,
    private readonly handlers: PeerLinkHandlers,
    private readonly log: Logger,
    maxSockets: number,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  get id(): string {
    return this.peer.id;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.pinger !== null) clearInterval(this.pinger);
    this.ws?.terminate();
    this.ws = null;
    this.agent.destroy();
  }

  private connect(): void {
    if (this.stopped) return;
    const ws = new WebSocket(`ws://${this.peer.host}:${this.peer.port}/pkg-feed`, { maxPayload: 256 * 1024 * 1024, handshakeTimeout: 10_000 });
    this.ws = ws;
    const handshake = new ClientHandshake(this.key, this.selfId, this.peer.id);
    let channel: SealedChannel | null = null;
    let pingAt = 0;
    const fail = (reason: string): void => {
      this.log.warn('package feed link: refusing peer', { peer: this.peer.id, address: `${this.peer.host}:${this.peer.port}`, reason });
      ws.terminate();
    };
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : data.toString();
      try {
        if (channel === null) {
          const step = handshake.next(text);
          if (step.reply !== null) return ws.send(step.reply);
          channel = step.channel;
          const from = this.handlers.cursor(this.peer.id);
          ws.send(channel.seal(JSON.stringify({ type: 'subscribe', epoch: from?.epoch ?? null, cursor: from?.cursor ?? 0 })));
          this.connected = true;
          this.failures = 0;
          this.log.info('package feed link up', { peer: this.peer.id, cursor: from?.cursor ?? 0 });
          this.handlers.onConnection(this.peer.id, true);
          return;
        }
        this.handlers.onRecords(this.peer.id, decodeRecords(channel.open(text)));
      } catch (err) {
        fail(err instanceof PeerAuthError ? err.message : `bad message: ${errorMessage(err)}`);
      }
    });
    ws.on('open', () => {
      this.pinger = setInterval(() => {
        pingAt = performance.now();
        ws.ping();
      }, PING_MS);
      pingAt = performance.now();
      ws.ping();
    });
    ws.on('pong', () => (this.rttMs = performance.now() - pingAt));
    ws.on('error', (err) => this.log.debug('package feed link error', { peer: this.peer.id, err: errorMessage(err) }));
    ws.on('close', (code) => {
      if (this.pinger !== null) clearInterval(this.pinger);
      this.pinger = null;
      if (this.ws === ws) this.ws = null;
      const wasUp = this.connected;
      this.connected = false;
      if (wasUp) {
        this.log.info('package feed link down', { peer: this.peer.id, code });
        this.handlers.onConnection(this.peer.id, false);
      }
      if (this.stopped) return;
      this.failures++;
      this.timer = setTimeout(() => this.connect(), backoffDelayMs(this.failures, { baseMs: 100, capMs: 5000 }));
    });
  }

  /** A signed HTTP request to the peer's package routes. */
  request(method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = request({
        host: this.peer.host, port: this.peer.port, method, path, agent: this.agent, timeout: REQUEST_TIMEOUT_MS,
        headers: { ...headers, authorization: httpAuthHeader(this.key, this.selfId, method, path), ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}) },
      }, resolve);
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end(body);
    });
  }

  async getBody(path: string, maxBytes: number): Promise<Buffer> {
    const res = await this.request('GET', path);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res) {
      n += (c as Buffer).length;
      if (n > maxBytes) {
        res.destroy();
        throw new PeerRequestError(0, `${this.peer.id} ${path}: reply larger than ${maxBytes} bytes`);
      }
      chunks.push(c as Buffer);
    }
    if (res.statusCode !== 200) throw new PeerRequestError(res.statusCode ?? 0, `${this.peer.id} ${path}: HTTP ${res.statusCode}`);
    return Buffer.concat(chunks);
  }

  /** Asks for many chunks in one request; `onFrame` sees each as it arrives (backpressure: awaited). */
  async fetchChunks(digests: readonly string[], onFrame: (f: Frame) => Promise<void>): Promise<void> {
    const res = await this.request('POST', '/pkg/chunks', Buffer.from(JSON.stringify({ digests, encoding: 'deflate' })));
    if (res.statusCode !== 200) {
      res.resume();
      throw new PeerRequestError(res.statusCode ?? 0, `${this.peer.id} POST /pkg/chunks: HTTP ${res.statusCode}`);
    }
    const parser = new FrameParser();
    for await (const c of res) {
      for (const f of parser.push(c as Buffer)) await onFrame(f);
    }
    parser.end();
  }
}
