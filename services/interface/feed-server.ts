// The local state feed (/feed on TCP 490): the PXE server subscribes and gets the full state,
// then every change in order; it reports events (pxe-booted) which are persisted before they are
// acknowledged. Only local processes may use it: TCP 490 faces the network.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { withoutJobs, type FeedEvent, type FromInterface, type ToInterface } from '../../boot/feed-protocol.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { normalizeGuid } from '../../sbs/guid.ts';
import { normalizeMac } from '../../sbs/mac.ts';
import { isLoopback } from './port-server.ts';
import type { SequencedChange, StateBook } from '../../state/state-book.ts';

export class FeedServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private readonly subscribers = new Set<WebSocket>();
  /** Subscribers that understand the jobs table (said so in their subscribe). */
  private readonly knowJobs = new WeakSet<WebSocket>();
  private unlisten: (() => void) | null = null;

  constructor(private readonly book: StateBook, private readonly log: Logger, private readonly onEvent: (eventId: string, event: FeedEvent) => void) {}

  start(): void {
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

  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const remote = req.socket.remoteAddress;
    if (!isLoopback(remote)) {
      this.log.warn('state feed refused: not a local process', { remote });
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
  };

  private accept(ws: WebSocket): void {
    ws.on('error', (err) => this.log.debug('feed connection error', { err }));
    ws.on('close', () => this.subscribers.delete(ws));
    ws.on('message', (data, isBinary) => {
      try {
        if (isBinary) throw new Error('binary frame');
        this.handle(ws, JSON.parse(data.toString()) as ToInterface);
      } catch (err) {
        this.log.warn('bad message on the state feed', { err });
        send(ws, { type: 'error', message: 'bad message' });
      }
    });
  }

  private handle(ws: WebSocket, msg: ToInterface): void {
    if (msg.type === 'subscribe') {
      const since = typeof msg.since === 'number' && Number.isInteger(msg.since) ? msg.since : null;
      if (msg.jobs === true) this.knowJobs.add(ws);
      const changes = since === null ? null : this.book.changesSince(since);
      if (changes === null) {
        send(ws, { type: 'snapshot', seq: this.book.lastSeq, state: this.stateFor(ws) });
      } else {
        this.sendChanges(ws, changes);
      }
      this.subscribers.add(ws);
      this.log.info('state feed subscriber', { since, resumed: changes !== null, seq: this.book.lastSeq });
      return;
    }
    if (msg.type === 'event') {
      const event = checkEvent(msg.event);
      if (typeof msg.eventId !== 'string' || msg.eventId.length === 0 || msg.eventId.length > 128 || event === null) {
        throw new Error('malformed event');
      }
      this.onEvent(msg.eventId, event);
      send(ws, { type: 'event-ack', eventId: msg.eventId });
      return;
    }
    throw new Error(`unknown message type`);
  }

  private broadcast(changes: readonly SequencedChange[]): void {
    for (const ws of this.subscribers) this.sendChanges(ws, changes);
  }

  private stateFor(ws: WebSocket): ReturnType<StateBook['state']> {
    const state = this.book.state();
    return this.knowJobs.has(ws) ? state : withoutJobs(state);
  }

  /** Changes in order; a subscriber that does not know jobs gets a snapshot where any touches them. */
  private sendChanges(ws: WebSocket, changes: readonly SequencedChange[]): void {
    if (!this.knowJobs.has(ws) && changes.some((c) => c.change.table === 'jobs')) {
      // Sent right after the batch committed (or on resume): the book's state is as of its last seq.
      send(ws, { type: 'snapshot', seq: this.book.lastSeq, state: this.stateFor(ws) });
      return;
    }
    for (const c of changes) send(ws, { type: 'change', seq: c.seq, change: c.change });
  }
}

function send(ws: WebSocket, msg: FromInterface): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
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
