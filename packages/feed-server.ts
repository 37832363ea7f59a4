// Server side of the package feed: authenticates each connecting peer with the peer-auth
// challenge-response (the shared platform/trust/link-accept.ts, as /peer does), refusing and logging anyone else,
// answers its subscribe with what it missed, then pushes every ref or status change as it commits.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { RateLimitedLog } from '../platform/runtime/log-limit.ts';
import { quote } from '../platform/runtime/quote.ts';
import { acceptLink, type AcceptedLink } from '../platform/trust/link-accept.ts';
import { decodeSubscribe, type RecordsMessage } from './feed-messages.ts';
import type { FeedRecord, PackageDb } from './package-db.ts';
import type { PeerKeys } from '../platform/trust/peer-keys.ts';

const HELLO_TIMEOUT_MS = 5000;

interface Session {
  readonly peerId: string;
  readonly link: AcceptedLink;
  subscribed: boolean;
}

export class PackageFeedServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private readonly sessions = new Map<WebSocket, Session>();
  private readonly refusals: RateLimitedLog;

  constructor(private readonly siteId: string, private readonly keys: PeerKeys, private readonly db: PackageDb, private readonly log: Logger) {
    this.refusals = new RateLimitedLog(log);
  }

  get subscribers(): string[] {
    return [...this.sessions.values()].filter((s) => s.subscribed).map((s) => s.peerId);
  }

  stop(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.sessions.clear();
  }

  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, proven?: () => void): void => {
    const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, remote, proven));
  };

  /** Pushes a committed change to every subscribed peer. */
  broadcast(record: FeedRecord): void {
    for (const s of this.sessions.values()) {
      if (s.subscribed) this.send(s, { type: 'records', epoch: this.db.epoch, cursor: record.logSeq, records: [record] });
    }
  }

  private accept(ws: WebSocket, remote: string, proven?: () => void): void {
    acceptLink(ws, {
      serverId: this.siteId, keyFor: (peerId) => this.keys.keyFor(peerId), sealed: true, helloTimeoutMs: HELLO_TIMEOUT_MS,
      refuseCode: 4401, refusedMessage: 'package feed: peer refused', remote, log: this.log, refusals: this.refusals,
    }, {
      onAuthenticated: (link) => {
        const session: Session = { peerId: link.peerId, link, subscribed: false };
        this.sessions.set(ws, session);
        proven?.();
        this.log.info('package feed: peer authenticated', { peer: link.peerId, remote });
        return (text) => {
          try {
            const sub = decodeSubscribe(text);
            const since = sub.epoch === this.db.epoch ? sub.cursor : 0;
            const records = this.db.changesSince(since);
            this.send(session, { type: 'records', epoch: this.db.epoch, cursor: Math.max(since, this.db.lastLogSeq), records });
            session.subscribed = true;
            this.log.info('package feed: peer subscribed', { peer: session.peerId, since, sent: records.length });
          } catch (err) {
            this.log.warn('package feed: bad frame from peer; closing', { peer: session.peerId, remote, err: quote(errorMessage(err), 200) });
            link.close(4400, 'bad frame');
          }
        };
      },
      onClose: () => {
        const s = this.sessions.get(ws);
        if (s !== undefined) this.log.info('package feed: peer disconnected', { peer: s.peerId, remote });
        this.sessions.delete(ws);
      },
    });
  }

  private send(s: Session, msg: RecordsMessage): void {
    s.link.send(JSON.stringify(msg));
  }
}
