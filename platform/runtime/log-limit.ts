// A log line that others can make us write (a refused connection, a refused hello) is written at
// most `perWindow` times per window for each message; the rest are counted and the count is
// written with the next line that gets through, so a flood costs one line per window, not one per
// attempt.
import type { LogFields, LogLevel, Logger } from './logger.ts';

interface Window {
  startMs: number;
  written: number;
  suppressed: number;
}

export class RateLimitedLog {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly log: Logger,
    private readonly perWindow = 10,
    private readonly windowMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(msg: string, fields?: LogFields): void {
    this.write('warn', msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.write('info', msg, fields);
  }

  private write(level: LogLevel, msg: string, fields?: LogFields): void {
    const t = this.now();
    let w = this.windows.get(msg);
    if (w === undefined || t - w.startMs >= this.windowMs) {
      const suppressed = w?.suppressed ?? 0;
      w = { startMs: t, written: 0, suppressed };
      this.windows.set(msg, w);
    }
    if (w.written >= this.perWindow) {
      w.suppressed++;
      return;
    }
    w.written++;
    const extra = w.suppressed > 0 ? { suppressedBefore: w.suppressed } : {};
    w.suppressed = 0;
    this.log[level](msg, { ...fields, ...extra });
  }
}
