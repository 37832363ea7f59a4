// Runs several services as child processes: starts them in order, each once the previous one
// serves (or after a bounded wait); restarts a child that exits with exponential backoff (reset
// once it had served for `stableMs`), logging why; keeps a bound service (MTFTP) running only
// while the service it is bound to (the server) serves; stops everything in reverse order.
import { performance } from 'node:perf_hooks';
import { backoffDelayMs, type BackoffPolicy } from '../../platform/runtime/backoff.ts';
import { errorMessage } from '../../platform/runtime/errors.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { LogSink, Logger } from '../../platform/runtime/logger.ts';
import { ServiceChild, type ChildCommand, type ChildExit } from './service-child.ts';

export interface SupervisedService {
  readonly name: string;
  readonly command: ChildCommand;
  /** Runs only while this other service serves; stopped whenever it stops. */
  readonly boundTo?: string;
}

export interface SupervisorTimings {
  readonly backoff: BackoffPolicy;
  /** A child that served this long before exiting restarts after the base delay again. */
  readonly stableMs: number;
  /** SIGTERM, then SIGKILL after this long. */
  readonly stopTimeoutMs: number;
  readonly readyPollMs: number;
  /** How long the start sequence waits for one service to serve before it starts the next. */
  readonly readyWaitMs: number;
}

export const DEFAULT_TIMINGS: SupervisorTimings = {
  backoff: { baseMs: 1000, capMs: 30000 },
  stableMs: 30000,
  stopTimeoutMs: 10000,
  readyPollMs: 200,
  readyWaitMs: 30000,
};

export interface SupervisorDeps {
  /** In start order. */
  readonly services: readonly SupervisedService[];
  /** One readiness probe: does the process `pid` serve as `name`? */
  readonly isServing: (name: string, pid: number) => Promise<boolean>;
  readonly log: Logger;
  readonly out: LogSink;
  readonly err: LogSink;
  readonly timings?: Partial<SupervisorTimings>;
  /** Called once, the first time every service serves. */
  readonly onAllServing?: () => void;
}

export type SlotState = 'idle' | 'starting' | 'serving' | 'backoff' | 'held' | 'stopping' | 'stopped';

interface Slot {
  readonly spec: SupervisedService;
  state: SlotState;
  child: ChildProcessRef | null;
  failures: number;
  restarts: number;
  startedAt: number;
  /** When it began to serve; null while it does not. */
  servingSince: number | null;
  timer: NodeJS.Timeout | null;
  servingWaiters: (() => void)[];
}

interface ChildProcessRef {
  readonly child: ServiceChild;
  /** Set when the supervisor itself asked it to stop. */
  stopRequested: boolean;
}

export interface SlotStatus {
  readonly name: string;
  readonly state: SlotState;
  readonly pid: number | null;
  readonly restarts: number;
}

export class Supervisor implements Lifecycle {
  private readonly slots: Slot[];
  private readonly t: SupervisorTimings;
  private stopping = false;
  private allServingReported = false;
  private sequence: Promise<void> = Promise.resolve();

  constructor(private readonly deps: SupervisorDeps) {
    this.t = { ...DEFAULT_TIMINGS, ...deps.timings };
    this.slots = deps.services.map((spec) => ({ spec, state: 'idle', child: null, failures: 0, restarts: 0, startedAt: 0, servingSince: null, timer: null, servingWaiters: [] }));
    for (const s of this.slots) {
      if (s.spec.boundTo !== undefined && this.slot(s.spec.boundTo) === undefined) {
        throw new Error(`${s.spec.name} is bound to ${s.spec.boundTo}, which is not supervised`);
      }
    }
  }

  /** Begins the start sequence and returns at once; `started` settles when it has run. */
  async start(): Promise<void> {
    this.sequence = this.startInOrder();
  }

  get started(): Promise<void> {
    return this.sequence;
  }

  status(): SlotStatus[] {
    return this.slots.map((s) => ({ name: s.spec.name, state: s.state, pid: s.child?.child.pid ?? null, restarts: s.restarts }));
  }

  private slot(name: string): Slot | undefined {
    return this.slots.find((s) => s.spec.name === name);
  }

  private async startInOrder(): Promise<void> {
    for (const s of this.slots) {
      if (this.stopping) return;
      const bound = s.spec.boundTo === undefined ? undefined : this.slot(s.spec.boundTo);
      if (bound !== undefined && bound.state !== 'serving') {
        s.state = 'held';
        this.deps.log.info('service waits for the service it is bound to', { child: s.spec.name, boundTo: bound.spec.name });
        continue;
      }
      this.launch(s);
      const served = await this.waitServing(s, this.t.readyWaitMs);
      if (!served && !this.stopping) {
        this.deps.log.warn('service not serving yet; starting the next one', { child: s.spec.name, waitedMs: this.t.readyWaitMs });
      }
    }
  }

