// The receiving side of the peer channel (/peer on TCP 490): a peer proves who it is with the
// challenge-response of platform/trust/peer-auth.ts (peer-handshake.ts), then sends job instructions in sealed
// frames. Each job is checked like any dropped file (parseSbs), applied through the normal path
// (idempotent by id, ordered by issued) and acknowledged; it is never forwarded again. A peer
// that fails authentication is refused and logged, and nothing it sent is applied.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { RateLimitedLog } from '../platform/runtime/log-limit.ts';
import { quote } from '../platform/runtime/quote.ts';
import { acceptLink } from '../platform/trust/link-accept.ts';
import { parseSbs } from '../sbs/parse.ts';
import type { SbsDocument } from '../sbs/types.ts';
import type { Effect } from './apply.ts';

const HANDSHAKE_TIMEOUT_MS = 5000;

export interface InboundPeer {
  readonly peerId: string | null;
  readonly remote: string;
  readonly authenticated: boolean;
  readonly since: string;
}

export class PeerIntake {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4 * 1024 * 1024 });
  private readonly inbound = new Map<WebSocket, { peerId: string | null; remote: string; authenticated: boolean; since: string }>();
  private readonly refusals: RateLimitedLog;

  constructor(
    private readonly siteId: string,
    private readonly keyFor: (peerId: string) => Buffer | null,
    private readonly apply: (doc: SbsDocument, peerId: string) => Effect,
    private readonly log: Logger,
  ) {
    this.refusals = new RateLimitedLog(log);
  }

  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, proven?: () => void): void => {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req.socket.remoteAddress ?? '?', proven));
  };

  connections(): InboundPeer[] {
    return [...this.inbound.values()];
  }

  stop(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.inbound.clear();
  }

  private accept(ws: WebSocket, remote: string, proven?: () => void): void {
    const info = { peerId: null as string | null, remote, authenticated: false, since: new Date().toISOString() };
    this.inbound.set(ws, info);
    // The handshake, the refusal (logged 'peer refused', quoted, rate-limited) and the sealed
    // frames are the shared link's (platform/trust/link-accept.ts).
    acceptLink(ws, {
      serverId: this.siteId, keyFor: this.keyFor, sealed: true, helloTimeoutMs: HANDSHAKE_TIMEOUT_MS,
      refuseCode: 4001, refusedMessage: 'peer refused', remote, log: this.log, refusals: this.refusals,
    }, {
      onHello: (peerId) => (info.peerId = peerId),
      onAuthenticated: (link) => {
        info.authenticated = true;
        proven?.();
        this.log.info('peer authenticated', { peer: link.peerId, remote });
        return (body) => link.send(JSON.stringify(this.handleJob(link.peerId, body)));
      },
      onClose: () => this.inbound.delete(ws),
    });
  }

  private handleJob(peerId: string, body: string): { type: 'ack'; id: string; effect: Effect } | { type: 'nack'; id: string | null; reason: string } {
    let id: string | null = null;
    try {
      const msg = JSON.parse(body) as { type?: unknown; doc?: unknown };
      if (msg.type !== 'job' || typeof msg.doc !== 'string') throw new Error('not a job message');
      const doc = parseSbs(msg.doc);
      id = doc.id;
      if (doc.kind !== 'client' && doc.kind !== 'client-remove') throw new Error(`kind ${doc.kind} does not travel between peers`);
      const effect = this.apply(doc, peerId);
      this.log.info('job from peer applied', { peer: peerId, id: doc.id, kind: doc.kind, effect });
      return { type: 'ack', id: doc.id, effect };
    } catch (err) {
      this.log.warn('job from peer refused', { peer: peerId, id, reason: quote(errorMessage(err), 200) });
      return { type: 'nack', id, reason: errorMessage(err) };
    }
  }
}
