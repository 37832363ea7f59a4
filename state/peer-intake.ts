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
import { ServerHandshake, type SealedChannel } from '../platform/trust/peer-handshake.ts';
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

  constructor(
    private readonly siteId: string,
    private readonly keyFor: (peerId: string) => Buffer | null,
    private readonly apply: (doc: SbsDocument, peerId: string) => Effect,
    private readonly log: Logger,
  ) {}

  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req.socket.remoteAddress ?? '?'));
  };

  connections(): InboundPeer[] {
    return [...this.inbound.values()];
  }

  stop(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.inbound.clear();
  }

  private accept(ws: WebSocket, remote: string): void {
    const info = { peerId: null as string | null, remote, authenticated: false, since: new Date().toISOString() };
    this.inbound.set(ws, info);
    const handshake = new ServerHandshake(this.siteId, this.keyFor);
    let channel: SealedChannel | null = null;
    let refused = false;
    const refuse = (reason: string): void => {
      if (refused) return;
      refused = true;
      this.log.warn('peer refused', { remote, peer: handshake.peerId, reason });
      ws.close(4001, 'authentication failed');
      setTimeout(() => ws.terminate(), 1000).unref();
    };
    const timer = setTimeout(() => refuse('no handshake in time'), HANDSHAKE_TIMEOUT_MS);
    ws.on('close', () => {
      clearTimeout(timer);
      this.inbound.delete(ws);
    });
    ws.on('error', (err) => this.log.debug('peer connection error', { remote, err }));
    ws.send(handshake.challenge);
    ws.on('message', (data, isBinary) => {
      if (refused) return;
      const text = isBinary ? '' : data.toString();
      if (channel === null) {
        // First frame: the hello. Anything wrong ends the connection before anything is applied.
        try {
          const ok = handshake.accept(text);
          channel = ok.channel;
          clearTimeout(timer);
          info.peerId = ok.peerId;
          info.authenticated = true;
          ws.send(ok.welcome);
          this.log.info('peer authenticated', { peer: ok.peerId, remote });
        } catch (err) {
          info.peerId = handshake.peerId;
          refuse(errorMessage(err));
        }
        return;
      }
      let body: string;
      try {
        body = channel.open(text);
      } catch (err) {
        return refuse(errorMessage(err));
      }
      const reply = this.handleJob(info.peerId as string, body);
      ws.send(channel.seal(JSON.stringify(reply)));
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
      this.log.warn('job from peer refused', { peer: peerId, id, reason: errorMessage(err) });
      return { type: 'nack', id, reason: errorMessage(err) };
    }
  }
}
