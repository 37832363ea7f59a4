// Every long-lived part has async start()/stop(); a process's main builds them, starts them in
// order and stops them in reverse on SIGTERM/SIGINT. Readiness is reported to systemd when
// NOTIFY_SOCKET is set (soft failure: logged, never fatal).
//
// A part that cannot start stops the start: it is stopped itself (its stop() releases whatever
// its start took before it failed), then every part started before it, in reverse, and the
// process gets exit code 1 with the reason in the log. Nothing is left holding a port or a
// socket, and no signal handler is left behind, so the process ends by itself.
import type { Logger } from './logger.ts';

export interface Lifecycle {
  start(): Promise<void>;
  /** Safe after a start that failed part-way, and after no start at all. */
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
  let onSignal: (sig: NodeJS.Signals) => void = () => {};
  const unlisten = (): void => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  const done = new Promise<number>((resolve) => {
    onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      unlisten();
      log.info(`${name} stopping`, { signal: sig });
      // During start-up the start loop stops what it started once the part in progress is up.
      if (!starting) void stopAll().then(() => resolve(0));
      else resolve(0);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  for (const part of parts) {
    // Pushed before start: a part that fails part-way is stopped with the others.
    started.push(part);
    try {
      await part.start();
    } catch (err) {
      unlisten();
      log.error(`${name} failed to start`, { err });
      await stopAll();
      return 1;
    }
    if (stopping) {
      await stopAll();
      return 0;
    }
  }
  starting = false;
  log.info(`${name} started`, { pid: process.pid });
  onReady?.();
  return done;
}
