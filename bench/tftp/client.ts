// The atftp client as the TFTP benches run it, and the median they report.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface AtftpOptions {
  readonly timeoutS?: number;
  /** Run the client on these CPUs only (taskset -c), e.g. "1". */
  readonly cpus?: string;
}

/** `atftp --get` of `remote` into `local` from 127.0.0.1:port; resolves to its exit code. */
export function atftp(port: number, remote: string, local: string, options: readonly string[], o: AtftpOptions = {}): Promise<number | null> {
  const argv = ['--tftp-timeout', String(o.timeoutS ?? 5), '--get', '-r', remote, '-l', local, ...options.flatMap((x) => ['--option', x]), '127.0.0.1', String(port)];
  const [cmd, full] = o.cpus === undefined ? ['atftp', argv] : ['taskset', ['-c', o.cpus, 'atftp', ...argv]];
  return new Promise((res, rej) => {
    const c = spawn(cmd, full, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('error', rej);
    c.on('close', (code) => {
      if (code !== 0) process.stderr.write(`atftp ${remote} from :${port} failed (${code}): ${err.trim()}\n`);
      res(code);
    });
  });
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export interface BenchDirs {
  /** Scratch for the servers' configs and state. */
  readonly dir: string;
  /** The TFTP root every server serves, world-readable (the reference servers drop to nobody). */
  readonly root: string;
  /** Where downloads land: tmpfs when there is one, so the client's writes cost no disk. */
  readonly out: string;
}

export function makeBenchDirs(prefix: string): BenchDirs {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const out = existsSync('/dev/shm') ? mkdtempSync(`/dev/shm/${prefix}-`) : join(dir, 'out');
  mkdirSync(out, { recursive: true });
  const root = join(dir, 'root');
  mkdirSync(root);
  for (const d of [dir, root]) chmodSync(d, 0o755);
  return { dir, root, out };
}
