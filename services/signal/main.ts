// The Signal service's composition root: TCP 806 (ws) for "PXE server started", the start-up
// sequence against the management server, and the control socket.
import type { Config } from '../../platform/runtime/config.ts';
import { runUntilSignal } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { notifyReady } from '../../platform/runtime/sd-notify.ts';
import { buildSignal } from './signal-service.ts';

export async function main(config: Config, log: Logger): Promise<number> {
  const signal = buildSignal(config, log);
  return runUntilSignal('signal', signal.parts, log, () => {
    void notifyReady(log, `serving on ${config.signal.bind}:${signal.server.boundPort}`);
  });
}
