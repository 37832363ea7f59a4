// Unpacking a .deb: `dpkg-deb --fsys-tarfile X.deb | tar -x -C DIR` (the data member only; no
// maintainer scripts run). Also runs the host's build tools the steps after it need.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { NetbootError } from '../platform/runtime/errors.ts';

export class ToolError extends NetbootError {
  constructor(message: string) {
    super('BOOTWIZ_TOOL_FAILED', message);
  }
}

/** Runs a command; resolves its stdout, or throws ToolError with its stderr. */
export function tool(cmd: string, args: readonly string[], options: { input?: NodeJS.ReadableStream } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    if (options.input !== undefined) options.input.pipe(child.stdin!);
    child.on('error', (e) => reject(new ToolError(`${cmd}: ${e.message}${(e as NodeJS.ErrnoException).code === 'ENOENT' ? ' (not installed?)' : ''}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new ToolError(`${cmd} ${args.join(' ')}: exit ${code ?? signal}: ${Buffer.concat(err).toString('utf8').trim()}`));
    });
  });
}

/** Unpacks the files of `deb` under `dir` (created); `paths` limits it to those members. */
export async function extractDeb(deb: string, dir: string, paths: readonly string[] = []): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const dpkg = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'] });
  const dpkgErr: Buffer[] = [];
  dpkg.stderr.on('data', (b: Buffer) => dpkgErr.push(b));
  const dpkgDone = new Promise<number | null>((resolve) => dpkg.on('close', (code) => resolve(code)));
  dpkg.on('error', () => undefined);
  try {
    await tool('tar', ['-x', '-C', dir, ...paths], { input: dpkg.stdout });
  } catch (err) {
    dpkg.kill();
    throw err;
  }
  const code = await dpkgDone;
  if (code !== 0) throw new ToolError(`dpkg-deb --fsys-tarfile ${deb}: exit ${code}: ${Buffer.concat(dpkgErr).toString('utf8').trim()}`);
}
