// The Signal service's shape: its status, options and parts. main.ts (buildSignal) builds them
// from the config; tests start and stop the same parts with a faster backoff.
import type { BackoffPolicy } from '../../platform/runtime/backoff.ts';
import type { ServiceStatusBody } from '../../platform/local/control.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { SignalServer } from './signal-server.ts';
import type { LastStartup, PendingRetry, StartupRunner } from './startup-runner.ts';

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, capMs: 60000 };

export type SignalState = 'starting' | 'serving' | 'stopping';

export interface SignalStatus extends ServiceStatusBody {
  readonly service: 'signal';
  readonly pid: number;
  readonly state: SignalState;
  readonly ports: { readonly signal: number | null };
  readonly management: string | null;
  readonly lastStartup: LastStartup | null;
  readonly retry: PendingRetry | null;
  readonly registered: boolean;
  readonly warnings: readonly string[];
}

export interface SignalOptions {
  readonly backoff?: BackoffPolicy;
  /** Least time between the starts of two start-up sequences (default MIN_INTERVAL_MS). */
  readonly minIntervalMs?: number;
}

/** However many PXE server starts are announced, the management server is asked at most this often. */
export const MIN_INTERVAL_MS = 5000;

export interface SignalService {
  readonly parts: readonly Lifecycle[];
  readonly server: SignalServer;
  /** null when standalone. */
  readonly runner: StartupRunner | null;
  status(): SignalStatus;
}
