// Runs a netboot service as its own process (`bin/netboot run NAME --config FILE`), as an
// administrator would, and collects its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const NETBOOT_BIN = fileURLToPath(new URL('../../bin/netboot', import.meta.url));

export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly logs: Array<Record<string, unknown>>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnService(args: readonly string[], configPath: string): ServiceProcess {
  const child = spawn(NETBOOT_BIN, ['run', ...args, '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ raw: line });
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      if (stderr !== '' && process.env.NETBOOT_TEST_VERBOSE) process.stderr.write(stderr);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    logs,
    exited,
    kill: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
