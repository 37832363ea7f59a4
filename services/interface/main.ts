// Composition root of the Interface process.
import type { Config } from '../../platform/runtime/config.ts';
import { runUntilSignal } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { notifyReady } from '../../platform/runtime/sd-notify.ts';
import { InterfaceService } from './interface-service.ts';
import { WebServer } from '../../web/web-server.ts';

export async function main(config: Config, log: Logger): Promise<number> {
  return runUntilSignal('interface', [new InterfaceService(config, log), new WebServer(config, log.child({ part: 'web' }))], log, () => void notifyReady(log, 'serving the SBS folder and state feed'));
}
