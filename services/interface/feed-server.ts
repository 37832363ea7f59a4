// The local state feed (/feed on TCP 490): the PXE server subscribes and gets the full state,
// then every change in order; it reports events (pxe-booted) which are persisted before they are
// acknowledged. Only our own processes may use it. TCP 490 faces the network, so a connection
// must come from loopback, and loopback is open to every local user, so it must also prove it
// holds the local key (<data>/run/local.key, mode 0600: platform/trust/local-key.ts) through the
// challenge-response of peer-handshake.ts before it reads or sends anything.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { withoutJobs, type FeedEvent, type FromInterface, type ToInterface } from '../../boot/feed-protocol.ts';
import { errorMessage } from '../../platform/runtime/errors.ts';
import { RateLimitedLog } from '../../platform/runtime/log-limit.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { quote } from '../../platform/runtime/quote.ts';
import { acceptLink, type AcceptedLink } from '../../platform/trust/link-accept.ts';
import { LOCAL_SERVER_ID, type LocalKey } from '../../platform/trust/local-key.ts';
import { normalizeGuid } from '../../sbs/guid.ts';
import { normalizeMac } from '../../sbs/mac.ts';
import { isLoopback } from './port-server.ts';
import type { SequencedChange, StateBook } from '../../state/state-book.ts';

const HELLO_TIMEOUT_MS = 5000;

export class FeedServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private readonly subscribers = new Set<AcceptedLink>();
  private readonly refusals: RateLimitedLog;
  /** Subscribers that understand the jobs table (said so in their subscribe). */
  private readonly knowJobs = new WeakSet<AcceptedLink>();
  private unlisten: (() => void) | null = null;

  constructor(private readonly book: StateBook, private readonly log: Logger, private readonly onEvent: (eventId: string, event: FeedEvent) => void, private readonly localKey: LocalKey) {
    this.refusals = new RateLimitedLog(log);
  }

  start(): void {
    this.localKey.get(); // made now if this is the first service to start: the server reads it
    this.unlisten = this.book.onChanges((changes) => this.broadcast(changes));
  }

  stop(): void {
    this.unlisten?.();
    for (const ws of this.wss.clients) ws.terminate();
    this.subscribers.clear();
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, proven?: () => void): void => {
    const remote = req.socket.remoteAddress;
    if (!isLoopback(remote)) {
      this.refusals.warn('state feed refused: not a local process', { remote });
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, `${remote}:${req.socket.remotePort}`, proven));
  };

  private accept(ws: WebSocket, remote: string, proven?: () => void): void {
    let subscriber: AcceptedLink | null = null;
    acceptLink(ws, {
      serverId: LOCAL_SERVER_ID, keyFor: () => this.localKey.get(), sealed: false, helloTimeoutMs: HELLO_TIMEOUT_MS,
      refuseCode: 4001, refusedMessage: 'state feed refused: no proof of the local key', remote, log: this.log, refusals: this.refusals,
    }, {
      onAuthenticated: (link) => {
        proven?.();
        return (text) => {
          try {
            if (this.handle(link, JSON.parse(text) as ToInterface)) subscriber = link;
          } catch (err) {
            this.log.warn('bad message on the state feed', { remote, reason: quote(errorMessage(err), 200) });
            send(link, { type: 'error', message: 'bad message' });
          }
        };
      },
      onClose: () => {
        if (subscriber !== null) this.subscribers.delete(subscriber);
      },
    });
  }

  /** Returns true when the link subscribed. */
  private handle(link: AcceptedLink, msg: ToInterface): boolean {
    if (msg.type === 'subscribe') {
      const since = typeof msg.since === 'number' && Number.isInteger(msg.since) ? msg.since : null;
      if (msg.jobs === true) this.knowJobs.add(link);
      const changes = since === null ? null : this.book.changesSince(since);
      if (changes === null) {
        send(link, { type: 'snapshot', seq: this.book.lastSeq, state: this.stateFor(link) });
      } else {
        this.sendChanges(link, changes);
      }
      this.subscribers.add(link);
      this.log.info('state feed subscriber', { since, resumed: changes !== null, seq: this.book.lastSeq });
      return true;
    }
    if (msg.type === 'event') {
      const event = checkEvent(msg.event);
      if (typeof msg.eventId !== 'string' || msg.eventId.length === 0 || msg.eventId.length > 128 || event === null) {
        throw new Error('malformed event');
      }
      this.onEvent(msg.eventId, event);
      send(link, { type: 'event-ack', eventId: msg.eventId });
      return false;
    }
    throw new Error(`unknown message type`);
  }

  private broadcast(changes: readonly SequencedChange[]): void {
    for (const link of this.subscribers) this.sendChanges(link, changes);
  }

  private stateFor(link: AcceptedLink): ReturnType<StateBook['state']> {
    const state = this.book.state();
    return this.knowJobs.has(link) ? state : withoutJobs(state);
  }

  /** Changes in order; a subscriber that does not know jobs gets a snapshot where any touches them. */
  private sendChanges(link: AcceptedLink, changes: readonly SequencedChange[]): void {
    if (!this.knowJobs.has(link) && changes.some((c) => c.change.table === 'jobs')) {
      // Sent right after the batch committed (or on resume): the book's state is as of its last seq.
      send(link, { type: 'snapshot', seq: this.book.lastSeq, state: this.stateFor(link) });
      return;
    }
    for (const c of changes) send(link, { type: 'change', seq: c.seq, change: c.change });
  }
}

function send(link: AcceptedLink, msg: FromInterface): void {
  link.send(JSON.stringify(msg));
}

function checkEvent(e: unknown): FeedEvent | null {
  if (typeof e !== 'object' || e === null) return null;
  const { kind, mac, image, at, jobId } = e as Record<string, unknown>;
  if (kind !== 'pxe-booted' || typeof mac !== 'string' || typeof image !== 'string' || typeof at !== 'string') return null;
  const normal = normalizeMac(mac);
  if (normal === null || !Number.isFinite(Date.parse(at))) return null;
  if (jobId !== undefined && (typeof jobId !== 'string' || normalizeGuid(jobId) === null)) return null;
  return { kind, mac: normal, image, at, ...(typeof jobId === 'string' ? { jobId: normalizeGuid(jobId)! } : {}) };
}
