// `netboot run` and `netboot status` as a user runs them: bin/netboot in its own process, the real
// services as children, a management-server stand-in (real HTTP) feeding the start-up state
// through Signal and the Interface to the PXE server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';
import { ManagementStandIn } from '../signal/management-stand-in.ts';

const NETBOOT = fileURLToPath(new URL('../../bin/netboot', import.meta.url));

interface Row {
  service: string;
  running: boolean;
  state?: string;
  pid?: number | null;
  ports?: Record<string, number>;
}

function netboot(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(NETBOOT, args, { timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

async function status(site: TestSite): Promise<Map<string, Row>> {
  const r = await netboot(['status', '--json', '--config', site.configPath]);
  return new Map((JSON.parse(r.stdout) as Row[]).map((row) => [row.service, row]));
}

interface Running {
  readonly proc: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(args: string[]): Running {
  const proc = spawn(NETBOOT, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
  createInterface({ input: proc.stderr! }).on('line', (l) => lines.push(l));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return { proc, lines, exited };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function serving(site: TestSite, names: readonly string[]): Promise<Map<string, Row> | undefined> {
  const rows = await status(site);
  return names.every((n) => rows.get(n)?.state === 'serving') ? rows : undefined;
}

test('netboot run SERVICE runs one service in-process; SIGTERM stops it with exit 0', async () => {
  const site = await makeTestSite('', 'netboot-run-one');
  const run = start(['run', 'signal', '--config', site.configPath]);
  try {
    const rows = await waitFor('signal serving', () => serving(site, ['signal']), 20000, 200);
    assert.equal(rows.get('signal')?.pid, run.proc.pid);
    // Port 0: the kernel picked it; the status and the table agree on which.
    const port = rows.get('signal')?.ports?.signal ?? 0;
    assert.ok(port > 0, JSON.stringify(rows.get('signal')));
    assert.equal(rows.get('server')?.running, false);
    const table = await netboot(['status', '--config', site.configPath]);
    assert.equal(table.code, 3); // not all four run
    assert.match(table.stdout, new RegExp(`^signal +serving +${run.proc.pid} +signal=${port}$`, 'm'));
    assert.match(table.stdout, /^mtftp +not running +- +-$/m);
    run.proc.kill('SIGTERM');
    assert.deepEqual(await run.exited, { code: 0, signal: null });
  } finally {
    run.proc.kill('SIGKILL');
    site.cleanup();
  }
});

test('netboot run refuses an unknown service name', async () => {
  const r = await netboot(['run', 'dhcp']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown service: dhcp \(services: interface, signal, server, mtftp\)/);
});

test('netboot run: the four services, restarted when killed, stopped in reverse order by SIGTERM', async () => {
  const mgmt = new ManagementStandIn();
  await mgmt.start();
  const site = await makeTestSite(`[management]\nurl = "${mgmt.url}"\n`, 'netboot-run-all');
  const run = start(['run', '--config', site.configPath]);
  const pids: number[] = [];
  try {
    // Signal fetches the state, the Interface applies it, the server then holds it and serves,
    // and only then does MTFTP start.
    const rows = await waitFor('all four serving', () => serving(site, ['interface', 'signal', 'server', 'mtftp']), 60000, 300);
    for (const r of rows.values()) pids.push(r.pid!);
    assert.equal(new Set(pids).size, 4);
    assert.ok(!pids.includes(run.proc.pid!));
    assert.equal((await netboot(['status', '--config', site.configPath])).code, 0);
    const startupsBefore = mgmt.count('GET', '/pxe/startup');

    const server1 = rows.get('server')!.pid!;
    const mtftp1 = rows.get('mtftp')!.pid!;
    process.kill(server1, 'SIGKILL');
    const again = await waitFor('server and mtftp back', async () => {
      const r = await serving(site, ['server', 'mtftp']);
      return r !== undefined && r.get('server')!.pid !== server1 && r.get('mtftp')!.pid !== mtftp1 ? r : undefined;
    }, 60000, 300);
    pids.push(again.get('server')!.pid!, again.get('mtftp')!.pid!);
    assert.ok(!alive(server1) && !alive(mtftp1));
    const exit = run.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r.msg === 'service exited; restarting');
    assert.equal(exit?.child, 'server');
    assert.equal(exit?.signal, 'SIGKILL');
    // The restarted server told Signal, which ran the start-up sequence again.
    await waitFor('signal re-ran the start-up sequence', () => (mgmt.count('GET', '/pxe/startup') > startupsBefore ? true : undefined), 20000);

    run.proc.kill('SIGTERM');
    assert.deepEqual(await run.exited, { code: 0, signal: null });
    const records = run.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const stopping = records.findIndex((r) => r.msg === 'supervisor stopping');
    assert.ok(stopping > 0);
    const stopped = records.slice(stopping).filter((r) => r.msg === 'service stopped').map((r) => r.child);
    assert.deepEqual(stopped, ['mtftp', 'server', 'signal', 'interface']);
    assert.deepEqual(pids.filter(alive), []);
    assert.ok([...(await status(site)).values()].every((r) => !r.running));
  } finally {
    run.proc.kill('SIGKILL');
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await mgmt.stop();
    site.cleanup();
  }
});

test('children stop by themselves when the supervisor is killed outright', async () => {
  const site = await makeTestSite('', 'netboot-run-orphan');
  const run = start(['run', 'interface', 'signal', '--config', site.configPath]);
  let pids: number[] = [];
  try {
    const rows = await waitFor('interface and signal serving', () => serving(site, ['interface', 'signal']), 30000, 200);
    pids = ['interface', 'signal'].map((n) => rows.get(n)!.pid!);
    run.proc.kill('SIGKILL');
    await run.exited;
    await waitFor('children gone', () => (pids.some(alive) ? undefined : true), 15000, 100);
  } finally {
    run.proc.kill('SIGKILL');
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    site.cleanup();
  }
});
