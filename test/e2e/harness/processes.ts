// Processes the end-to-end tests start: long-running ones (QEMU, dnsmasq, netboot, tcpdump) whose
// output is kept in memory and in a log file, stopped by their own pid; and commands run to
// completion with a time limit.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Cleanup } from './cleanup.ts';
import { signalPid } from './cleanup.ts';

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** `ip netns exec NS` as a command prefix; exec keeps the pid, so the pid is the program's own. */
export function inNamespace(ns: string, command: string, args: readonly string[]): [string, string[]] {
  return ['ip', ['netns', 'exec', ns, command, ...args]];
}

export class Running {
  readonly child: ChildProcess;
  readonly pid: number;
  /** performance.now() when spawned. */
  readonly startedAt: number;
  readonly exited: Promise<Exit>;
  private text = '';
  private readonly waiters = new Set<() => void>();
  private readonly log: WriteStream;
  private exit: Exit | null = null;

  constructor(readonly name: string, command: string, args: readonly string[], logFile: string, cleanup: Cleanup) {
    mkdirSync(dirname(logFile), { recursive: true });
    this.log = createWriteStream(logFile);
    this.startedAt = performance.now();
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    if (this.child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
    this.pid = this.child.pid;
    cleanup.add(`stop ${name} (pid ${this.pid})`, async () => void (await this.stop()), () => void signalPid(this.pid, 'SIGKILL'));
    const take = (d: Buffer): void => {
      this.text += d.toString('latin1');
      this.log.write(d);
      for (const w of [...this.waiters]) w();
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        for (const w of [...this.waiters]) w();
        resolve(this.exit);
      });
    });
  }

  /** Everything the process wrote so far (stdout and stderr, as latin1 text). */
  get output(): string {
    return this.text;
  }

  get running(): boolean {
    return this.exit === null;
  }

  /**
   * Waits until the output (from `from` on) matches `pattern`; rejects after `timeoutMs` or when
   * the process exits first. Returns the match and the ms since spawn at which it arrived.
   */
  waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<{ match: RegExpExecArray; at: number; end: number }> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = pattern.exec(this.text.slice(from));
        if (m !== null) {
          done();
          resolve({ match: m, at: performance.now() - this.startedAt, end: from + m.index + m[0].length });
        } else if (this.exit !== null) {
          done();
          reject(new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before its output matched ${pattern}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: output did not match ${pattern} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 5000): Promise<Exit> {
    if (this.exit === null) {
      signalPid(this.pid, 'SIGTERM');
      const timer = setTimeout(() => signalPid(this.pid, 'SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    await new Promise<void>((resolve) => this.log.end(() => resolve()));
    return this.exit!;
  }
}

export interface Finished {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion (killed after `timeoutMs`); throws unless it exits 0 (or `allowFail`). */
export function runCommand(command: string, args: readonly string[], timeoutMs = 15000, allowFail = false): Promise<Finished> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      if (code !== 0 && !allowFail) {
        reject(new Error(`${command} ${args.join(' ')} failed (${err?.message ?? code}): ${stderr.trim()}`));
        return;
      }
      resolve({ code, stdout, stderr });
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
