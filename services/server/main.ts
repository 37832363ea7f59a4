// Composition root of the PXE server process.
import type { Config } from '../../platform/runtime/config.ts';
import { runUntilSignal } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { notifyReady } from '../../platform/runtime/sd-notify.ts';
import { announceServerStarted, signalUrl } from '../../platform/local/signal-client.ts';
import { LocalKey, localProof } from '../../platform/trust/local-key.ts';
import { ServerService } from './server-service.ts';
import { SignalAnnouncer } from './signal-announcer.ts';

export async function main(config: Config, log: Logger): Promise<number> {
  const proof = localProof(LocalKey.of(config.paths.data));
  const announcer = new SignalAnnouncer(() => announceServerStarted(signalUrl(config), proof), log.child({ part: 'signal' }));
  // Ready for systemd only once it holds complete state and has bound its ports.
  const service = new ServerService(config, log, { announcer, onServing: () => void notifyReady(log, 'serving proxyDHCP') });
  return runUntilSignal('server', [service], log);
}
