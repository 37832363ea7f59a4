// Tells the Signal service that the PXE server (re)started, retrying with backoff until Signal
// acknowledges. Never blocks serving: it runs beside everything else.
import type { BackoffPolicy } from '../../platform/runtime/backoff.ts';
import { backoffDelayMs } from '../../platform/runtime/backoff.ts';
import { errorMessage } from '../../platform/runtime/errors.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';

const RETRY: BackoffPolicy = { baseMs: 500, capMs: 30000 };

export class SignalAnnouncer implements Lifecycle {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private failures = 0;
  announced = false;

  constructor(private readonly announce: () => Promise<void>, private readonly log: Logger) {}

  async start(): Promise<void> {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.attempt();
    }, delayMs);
  }

  private async attempt(): Promise<void> {
    try {
      await this.announce();
      this.announced = true;
      this.log.info('signal told of our start');
    } catch (err) {
      if (this.stopped) return;
      this.failures++;
      const delayMs = backoffDelayMs(this.failures, RETRY);
      this.log[this.failures === 1 ? 'warn' : 'debug']('signal unavailable; retrying', { err: errorMessage(err), delayMs });
      this.schedule(delayMs);
    }
  }
}
