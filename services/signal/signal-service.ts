// Builds the Signal service's parts from the config (constructors only; nothing starts here).
// main.ts runs them; tests start and stop the same parts with a faster backoff.
import { readFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import type { BackoffPolicy } from '../../platform/runtime/backoff.ts';
import type { Config } from '../../platform/runtime/config.ts';
import { ControlServer, controlSocketPath, type ServiceStatusBody } from '../../platform/local/control.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { newInstructionId } from '../../sbs/serialize.ts';
import { ManagementClient, type Registration } from './management-client.ts';
import { RegistrationRecordFile, registrationRecordPath } from './registration-record.ts';
import { LocalKey } from '../../platform/trust/local-key.ts';
import { SignalServer } from './signal-server.ts';
import { StartupRunner, type LastStartup, type PendingRetry } from './startup-runner.ts';
import { StartupSequence } from './startup-sequence.ts';

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

export function buildSignal(config: Config, log: Logger, options: SignalOptions = {}): SignalService {
  const url = config.management.url;
  const record = new RegistrationRecordFile(registrationRecordPath(config.paths.data));
  let runner: StartupRunner | null = null;
  if (url !== null) {
    const sequence = new StartupSequence({
      managementUrl: url,
      serverId: config.site.id,
      sbsDir: config.paths.sbs,
      client: new ManagementClient(url, config.management.timeoutMs),
      record,
      registration: () => registrationFor(config),
      newId: newInstructionId,
      log,
    });
    runner = new StartupRunner((abort) => sequence.run(abort), options.backoff ?? DEFAULT_BACKOFF, log, options.minIntervalMs ?? MIN_INTERVAL_MS);
  }

  const server = new SignalServer(config.signal.bind, config.signal.port, (message) => {
    if (runner === null) log.info('standalone: nothing to fetch after a PXE server start', { pid: message.pid });
    else runner.trigger(`PXE server started (pid ${message.pid})`);
  }, log, LocalKey.of(config.paths.data));

  let state: SignalState = 'starting';
  const status = (): SignalStatus => ({
    service: 'signal',
    pid: process.pid,
    state,
    ports: { signal: server.boundPort },
    management: url,
    lastStartup: runner?.last ?? null,
    retry: runner?.retry ?? null,
    registered: url !== null && record.isRegistered(config.site.id, url),
    warnings: [],
  });
  const control = new ControlServer(controlSocketPath(config.paths.data, 'signal'), { 'GET /status': status }, log);

  const serving: Lifecycle = {
    start: async () => {
      state = 'serving';
      if (runner === null) log.info('standalone (no [management] url): the persisted state is the state');
    },
    stop: async () => {
      state = 'stopping';
    },
  };
  const parts: Lifecycle[] = [control, server, ...(runner === null ? [] : [runner]), serving];
  return { parts, server, runner, status };
}

function registrationFor(config: Config): Registration {
  return { serverId: config.site.id, name: hostname(), addresses: serverAddresses(config), version: packageVersion() };
}

/** The configured server address, or every non-internal IPv4 address of this host. */
function serverAddresses(config: Config): string[] {
  if (config.server.address !== null) return [config.server.address];
  return Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .filter((a) => a.family === 'IPv4' && !a.internal)
    .map((a) => a.address);
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
