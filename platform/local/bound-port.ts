// Where our processes on this host find each other's TCP ports when a port is configured as 0
// (tests: the kernel picks a free port at bind, so nothing races for it). The listening service
// writes the port it got to <data>/run/<name>.port, whole or not at all (atomic-file.ts); a client
// in another process reads it at each connection attempt, so a restarted service on a new port is
// found on the next retry. A configured port other than 0 is used as it is and no file is written.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../runtime/atomic-file.ts';

export type PortName = 'interface' | 'signal';

export function boundPortPath(dataDir: string, name: PortName): string {
  return join(dataDir, 'run', `${name}.port`);
}

/** After a listen: records `bound` for the other processes when the configured port is 0. */
export function publishBoundPort(dataDir: string, name: PortName, configured: number, bound: number): void {
  if (configured !== 0) return;
  const path = boundPortPath(dataDir, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, `${bound}\n`);
}

/**
 * The port to connect to: the configured one, or for 0 the one the service recorded. 0 when it has
 * recorded none yet (not started): a connection to it fails and the caller's retry asks again.
 */
export function reachablePort(dataDir: string, name: PortName, configured: number): number {
  if (configured !== 0) return configured;
  try {
    const port = Number(readFileSync(boundPortPath(dataDir, name), 'utf8').trim());
    return Number.isInteger(port) && port > 0 && port <= 65535 ? port : 0;
  } catch {
    return 0;
  }
}
