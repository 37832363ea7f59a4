// Delivers recorded events to the management server (`POST {url}/pxe/events`) from the durable
// outbox in SQLite: oldest first, in batches, retried with backoff until accepted, so nothing is
// lost while the management server is away. Without a management server, events stay recorded.
import { errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { statements, type Db } from './store.ts';

export interface OutboxOptions {
  readonly url: string;
  readonly serverId: string;
  readonly timeoutMs: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

export class EventOutbox {
  private readonly st;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private again = false;
  private backoffMs: number;
  private stopped = false;

  constructor(db: Db, private readonly opts: OutboxOptions, private readonly log: Logger) {
    this.st = statements(db);
    this.backoffMs = opts.minBackoffMs ?? 1000;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  pendingCount(): number {
    return this.st.pendingEvents.all(1_000_000).length;
  }

  /** Something new is in the outbox: deliver now unless a delivery is under way. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    void this.deliver();
  }

  private async deliver(): Promise<void> {
    this.running = true;
    let delay: number | null = null;
    try {
      for (;;) {
        this.again = false;
        const batch = this.st.pendingEvents.all(100);
        if (batch.length === 0) break;
        const events = batch.map((e) => ({ eventId: e.eventId, server: this.opts.serverId, ...(JSON.parse(e.body) as object) }));
        const res = await fetch(`${this.opts.url}/pxe/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ events }),
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`management server answered ${res.status}`);
        const now = new Date().toISOString();
        for (const e of batch) this.st.markDelivered.run(now, e.eventId);
        this.log.info('events delivered to the management server', { count: batch.length });
        this.backoffMs = this.opts.minBackoffMs ?? 1000;
      }
    } catch (err) {
      delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs ?? 60_000);
      this.log.warn('cannot deliver events to the management server; will retry', { err: errorMessage(err), retryInMs: delay });
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    if (delay !== null) this.timer = setTimeout(() => { this.timer = null; void this.deliver(); }, delay);
    else if (this.again) void this.deliver();
  }
}
