// Runs the start-up sequence when asked (Signal's own start, each PXE server start), one run at a
// time: triggers that arrive during a run coalesce into at most one more run, and a run starts no
// sooner than `minIntervalMs` after the one before it started (triggers meanwhile coalesce into
// it), so however many triggers come, the management server is asked at most once per interval.
// A failed run is retried with exponential backoff until it succeeds or Signal stops; a trigger
// during the wait retries as soon as the interval allows. Meanwhile the Interface's persisted
// state keeps the site booting.
import { backoffDelayMs, type BackoffPolicy } from '../../platform/runtime/backoff.ts';
import { errorMessage } from '../../platform/runtime/errors.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';

export type StartupAttempt = (abort: AbortSignal) => Promise<unknown>;

export interface LastStartup {
  readonly at: string;
  readonly ok: boolean;
  readonly error?: string;
}

export interface PendingRetry {
  readonly failures: number;
  readonly at: string;
}

export class StartupRunner implements Lifecycle {
  private running: Promise<void> | null = null;
  private queued: string | null = null;
  private wake: (() => void) | null = null;
  private endSpacing: (() => void) | null = null;
  private abort = new AbortController();
  private stopped = true;
  private lastResult: LastStartup | null = null;
  private pending: PendingRetry | null = null;
  private runCount = 0;
  private lastStartMs = -Infinity;
  /** Triggers coalesced into the next run (status, tests). */
  coalesced = 0;

  constructor(
    private readonly attempt: StartupAttempt,
    private readonly backoff: BackoffPolicy,
    private readonly log: Logger,
    private readonly minIntervalMs = 0,
    private readonly now: () => number = Date.now,
  ) {}

  get last(): LastStartup | null {
    return this.lastResult;
  }

  get retry(): PendingRetry | null {
    return this.pending;
  }

  /** No run in progress and none queued. */
  get idle(): boolean {
    return this.running === null;
  }

  /** A trigger is waiting for the next run. */
  get pendingTrigger(): boolean {
    return this.queued !== null;
  }

  /** Attempts made so far (successful or not). */
  get runs(): number {
    return this.runCount;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.abort = new AbortController();
    this.trigger('signal started');
  }

  trigger(reason: string): void {
    if (this.stopped) return;
    if (this.running !== null) {
      if (this.queued !== null) this.coalesced++;
      this.queued = reason;
      this.wake?.();
      return;
    }
    this.queued = reason;
    this.running = this.loop(reason).finally(() => {
      this.running = null;
    });
  }

  private async loop(firstReason: string): Promise<void> {
    let reason = firstReason;
    let failures = 0;
    while (!this.stopped) {
      if (this.queued !== null) await this.spacing(); // a retry alone keeps to its backoff
      if (this.stopped) return;
      if (this.queued !== null) reason = this.queued;
      this.queued = null;
      this.lastStartMs = this.now();
      this.runCount++;
      this.log.info('start-up sequence', { reason, attempt: failures + 1 });
      try {
        await this.attempt(this.abort.signal);
        this.lastResult = { at: new Date().toISOString(), ok: true };
        this.pending = null;
        failures = 0;
        if (this.queued === null) return;
        reason = this.queued;
        continue;
      } catch (err) {
        if (this.stopped) return;
        failures++;
        const delayMs = backoffDelayMs(failures, this.backoff);
        this.lastResult = { at: new Date().toISOString(), ok: false, error: errorMessage(err) };
        this.pending = { failures, at: new Date(Date.now() + delayMs).toISOString() };
        this.log.warn('start-up sequence failed; the persisted state stays in force', { reason: errorMessage(err), code: (err as { code?: unknown }).code, failures, retryInMs: delayMs });
      }
      await this.sleep(this.queued === null ? backoffDelayMs(failures, this.backoff) : 0);
      reason = this.queued ?? `retry after ${failures} failure(s)`;
    }
  }

  /** Waits until `minIntervalMs` after the last run started (a trigger does not cut it short). */
  private spacing(): Promise<void> {
    const ms = this.lastStartMs + this.minIntervalMs - this.now();
    if (ms <= 0) return Promise.resolve();
    this.log.debug('start-up sequence waits for its interval', { waitMs: ms });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.endSpacing = null;
        resolve();
      }, ms);
      this.endSpacing = () => {
        clearTimeout(timer);
        this.endSpacing = null;
        resolve();
      };
    });
  }

  /** Waits `ms`, or less if a trigger arrives or the runner stops. */
  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort(new Error('signal stopping'));
    this.wake?.();
    this.endSpacing?.();
    await this.running;
  }
}
