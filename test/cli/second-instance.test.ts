// A second `netboot run` on the same data folder refuses at once, naming the pid that runs the
// service; a lock left by a process that is gone is taken over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { lockHolder, lockPath, processStartTime } from '../../services/supervisor/run-lock.ts';
import { makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';
import { NETBOOT, netboot } from './cli-run.ts';

function start(args: readonly string[]): { proc: ChildProcess; exited: Promise<number | null> } {
  const proc = spawn(NETBOOT, [...args], { stdio: 'ignore', env: { ...process.env, NETBOOT_CONFIG: '' } });
  return { proc, exited: new Promise((resolve) => proc.once('exit', (code) => resolve(code))) };
}

async function servingPid(site: TestSite, service: 'signal' | 'interface'): Promise<number | undefined> {
  try {
    const st = await controlCall<{ state?: string; pid?: number }>(controlSocketPath(site.config.paths.data, service), 'GET', '/status', undefined, 1000);
    return st.state === 'serving' ? st.pid : undefined;
  } catch {
    return undefined;
  }
}

test('a second run of a service refuses with the pid of the first; the supervisor holds its children\'s locks', async () => {
  const site = await makeTestSite('', 'netboot-second');
  const first = start(['run', 'signal', '--config', site.configPath]);
  try {
    const pid = await waitFor('signal serving', () => servingPid(site, 'signal'), 30_000, 100);
    assert.equal(pid, first.proc.pid);
    assert.match(readFileSync(lockPath(site.config.paths.data, 'signal'), 'utf8'), new RegExp(`^${pid} \\d+\n$`));
    const again = await netboot(['run', 'signal', '--config', site.configPath]);
    assert.equal(again.code, 1);
    assert.equal(again.stderr, `netboot run: the signal service is already running on ${site.config.paths.data} (pid ${pid}); stop it first (kill ${pid}, or systemctl stop netboot.target)\n`);
    // The supervised run refuses too, before starting anything, and leaves no lock of its own.
    const all = await netboot(['run', '--config', site.configPath]);
    assert.equal(all.code, 1);
    assert.match(all.stderr, new RegExp(`the signal service is already running .*\\(pid ${pid}\\)`));
    assert.equal(existsSync(lockPath(site.config.paths.data, 'interface')), false);
    first.proc.kill('SIGTERM');
    assert.equal(await first.exited, 0);
    assert.equal(existsSync(lockPath(site.config.paths.data, 'signal')), false); // released on exit

    // Under the supervisor, the lock names the supervisor (the process to stop).
    const supervised = start(['run', 'interface', 'signal', '--config', site.configPath]);
    try {
      const child = await waitFor('supervised signal serving', () => servingPid(site, 'signal'), 60_000, 100);
      assert.notEqual(child, supervised.proc.pid);
      const refused = await netboot(['run', 'signal', '--config', site.configPath]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`already running on .* \\(pid ${supervised.proc.pid}\\)`));
    } finally {
      supervised.proc.kill('SIGTERM');
      await supervised.exited;
    }
  } finally {
    first.proc.kill('SIGKILL');
    site.cleanup();
  }
});

test('a stale lock is taken over: its process is gone, or its pid now belongs to another process', async () => {
  const site = await makeTestSite('', 'netboot-stale');
  const gone = spawnSync('true').pid!;
  const lock = lockPath(site.config.paths.data, 'signal');
  mkdirSync(`${site.config.paths.data}/run`, { recursive: true });
  writeFileSync(lock, `${gone}\n`);
  assert.equal(lockHolder(lock), null);
  writeFileSync(lock, `${process.pid} 1\n`); // alive, but started at another time: a reused pid
  assert.equal(lockHolder(lock), null);
  writeFileSync(lock, `${process.pid} ${processStartTime(process.pid)}\n`);
  assert.equal(lockHolder(lock), process.pid);
  writeFileSync(lock, `${gone}\n`);
  const run = start(['run', 'signal', '--config', site.configPath]);
  try {
    const pid = await waitFor('signal serving', () => servingPid(site, 'signal'), 30_000, 100);
    assert.match(readFileSync(lock, 'utf8'), new RegExp(`^${pid} `));
    run.proc.kill('SIGTERM');
    assert.equal(await run.exited, 0);
  } finally {
    run.proc.kill('SIGKILL');
    site.cleanup();
  }
});
