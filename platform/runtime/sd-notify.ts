// Readiness and stop notices for systemd (sd_notify(3)), sent softly: a no-op without
// NOTIFY_SOCKET, and a failure is logged, never fatal.
//
// Node's dgram cannot send on AF_UNIX datagram sockets, so the message goes through
// systemd-notify(1) (Debian package `systemd`). The message then comes from the helper's pid, not
// ours, which is why the units say NotifyAccess=all; without --no-block, systemd-notify waits on a
// barrier until the manager has processed the message, so it is attributed to our unit and not
// lost when the helper exits. --pid names us as the main process.
import { execFile } from 'node:child_process';
import { errorMessage } from './errors.ts';
import type { Logger } from './logger.ts';

const HELPER_TIMEOUT_MS = 10000;

/** Sends `args` (systemd-notify options or VAR=value) if NOTIFY_SOCKET is set. True if sent. */
export async function sdNotify(args: readonly string[], log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (env.NOTIFY_SOCKET === undefined || env.NOTIFY_SOCKET === '') return false;
  return new Promise((resolve) => {
    execFile('systemd-notify', [`--pid=${process.pid}`, ...args], { env, timeout: HELPER_TIMEOUT_MS }, (err, _stdout, stderr) => {
      if (err !== null) {
        log.warn('systemd notification failed', { args, reason: stderr.trim() || errorMessage(err) });
        return resolve(false);
      }
      log.debug('systemd notified', { args });
      resolve(true);
    });
  });
}

/** Tells systemd the service now really serves (Type=notify). */
export function notifyReady(log: Logger, status?: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  return sdNotify(status === undefined ? ['--ready'] : ['--ready', `--status=${status}`], log, env);
}

export function notifyStopping(log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  return sdNotify(['STOPPING=1'], log, env);
}
