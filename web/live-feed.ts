// The live view behind the status page and `netboot top`: while anyone watches, the PXE server's
// recent machines are asked for every `fastMs` (only those seen since the last answer: a machine
// shows within a fraction of a second of its request), and the whole view every `fullMs`. Each
// change goes to every watcher; nothing is asked while nobody watches.
import type { ServerResponse } from 'node:http';
import type { Config } from '../platform/runtime/config.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { recentMachines, type MachineView, type SiteSnapshot } from './site-snapshot.ts';

export type Watcher = (snapshot: SiteSnapshot) => void;

export interface FeedTimings {
  readonly fastMs: number;
  readonly fullMs: number;
}

const MACHINES_KEPT = 50;
const KEEPALIVE_MS = 15_000;

export class LiveFeed {
  private readonly watchers = new Set<Watcher>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private last: SiteSnapshot | null = null;
  private lastFullMs = 0;
  private newestMs = 0;
  private readonly t: FeedTimings;

  constructor(private readonly config: Config, private readonly collect: () => Promise<SiteSnapshot>, private readonly log: Logger, timings: Partial<FeedTimings> = {}) {
    this.t = { fastMs: 250, fullMs: 2000, ...timings };
  }

  get watching(): number {
    return this.watchers.size;
  }

  watch(w: Watcher): () => void {
    this.watchers.add(w);
    if (this.last !== null) w(this.last);
    if (this.timer === null) {
      this.lastFullMs = 0;
      this.timer = setInterval(() => void this.tick(), this.t.fastMs);
      void this.tick();
    }
    return () => {
      this.watchers.delete(w);
      if (this.watchers.size === 0) this.stop();
    };
  }

  /** A server-sent event stream (text/event-stream) of `snapshot` events on `res`. */
  subscribe(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    const unwatch = this.watch((s) => res.write(`event: snapshot\ndata: ${JSON.stringify(s)}\n\n`));
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    res.on('close', () => {
      clearInterval(keepalive);
      unwatch();
    });
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.last = null;
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = Date.now();
      let next: SiteSnapshot | null = null;
      if (this.last === null || now - this.lastFullMs >= this.t.fullMs) {
        next = await this.collect();
        this.lastFullMs = now;
      } else {
        const fresh = await recentMachines(this.config.paths.data, this.newestMs);
        if (fresh.length > 0) {
          next = { ...this.last, at: new Date().toISOString(), machines: mergeMachines(fresh, this.last.machines) };
          this.lastFullMs = 0; // the figures follow at the next tick
        }
      }
      if (next === null || this.timer === null) return;
      for (const m of next.machines) this.newestMs = Math.max(this.newestMs, m.atMs);
      const changed = this.last === null || JSON.stringify({ ...next, at: '' }) !== JSON.stringify({ ...this.last, at: '' });
      this.last = next;
      if (changed) for (const w of this.watchers) w(next);
    } catch (err) {
      this.log.warn('live view: gathering failed', { err });
    } finally {
      this.busy = false;
    }
  }
}

function mergeMachines(fresh: readonly MachineView[], old: readonly MachineView[]): MachineView[] {
  const seen = new Set(fresh.map((m) => m.mac));
  return [...fresh, ...old.filter((m) => !seen.has(m.mac))].sort((a, b) => b.atMs - a.atMs).slice(0, MACHINES_KEPT);
}
