// Every long-lived part has async start()/stop(); a process's main builds them, starts them in
// order and stops them in reverse on SIGTERM/SIGINT. Readiness is reported to systemd when
// NOTIFY_SOCKET is set (soft failure: logged, never fatal).
import type { Logger } from './logger.ts';

export interface Lifecycle {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs parts until a termination signal; returns the exit code. */
export async function runUntilSignal(name: string, parts: readonly Lifecycle[], log: Logger, onReady?: () => void): Promise<number> {
  const started: Lifecycle[] = [];
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    for (const part of [...started].reverse()) {
      try {
        await part.stop();
      } catch (err) {
        log.error('stop failed', { err });
      }
    }
  };
  let starting = true;
  const done = new Promise<number>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info(`${name} stopping`, { signal: sig });
      // During start-up the start loop stops what it started once the part in progress is up.
      if (!starting) void stopAll().then(() => resolve(0));
      else resolve(0);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  try {
    for (const part of parts) {
      await part.start();
      started.push(part);
      if (stopping) {
        await stopAll();
        return 0;
      }
    }
    starting = false;
  } catch (err) {
    log.error(`${name} failed to start`, { err });
    await stopAll();
    return 1;
  }
  log.info(`${name} started`, { pid: process.pid });
  onReady?.();
  return done;
}
