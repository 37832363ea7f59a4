// Log lines for refusals a flood can cause (a cap on transfers, the buffer budget): the first
// refusal of each kind is logged at once, then at most one line per kind per interval, and a
// line at the end of a busy interval says how many were not logged. A burst of spoofed requests
// then costs the journal a few lines, and every reason still shows up.
import type { LogFields, Logger } from '../../platform/runtime/logger.ts';

export const REFUSAL_LOG_INTERVAL_MS = 10_000;

interface KindState {
  /** When a line of this kind was last written (monotonic ms). */
  last: number;
  /** Refusals since then that were not logged. */
  quiet: number;
  timer: NodeJS.Timeout | null;
  /** The newest refusal not logged, for the summary line. */
  msg: string;
  fields: LogFields;
}

export class RefusalLog {
  private readonly kinds = new Map<string, KindState>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = REFUSAL_LOG_INTERVAL_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A refusal of `kind`: logged as `msg` with `fields` unless one was logged within the interval. */
  refused(kind: string, msg: string, fields: LogFields): void {
    const t = this.now();
    const k = this.kinds.get(kind);
    if (k === undefined || t - k.last >= this.intervalMs) {
      const notLogged = k?.quiet ?? 0;
      if (k?.timer) clearTimeout(k.timer);
      this.kinds.set(kind, { last: t, quiet: 0, timer: null, msg, fields });
      this.log.warn(msg, notLogged > 0 ? { ...fields, notLogged } : fields);
      return;
    }
    k.quiet++;
    k.msg = msg;
    k.fields = fields;
    if (k.timer === null) {
      k.timer = setTimeout(() => this.flush(k), Math.max(0, k.last + this.intervalMs - t));
      k.timer.unref();
    }
  }

  /** The summary of an interval: how many were not logged, with the newest one's details. */
  private flush(k: KindState): void {
    k.timer = null;
    if (k.quiet === 0) return;
    this.log.warn(k.msg, { ...k.fields, notLogged: k.quiet, intervalMs: this.intervalMs });
    k.quiet = 0;
    k.last = this.now();
  }

  /** Pending summaries are written now (server stop). */
  close(): void {
    for (const k of this.kinds.values()) {
      if (k.timer === null) continue;
      clearTimeout(k.timer);
      this.flush(k);
    }
  }
}
