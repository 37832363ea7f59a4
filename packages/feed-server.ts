// Server side of the package feed: authenticates each connecting peer with the peer-auth
// challenge-response (peer-handshake.ts, as /peer does), refusing and logging anyone else,
// answers its subscribe with what it missed, then pushes every ref or status change as it commits.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { ServerHandshake, type SealedChannel } from '../platform/trust/peer-handshake.ts';
import { decodeSubscribe, type RecordsMessage } from './feed-messages.ts';
import type { FeedRecord, PackageDb } from './package-db.ts';
import type { PeerKeys } from '../platform/trust/peer-keys.ts';

const HELLO_TIMEOUT_MS = 5000;

interface Session {
  readonly peerId: string;
  readonly channel: SealedChannel;
  subscribed: boolean;
}

export class PackageFeedServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private readonly sessions = new Map<WebSocket, Session>();

  constructor(private readonly siteId: string, private readonly keys: PeerKeys, private readonly db: PackageDb, private readonly log: Logger) {}

  get subscribers(): string[] {
    return [...this.sessions.values()].filter((s) => s.subscribed).map((s) => s.peerId);
  }

  stop(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.sessions.clear();
  }

  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, remote));
  };

  /** Pushes a committed change to every subscribed peer. */
  broadcast(record: FeedRecord): void {
    for (const [ws, s] of this.sessions) {
      if (s.subscribed) this.send(ws, s, { type: 'records', epoch: this.db.epoch, cursor: record.logSeq, records: [record] });
    }
  }

  private accept(ws: WebSocket, remote: string): void {
    const handshake = new ServerHandshake(this.siteId, (peerId) => this.keys.keyFor(peerId));
    let refused = false;
    const refuse = (reason: string): void => {
      if (refused) return;
      refused = true;
      this.log.warn('package feed: peer refused', { remote, peer: handshake.peerId ?? undefined, reason });
      ws.close(4401, 'authentication failed');
    };
    const timer = setTimeout(() => refuse('no hello in time'), HELLO_TIMEOUT_MS);
    ws.on('error', (err) => this.log.debug('package feed connection error', { remote, err }));
    ws.on('close', () => {
      clearTimeout(timer);
      const s = this.sessions.get(ws);
      if (s !== undefined) this.log.info('package feed: peer disconnected', { peer: s.peerId, remote });
      this.sessions.delete(ws);
    });
    ws.send(handshake.challenge);
    ws.on('message', (data, isBinary) => {
      if (refused) return;
      const text = isBinary ? '' : data.toString();
      const session = this.sessions.get(ws);
      if (session === undefined) {
        clearTimeout(timer);
        try {
          const { peerId, welcome, channel } = handshake.accept(text);
          ws.send(welcome);
          this.sessions.set(ws, { peerId, channel, subscribed: false });
          this.log.info('package feed: peer authenticated', { peer: peerId, remote });
        } catch (err) {
          refuse(errorMessage(err));
        }
        return;
      }
      try {
        const sub = decodeSubscribe(session.channel.open(text));
        const since = sub.epoch === this.db.epoch ? sub.cursor : 0;
        const records = this.db.changesSince(since);
        this.send(ws, session, { type: 'records', epoch: this.db.epoch, cursor: Math.max(since, this.db.lastLogSeq), records });
        session.subscribed = true;
        this.log.info('package feed: peer subscribed', { peer: session.peerId, since, sent: records.length });
      } catch (err) {
        this.log.warn('package feed: bad frame from peer; closing', { peer: session.peerId, remote, err: errorMessage(err) });
        ws.close(4400, 'bad frame');
      }
    });
  }

  private send(ws: WebSocket, s: Session, msg: RecordsMessage): void {
    ws.send(s.channel.seal(JSON.stringify(msg)));
  }
}
