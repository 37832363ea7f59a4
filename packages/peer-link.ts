// This server's link to one configured peer: a subscription to the peer's package feed (an
// AuthLink: ws, mutual challenge-response, sealed frames) kept open with reconnects, and signed HTTP requests
// for refs, manifests and chunks. Everything received is verified by the caller against digests.
import { Agent, request, type IncomingMessage } from 'node:http';
import { NetbootError } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { AuthLink } from '../platform/trust/auth-link.ts';
import { httpAuthHeader } from '../platform/trust/peer-auth.ts';
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
  private readonly link: AuthLink;
  private readonly agent: Agent;

  constructor(
    private readonly selfId: string,
    readonly peer: PeerAddress,
    private readonly key: Buffer,
    private readonly handlers: PeerLinkHandlers,
    private readonly log: Logger,
    maxSockets: number,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets });
    this.link = new AuthLink(
      {
        url: `ws://${peer.host}:${peer.port}/pkg-feed`, key: () => key, selfId, serverId: peer.id, sealed: true,
        backoff: { baseMs: 100, capMs: 5000 }, maxPayload: 256 * 1024 * 1024, handshakeTimeoutMs: 10_000, pingMs: PING_MS,
      },
      {
        onUp: () => {
          const from = this.handlers.cursor(this.peer.id);
          this.link.send(JSON.stringify({ type: 'subscribe', epoch: from?.epoch ?? null, cursor: from?.cursor ?? 0 }));
          this.log.info('package feed link up', { peer: this.peer.id, cursor: from?.cursor ?? 0 });
          this.handlers.onConnection(this.peer.id, true);
        },
        onMessage: (text) => this.handlers.onRecords(this.peer.id, decodeRecords(text)),
        onDown: (reason, wasUp) => {
          if (!wasUp) return;
          this.log.info('package feed link down', { peer: this.peer.id, reason });
          this.handlers.onConnection(this.peer.id, false);
        },
      },
      log,
    );
  }

  get id(): string {
    return this.peer.id;
  }

  /** The feed is authenticated and subscribed. */
  get connected(): boolean {
    return this.link.up;
  }

  /** Round trip of the last ws ping: how near this peer is. */
  get rttMs(): number | null {
    return this.link.rttMs;
  }

  start(): void {
    this.link.start();
  }

  stop(): void {
    this.link.stop();
    this.agent.destroy();
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
