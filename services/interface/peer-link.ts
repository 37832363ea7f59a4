// The sending side of the peer channel: one persistent, authenticated connection (AuthLink) to
// one peer's /peer endpoint, draining that peer's outbox. Jobs are pipelined (several in flight) and
// acknowledged in order; an unacknowledged job stays in the durable outbox and is sent again after
// a reconnect (the receiver is idempotent by id).
import { peerJobDelivered } from '../../platform/metrics/replication-metrics.ts';
import type { BackoffPolicy } from '../../platform/runtime/backoff.ts';
import type { PeerConfig } from '../../platform/runtime/config.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { quote } from '../../platform/runtime/quote.ts';
import { AuthLink } from '../../platform/trust/auth-link.ts';
import type { PeerLinkStatus, PeerOutbox, QueuedJob } from '../../state/peer-outbox.ts';

export type { PeerLinkStatus };

const IN_FLIGHT = 64;


export class PeerLink {
  private readonly link: AuthLink;
  private inFlight: QueuedJob[] = [];
  private delivered = 0;
  private lastLatencyMs: number | null = null;
  /** Latencies (queued -> acknowledged) since start, for benchmarks and `netboot peers`. */
  readonly latencies: number[] = [];

  constructor(
    private readonly peer: PeerConfig,
    private readonly url: string,
    siteId: string,
    key: Buffer,
    private readonly outbox: PeerOutbox,
    private readonly log: Logger,
    backoff: BackoffPolicy = { baseMs: 250, capMs: 30_000 },
  ) {
    this.link = new AuthLink(
      { url, key: () => key, selfId: siteId, serverId: peer.id, sealed: true, backoff, maxPayload: 4 * 1024 * 1024 },
      {
        onUp: () => {
          this.log.info('connected to peer', { peer: this.peer.id, url: this.url });
          this.pump();
        },
        onMessage: (text) => this.onReply(JSON.parse(text) as { type: string; id: string | null; effect?: string; reason?: string }),
        onDown: () => (this.inFlight = []),
      },
      log,
    );
  }

  start(): void {
    this.link.start();
  }

  stop(): void {
    this.link.stop();
    this.inFlight = [];
  }

  /** New jobs were queued for this peer. */
  kick(): void {
    if (this.link.up) this.pump();
  }

  status(): PeerLinkStatus {
    return {
      id: this.peer.id, address: this.peer.address, connected: this.link.open,
      authenticated: this.link.up, queued: this.outbox.count(this.peer.id), delivered: this.delivered,
      lastLatencyMs: this.lastLatencyMs, lastError: this.link.lastError,
    };
  }

  private pump(): void {
    if (!this.link.up) return;
    if (this.inFlight.length >= IN_FLIGHT) return;
    const sent = new Set(this.inFlight.map((j) => j.instructionId));
    for (const job of this.outbox.next(this.peer.id, IN_FLIGHT + this.inFlight.length)) {
      if (this.inFlight.length >= IN_FLIGHT) break;
      if (sent.has(job.instructionId)) continue;
      this.inFlight.push(job);
      this.link.send(JSON.stringify({ type: 'job', doc: job.doc }));
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
      this.log.error('peer refused a job; dropped from the outbox', { peer: this.peer.id, id: job.instructionId, reason: quote(reply.reason, 200) });
    }
    this.pump();
  }
}
