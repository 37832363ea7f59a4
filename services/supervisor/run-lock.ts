// One running instance per service and data folder: `<data>/run/<service>.lock` holds the pid of
// the process that runs it (a single-service `netboot run NAME`, or the supervisor on behalf of
// its children) and that process's start time. A second `netboot run` finds the lock, checks that
// the same process still runs (same pid, same start time, so a pid reused after a crash or a
// reboot does not count), and refuses at once with that pid; a lock whose process is gone is
// stale and taken over. A lock is created whole (written to a private file, then hard-linked into place),
// so a reader never sees it half-written.
import { linkSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NetbootError } from '../../platform/runtime/errors.ts';

export function lockPath(dataDir: string, service: string): string {
  return join(dataDir, 'run', `${service}.lock`);
}

/** A process's start time in clock ticks since boot (/proc/PID/stat field 22), or null where unknown. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null; // fields from the 3rd on
  } catch {
    return null;
  }
}

function lockText(pid: number): string {
  const started = processStartTime(pid);
  return started === null ? `${pid}\n` : `${pid} ${started}\n`;
}

/** The holder of a lock: its pid, or null when there is no lock or it is stale. */
export function lockHolder(path: string): number | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const [pidText, started] = text.trim().split(/\s+/);
  const pid = Number.parseInt(pidText ?? '', 10);
  return Number.isInteger(pid) && pid > 0 && isSameProcess(pid, started) ? pid : null;
}

/** Alive, and (where /proc tells) the process that wrote the lock, not a later one given its pid. */
export function isSameProcess(pid: number, started: string | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (started === undefined) return true; // written where /proc was not readable: alive is all we know
  const now = processStartTime(pid);
  return now === null || now === started;
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
    writeFileSync(temp, lockText(pid));
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
      if (Number.parseInt(readFileSync(this.path, 'utf8').trim().split(/\s+/)[0] ?? '', 10) === this.pid) unlinkSync(this.path);
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
