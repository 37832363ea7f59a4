// One supervised child process: spawned in its own process group (a terminal's Ctrl-C reaches
// only the supervisor, which then stops children in order) with an IPC channel whose loss tells
// the child that the supervisor is gone. Its stdout and stderr are passed through line by line,
// so JSON log lines from several children never interleave mid-line.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { LogSink } from '../../platform/runtime/logger.ts';

export interface ChildCommand {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class ServiceChild {
  readonly process: ChildProcess;
  readonly exited: Promise<ChildExit>;
  private exitValue: ChildExit | null = null;

  constructor(cmd: ChildCommand, out: LogSink, err: LogSink) {
    this.process = spawn(cmd.command, [...cmd.args], {
      env: cmd.env,
      cwd: cmd.cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.process.channel?.unref(); // the channel must not keep the supervisor alive
    createInterface({ input: this.process.stdout!, crlfDelay: Infinity }).on('line', (line) => out.write(line + '\n'));
    createInterface({ input: this.process.stderr!, crlfDelay: Infinity }).on('line', (line) => err.write(line + '\n'));
    this.exited = new Promise((resolve) => {
      // 'error' (spawn failed) is followed by 'close' only sometimes; settle on whichever comes.
      this.process.once('error', () => resolve(this.settle({ code: null, signal: null })));
      this.process.once('exit', (code, signal) => resolve(this.settle({ code, signal })));
    });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get exit(): ChildExit | null {
    return this.exitValue;
  }

  /** SIGTERM, then SIGKILL if it has not exited after `timeoutMs`. Resolves once it has exited. */
  async stop(timeoutMs: number): Promise<{ exit: ChildExit; killed: boolean }> {
    if (this.exitValue !== null) return { exit: this.exitValue, killed: false };
    this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([this.exited.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    clearTimeout(timer);
    if (inTime) return { exit: this.exitValue!, killed: false };
    this.signal('SIGKILL');
    return { exit: await this.exited, killed: true };
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exitValue !== null) return;
    try {
      this.process.kill(sig);
    } catch {
      // already gone: the exit event follows
    }
  }

  private settle(exit: ChildExit): ChildExit {
    this.exitValue ??= exit;
    return this.exitValue;
  }
}