  private waitServing(s: Slot, timeoutMs: number): Promise<boolean> {
    if (s.state === 'serving') return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      s.servingWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  private launch(s: Slot): void {
    if (this.stopping) return;
    s.timer = null;
    const child = new ServiceChild(s.spec.command, this.deps.out, this.deps.err);
    const ref: ChildProcessRef = { child, stopRequested: false };
    s.child = ref;
    s.state = 'starting';
    s.startedAt = performance.now();
    s.servingSince = null;
    this.deps.log.info('service started', { child: s.spec.name, pid: child.pid ?? null });
    void child.exited.then((exit) => this.onExit(s, ref, exit));
    void this.pollServing(s, ref);
  }

  private async pollServing(s: Slot, ref: ChildProcessRef): Promise<void> {
    const pid = ref.child.pid;
    if (pid === undefined) return;
    while (s.child === ref && ref.child.exit === null && !ref.stopRequested) {
      let serving = false;
      try {
        serving = await this.deps.isServing(s.spec.name, pid);
      } catch (err) {
        this.deps.log.debug('readiness probe failed', { child: s.spec.name, reason: errorMessage(err) });
      }
      if (s.child !== ref || ref.child.exit !== null || ref.stopRequested) return;
      if (serving) return this.onServing(s);
      await new Promise((r) => setTimeout(r, this.t.readyPollMs));
    }
  }

  private onServing(s: Slot): void {
    s.state = 'serving';
    s.servingSince = performance.now();
    this.deps.log.info('service serving', { child: s.spec.name, pid: s.child?.child.pid ?? null });
    for (const w of s.servingWaiters.splice(0)) w();
    for (const d of this.slots) {
      if (d.spec.boundTo === s.spec.name && d.state === 'held') {
        this.deps.log.info('starting a bound service: the service it is bound to serves', { child: d.spec.name, boundTo: s.spec.name });
        this.launch(d);
      }
    }
    if (!this.allServingReported && this.slots.every((x) => x.state === 'serving')) {
      this.allServingReported = true;
      this.deps.onAllServing?.();
    }
  }

  private onExit(s: Slot, ref: ChildProcessRef, exit: ChildExit): void {
    if (s.child !== ref) return;
    s.child = null;
    if (!this.stopping) this.stopBoundTo(s);
    if (ref.stopRequested || this.stopping) {
      if (s.state === 'stopping') s.state = 'stopped';
      return;
    }
    const now = performance.now();
    const uptimeMs = Math.round(now - s.startedAt);
    const servedMs = s.servingSince === null ? 0 : Math.round(now - s.servingSince);
    if (servedMs >= this.t.stableMs) s.failures = 0;
    s.failures++;
    s.restarts++;
    const delayMs = backoffDelayMs(s.failures, this.t.backoff);
    s.state = 'backoff';
    this.deps.log.error('service exited; restarting', { child: s.spec.name, pid: ref.child.pid ?? null, code: exit.code, signal: exit.signal, uptimeMs, servedMs, restartInMs: delayMs, restarts: s.restarts });
    s.timer = setTimeout(() => this.relaunch(s), delayMs);
  }

  private relaunch(s: Slot): void {
    s.timer = null;
    if (this.stopping) return;
    const bound = s.spec.boundTo === undefined ? undefined : this.slot(s.spec.boundTo);
    if (bound !== undefined && bound.state !== 'serving') {
      s.state = 'held';
      this.deps.log.info('service waits for the service it is bound to', { child: s.spec.name, boundTo: bound.spec.name });
      return;
    }
    this.launch(s);
  }

  /** The services bound to `s` stop with it, and start again once it serves again. */
  private stopBoundTo(s: Slot): void {
    for (const d of this.slots) {
      if (d.spec.boundTo !== s.spec.name) continue;
      if (d.child === null) {
        if (d.timer !== null) clearTimeout(d.timer);
        d.timer = null;
        d.state = 'held';
        continue;
      }
      this.deps.log.info('stopping a bound service: the service it is bound to stopped', { child: d.spec.name, boundTo: s.spec.name });
      void this.stopSlot(d).then(() => this.relaunch(d));
    }
  }

  private async stopSlot(s: Slot): Promise<void> {
    const ref = s.child;
    if (s.timer !== null) {
      clearTimeout(s.timer);
      s.timer = null;
    }
    if (ref === null) {
      s.state = 'stopped';
      return;
    }
    ref.stopRequested = true;
    s.state = 'stopping';
    const { exit, killed } = await ref.child.stop(this.t.stopTimeoutMs);
    const fields = { child: s.spec.name, pid: ref.child.pid ?? null, code: exit.code, signal: exit.signal };
    if (killed) this.deps.log.warn(`service did not stop within ${this.t.stopTimeoutMs} ms; killed`, fields);
    else this.deps.log.info('service stopped', fields);
  }

  /** Stops every child in reverse start order. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const s of [...this.slots].reverse()) {
      for (const w of s.servingWaiters.splice(0)) w();
      await this.stopSlot(s);
      s.state = 'stopped';
    }
    await this.sequence;
  }
}
