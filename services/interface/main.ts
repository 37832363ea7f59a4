// Composition root of the Interface process.
import type { Config } from '../shared/config.ts';
import { runUntilSignal } from '../shared/lifecycle.ts';
import type { Logger } from '../shared/logger.ts';
import { notifyReady } from '../shared/sd-notify.ts';
import { InterfaceService } from './interface-service.ts';

export async function main(config: Config, log: Logger): Promise<number> {
  return runUntilSignal('interface', [new InterfaceService(config, log)], log, () => void notifyReady(log, 'serving the SBS folder and state feed'));
}
