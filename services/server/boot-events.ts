// `once` boots consumed here: the pxe-booted events not yet acknowledged by the Interface (kept in
// <data>/server/pending-events.json so a restart resends them with the same eventId), and the
// machines to treat as `local` until the feed shows the Interface's own change.
import { mkdirSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../platform/runtime/atomic-file.ts';
import { errorMessage } from '../../platform/runtime/errors.ts';
import type { FeedChange, FeedState, PxeBootedEvent } from '../../boot/feed-protocol.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { machineAction } from '../../boot/pxe-policy.ts';

export interface PendingEvent {
  readonly eventId: string;
  readonly event: PxeBootedEvent;
}

interface Consumed {
  readonly image: string;
  readonly eventId: string;
  acked: boolean;
}

export class BootEvents {
  private readonly pending = new Map<string, PendingEvent>();
  private readonly consumed = new Map<string, Consumed>();
  /** The keys of `consumed`, kept as a Set so each request reads it without copying. */
  private readonly macs = new Set<string>();

  constructor(private readonly file: string, private readonly log: Logger) {}

  /** Loads events a previous run left unacknowledged. */
  load(): void {
    let list: PendingEvent[];
    try {
      list = JSON.parse(readFileSync(this.file, 'utf8')) as PendingEvent[];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.error('pending events unreadable; starting without them', { file: this.file, err: errorMessage(err) });
      return;
    }
    for (const p of list) {
      this.pending.set(p.eventId, p);
      this.consumed.set(p.event.mac, { image: p.event.image, eventId: p.eventId, acked: false });
      this.macs.add(p.event.mac);
    }
    if (list.length > 0) this.log.info('unacknowledged pxe-booted events to resend', { count: list.length });
  }

  /** Machines whose once boot is consumed but may still show as `boot` in the feed state (live view). */
  consumedMacs(): ReadonlySet<string> {
    return this.macs;
  }

  isConsumed(mac: string): boolean {
    return this.consumed.has(mac);
  }

  /** Records a consumed once boot; returns the event to send. */
  consume(mac: string, image: string, at: Date, jobId?: string): PendingEvent {
    const p: PendingEvent = { eventId: randomUUID(), event: { kind: 'pxe-booted', mac, image, at: at.toISOString(), ...(jobId === undefined ? {} : { jobId }) } };
    this.pending.set(p.eventId, p);
    this.consumed.set(mac, { image, eventId: p.eventId, acked: false });
    this.macs.add(mac);
    this.persist();
    return p;
  }

  unacknowledged(): PendingEvent[] {
    return [...this.pending.values()];
  }

  acknowledge(eventId: string, state: FeedState): void {
    const p = this.pending.get(eventId);
    if (p === undefined) return;
    this.pending.delete(eventId);
    this.persist();
    const c = this.consumed.get(p.event.mac);
    if (c?.eventId !== eventId) return;
    c.acked = true;
    // The Interface's change may already have arrived: then the override has done its job.
    if (!this.stillShowsBootOnce(p.event.mac, c.image, state)) this.forget(p.event.mac);
  }

  /** After the feed applied a change: acknowledged overrides end at the next change to their client. */
  onChange(change: FeedChange | null): void {
    if (change !== null && change.table !== 'clients' && change.table !== 'jobs') return;
    for (const [mac, c] of this.consumed) {
      if (!c.acked) continue;
      const touches = change === null || change.op === 'replace'
        || (change.table === 'jobs' ? change.op === 'delete' || change.job.mac === mac : change.op === 'put' ? change.client.mac === mac : change.mac === mac);
      if (touches) this.forget(mac);
    }
  }

  private forget(mac: string): void {
    this.consumed.delete(mac);
    this.macs.delete(mac);
  }

  private stillShowsBootOnce(mac: string, image: string, state: FeedState): boolean {
    const m = machineAction(mac, state);
    return !('none' in m) && m.action.type === 'boot' && m.action.once && m.action.image === image;
  }

  private persist(): void {
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileAtomic(this.file, JSON.stringify([...this.pending.values()]));
    } catch (err) {
      this.log.error('cannot persist pending events', { file: this.file, err: errorMessage(err) });
    }
  }
}
