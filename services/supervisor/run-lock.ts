// One running instance per service and data folder: `<data>/run/<service>.lock` holds the pid of
// the process that runs it (a single-service `netboot run NAME`, or the supervisor on behalf of
// its children). A second `netboot run` finds the lock, checks that its pid is alive and is a
// netboot process, and refuses at once with that pid; a lock whose process is gone is stale and
// taken over. A lock is created whole (written to a private file, then hard-linked into place),
// so a reader never sees it half-written.
import { linkSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NetbootError } from '../../platform/runtime/errors.ts';

export function lockPath(dataDir: string, service: string): string {
  return join(dataDir, 'run', `${service}.lock`);
}

/** The holder of a lock: its pid, or null when there is no lock or it is stale. */
export function lockHolder(path: string): number | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 && isNetbootProcess(pid) ? pid : null;
}

/** Alive, and (where /proc tells) running netboot: a pid reused by another program after a reboot is not a holder. */
export function isNetbootProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return true; // no /proc: alive is all we can know
  }
  return /netboot|cli\/main\.ts/.test(cmdline);
}

export class AlreadyRunningError extends NetbootError {
  constructor(readonly service: string, readonly pid: number, dataDir: string) {
    super('ALREADY_RUNNING', `the ${service} service is already running on ${dataDir} (pid ${pid}); stop it first (kill ${pid}, or systemctl stop netboot.target)`);
  }
}

export class RunLock {
  private released = false;

  private constructor(readonly path: string, readonly pid: number) {}

  /**
   * Takes the lock for `service` on `dataDir` as `pid`, or throws AlreadyRunningError naming the
   * live holder. `parent`: a holder that is our own supervisor, which took it for us (we then hold
   * nothing ourselves and release nothing).
   */
  static acquire(dataDir: string, service: string, pid = process.pid, parent?: number): RunLock | null {
    const path = lockPath(dataDir, service);
    mkdirSync(join(dataDir, 'run'), { recursive: true });
    const temp = `${path}.${pid}`;
    writeFileSync(temp, `${pid}\n`);
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          linkSync(temp, path);
          return new RunLock(path, pid);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const holder = lockHolder(path);
        if (holder === pid) return new RunLock(path, pid);
        if (holder !== null && holder === parent) return null;
        if (holder !== null) throw new AlreadyRunningError(service, holder, dataDir);
        rmSync(path, { force: true }); // stale: its process is gone
      }
      throw new NetbootError('LOCK_CONTENDED', `${path}: could not take the lock (another netboot is starting at the same time?)`);
    } finally {
      rmSync(temp, { force: true });
    }
  }

  /** Removes the lock if it is still ours. Safe to call more than once, and from an exit handler. */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      if (Number.parseInt(readFileSync(this.path, 'utf8').trim(), 10) === this.pid) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

/** Takes every lock or none: on a refusal, releases those already taken. */
export function acquireAll(dataDir: string, services: readonly string[], pid = process.pid): RunLock[] {
  const taken: RunLock[] = [];
  try {
    for (const s of services) {
      const lock = RunLock.acquire(dataDir, s, pid);
      if (lock !== null) taken.push(lock);
    }
    return taken;
  } catch (err) {
    for (const l of taken) l.release();
    throw err;
  }
}
