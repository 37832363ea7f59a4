// The sending side of the peer channel: one persistent, authenticated connection to one peer's
// /peer endpoint, draining that peer's outbox. Jobs are pipelined (several in flight) and
// acknowledged in order; an unacknowledged job stays in the durable outbox and is sent again after
// a reconnect (the receiver is idempotent by id).
import { peerJobDelivered } from '../../platform/metrics/replication-metrics.ts';
import WebSocket from 'ws';
import { backoffDelayMs } from '../../platform/runtime/backoff.ts';
import type { PeerConfig } from '../../platform/runtime/config.ts';
import { errorMessage } from '../../platform/runtime/errors.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { ClientHandshake, type SealedChannel } from '../../platform/trust/peer-handshake.ts';
import type { PeerOutbox, QueuedJob } from '../../state/peer-outbox.ts';

const IN_FLIGHT = 64;

export interface PeerLinkStatus {
  readonly id: string;
  readonly address: string;
  readonly connected: boolean;
  readonly authenticated: boolean;
  readonly queued: number;
  readonly delivered: number;
  readonly lastLatencyMs: number | null;
  readonly lastError: string | null;
}

export class PeerLink {
  private ws: WebSocket | null = null;
  private channel: SealedChannel | null = null;
  private inFlight: QueuedJob[] = [];
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private delivered = 0;
  private lastLatencyMs: number | null = null;
  private lastError: string | null = null;
  /** Latencies (queued -> acknowledged) since start, for benchmarks and `netboot peers`. */
  readonly latencies: number[] = [];

  constructor(
    private readonly peer: PeerConfig,
    private readonly url: string,
    private readonly siteId: string,
    private readonly key: Buffer,
    private readonly outbox: PeerOutbox,
    private readonly log: Logger,
    private readonly backoff = { baseMs: 250, capMs: 30_000 },
  ) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.ws?.terminate();
    this.ws = null;
  }

  /** New jobs were queued for this peer. */
  kick(): void {
    if (this.channel !== null) this.pump();
  }

  status(): PeerLinkStatus {
    return {
      id: this.peer.id, address: this.peer.address, connected: this.ws?.readyState === WebSocket.OPEN,
      authenticated: this.channel !== null, queued: this.outbox.count(this.peer.id), delivered: this.delivered,
      lastLatencyMs: this.lastLatencyMs, lastError: this.lastError,
    };
  }

  private connect(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.url, { handshakeTimeout: 5000 });
    this.ws = ws;
    const handshake = new ClientHandshake(this.key, this.siteId, this.peer.id);
    ws.on('message', (data) => {
      const text = data.toString();
      try {
        if (this.channel === null) {
          const step = handshake.next(text);
          if (step.reply !== null) return ws.send(step.reply);
          this.channel = step.channel;
          this.failures = 0;
          this.lastError = null;
          this.log.info('connected to peer', { peer: this.peer.id, url: this.url });
          this.pump();
        } else {
          this.onReply(JSON.parse(this.channel.open(text)) as { type: string; id: string | null; effect?: string; reason?: string });
        }
      } catch (err) {
        this.lastError = errorMessage(err);
        this.log.warn('peer channel failed', { peer: this.peer.id, reason: this.lastError });
        ws.terminate();
      }
    });
    ws.on('error', (err) => {
      this.lastError = errorMessage(err);
    });
    ws.on('close', (code, reason) => {
      if (this.ws === ws) this.ws = null;
      this.channel = null;
      this.inFlight = [];
      if (code === 4001) this.lastError = `refused by peer: ${reason.toString() || 'authentication failed'}`;
      if (this.stopped) return;
      const delay = backoffDelayMs(++this.failures, this.backoff);
      this.log.debug('peer connection closed; reconnecting', { peer: this.peer.id, code, retryInMs: delay, reason: this.lastError });
      this.timer = setTimeout(() => {
        this.timer = null;
        this.connect();
      }, delay);
    });
  }

  private pump(): void {
    const ws = this.ws;
    const channel = this.channel;
    if (ws === null || channel === null) return;
    if (this.inFlight.length >= IN_FLIGHT) return;
    const sent = new Set(this.inFlight.map((j) => j.instructionId));
    for (const job of this.outbox.next(this.peer.id, IN_FLIGHT + this.inFlight.length)) {
      if (this.inFlight.length >= IN_FLIGHT) break;
      if (sent.has(job.instructionId)) continue;
      this.inFlight.push(job);
      ws.send(channel.seal(JSON.stringify({ type: 'job', doc: job.doc })));
    }
  }

  /** Replies come in the order jobs were sent. */
  private onReply(reply: { type: string; id: string | null; effect?: string; reason?: string }): void {
    const job = this.inFlight.shift();
    if (job === undefined) throw new Error('reply with no job in flight');
    this.outbox.remove(this.peer.id, job.instructionId);
    if (reply.type === 'ack') {
      this.delivered++;
      this.lastLatencyMs = Date.now() - job.queuedAtMs;
      this.latencies.push(this.lastLatencyMs);
      peerJobDelivered(this.peer.id, this.lastLatencyMs);
      if (this.latencies.length > 10_000) this.latencies.shift();
      this.log.info('job delivered to peer', { peer: this.peer.id, id: job.instructionId, effect: reply.effect, latencyMs: this.lastLatencyMs });
    } else {
      // The peer checked it and refused it: sending it again would not change that.
      this.log.error('peer refused a job; dropped from the outbox', { peer: this.peer.id, id: job.instructionId, reason: reply.reason });
    }
    this.pump();
  }
}
