// The Signal service's composition root: TCP 806 (ws) for "PXE server started", the start-up
// sequence against the management server, and the control socket.
// buildSignal builds every part from the config (constructors only; nothing starts there); main
// runs them; tests start and stop the same parts with a faster backoff.
import { readFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import type { Config } from '../../platform/runtime/config.ts';
import { publishBoundPort } from '../../platform/local/bound-port.ts';
import { ControlServer, controlSocketPath } from '../../platform/local/control.ts';
import { runUntilSignal, type Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { notifyReady } from '../../platform/runtime/sd-notify.ts';
import { LocalKey } from '../../platform/trust/local-key.ts';
import { newInstructionId } from '../../sbs/serialize.ts';
import { ManagementClient, type Registration } from './management-client.ts';
import { RegistrationRecordFile, registrationRecordPath } from './registration-record.ts';
import { SignalServer } from './signal-server.ts';
import { DEFAULT_BACKOFF, MIN_INTERVAL_MS, type SignalOptions, type SignalService, type SignalState, type SignalStatus } from './signal-service.ts';
import { StartupRunner } from './startup-runner.ts';
import { StartupSequence } from './startup-sequence.ts';

export async function main(config: Config, log: Logger): Promise<number> {
  const signal = buildSignal(config, log);
  return runUntilSignal('signal', signal.parts, log, () => {
    void notifyReady(log, `serving on ${config.signal.bind}:${signal.server.boundPort}`);
  });
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
  // Port 0 (tests): the PXE server finds the port the kernel picked in <data>/run/signal.port.
  const publish: Lifecycle = {
    start: async () => publishBoundPort(config.paths.data, 'signal', config.signal.port, server.boundPort ?? 0),
    stop: async () => {},
  };
  const parts: Lifecycle[] = [control, server, publish, ...(runner === null ? [] : [runner]), serving];
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
