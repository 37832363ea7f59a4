// The units under a real systemd: test/systemd/container.sh boots systemd as PID 1 of a throwaway
// machine (its own mount, pid and network namespaces, an in-memory overlay of this host's root),
// and everything here happens inside it the way an administrator would do it: `systemd/install.sh`
// from the checkout, then systemctl. What `systemd-analyze verify` cannot see is checked here:
// that each Type=notify unit really reports ready, runs as the netboot user with only
// CAP_NET_BIND_SERVICE, that MTFTP follows the server's lifetime (a crash, a stop, a start), and
// that stopping the target stops all four cleanly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, sleep, type Finished } from '../e2e/harness/processes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SERVICES = ['interface', 'signal', 'server', 'mtftp'] as const;
const unitOf = (s: string): string => `netboot-${s}.service`;
/** CAP_NET_BIND_SERVICE alone (bit 10), as /proc/PID/status prints it. */
const BIND_ONLY = '0000000000000400';

let dir = '';
let box: ChildProcess | undefined;
let init = 0; // the container's PID 1 (systemd), as this host numbers it
let consoleLog = '';

/** Runs a command inside the container, as root. */
function inside(command: string, args: readonly string[], timeoutMs = 30000, allowFail = false): Promise<Finished> {
  return runCommand('nsenter', ['-t', String(init), '-a', '-r', '-w', command, ...args], timeoutMs, allowFail);
}

async function show(unit: string): Promise<Record<string, string>> {
  const r = await inside('systemctl', ['show', unit, '-p', 'ActiveState', '-p', 'SubState', '-p', 'MainPID', '-p', 'StatusText', '-p', 'Result', '-p', 'NRestarts']);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Polls `check` until it returns a value (bounded); fails with the last state seen. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) {
      const states = await Promise.all(SERVICES.map(async (s) => `${s}: ${JSON.stringify(await show(unitOf(s)))}`));
      const journal = await inside('journalctl', ['--no-pager', '-n', '40', '-u', 'netboot-*'], 30000, true);
      assert.fail(`timed out waiting for ${what}\n${states.join('\n')}\n${journal.stdout}`);
    }
    await sleep(200);
  }
}

/** Each service's unit state, once all four are active with a main process. */
async function allActive(): Promise<Record<string, Record<string, string>> | undefined> {
  const states: Record<string, Record<string, string>> = {};
  for (const s of SERVICES) {
    const st = await show(unitOf(s));
    if (st.ActiveState !== 'active' || st.SubState !== 'running' || st.MainPID === '0') return undefined;
    states[s] = st;
  }
  return states;
}

async function tftpGet(name: string): Promise<string> {
  await inside('rm', ['-f', `/tmp/${name}`]);
  await inside('sh', ['-c', `cd /tmp && tftp 127.0.0.1 -m binary -c get ${name}`]);
  return (await inside('cat', [`/tmp/${name}`])).stdout;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'netboot-live-'));
  consoleLog = join(dir, 'console.log');
  const mountPoint = join(dir, 'machine');
  await runCommand('mkdir', ['-p', mountPoint]);
  const out = openSync(consoleLog, 'w');
  box = spawn('unshare', ['--mount', '--pid', '--fork', '--net', '--uts', '--ipc', join(ROOT, 'test/systemd/container.sh'), mountPoint, ROOT.replace(/\/$/, '')], { stdio: ['ignore', out, out] });
  const unsharePid = box.pid!;
  init = await waitFor('the container to start', async () => {
    const r = await runCommand('pgrep', ['-P', String(unsharePid)], 5000, true);
    const pid = Number(r.stdout.trim().split('\n')[0]);
    if (!(pid > 0)) return undefined;
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    return comm === 'systemd' ? pid : undefined;
  }, 30000).catch((err: unknown) => {
    throw new Error(`${String(err)}\nconsole:\n${readFileSync(consoleLog, 'utf8')}`);
  });
  // PID 1 exists a moment before its bus does: ask until it answers (bounded).
  let state: Finished | undefined;
  for (let i = 0; i < 300; i++) {
    state = await inside('systemctl', ['is-system-running', '--wait'], 90000, true);
    if (/^(running|degraded)$/.test(state.stdout.trim())) break;
    await sleep(200);
  }
  assert.match(state!.stdout.trim(), /^(running|degraded)$/, `the container's systemd did not finish booting: ${state!.stdout}${state!.stderr}`);
});

after(async () => {
  // SIGKILL to the namespace's PID 1 ends every process in it; its mounts go with it.
  if (init > 0) {
    try {
      process.kill(init, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (box !== undefined && box.exitCode === null) await new Promise((resolve) => box!.once('exit', resolve));
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

test('install.sh installs, enables and starts the four services; each reports ready only once it serves', async () => {
  const r = await inside('sh', ['-c', `cd '${ROOT}' && systemd/install.sh`], 120000, true);
  assert.equal(r.code, 0, `install.sh failed:\n${r.stdout}${r.stderr}`);
  const states = await waitFor('all four units active', allActive, 90000);
  for (const s of SERVICES) {
    // StatusText is what the service itself sent with READY=1: systemd saw the notification.
    assert.notEqual(states[s]!.StatusText, '', `${s} is active without having reported its status`);
  }
  assert.match(states.server!.StatusText!, /serving proxyDHCP/);
  assert.match(states.mtftp!.StatusText!, /serving TFTP on port 69/);
  const status = await inside('netboot', ['status']);
  for (const s of SERVICES) assert.match(status.stdout, new RegExp(`^${s}\\s+serving\\s`, 'm'), status.stdout);
});

test('each service runs as the netboot user with CAP_NET_BIND_SERVICE and nothing more', async () => {
  const states = await waitFor('all four units active', allActive);
  for (const s of SERVICES) {
    const pid = states[s]!.MainPID!;
    const proc = (await inside('cat', [`/proc/${pid}/status`])).stdout;
    const uid = /^Uid:\s+(\d+)/m.exec(proc)?.[1];
    const user = (await inside('id', ['-u', 'netboot'])).stdout.trim();
    assert.equal(uid, user, `${s} runs as uid ${uid}`);
    assert.equal(/^CapEff:\s+(\w+)/m.exec(proc)?.[1], BIND_ONLY, `${s} effective capabilities`);
    assert.equal(/^CapBnd:\s+(\w+)/m.exec(proc)?.[1], BIND_ONLY, `${s} bounding set`);
  }
});

test('MTFTP serves the TFTP root to a real client', async () => {
  await inside('install', ['-d', '-m', '0755', '/var/lib/netboot/tftp']);
  await inside('sh', ['-c', 'printf "live systemd %s\\n" "$(cat /proc/sys/kernel/random/uuid)" > /var/lib/netboot/tftp/hello.txt']);
  const expected = (await inside('cat', ['/var/lib/netboot/tftp/hello.txt'])).stdout;
  assert.equal(await tftpGet('hello.txt'), expected);
});

test('a crashed server is restarted by systemd, and MTFTP goes down and comes back with it', async () => {
  const before = await waitFor('all four units active', allActive);
  await inside('kill', ['-KILL', before.server!.MainPID!]);
  const after = await waitFor('the server and MTFTP back with new processes', async () => {
    const now = await allActive();
    if (now === undefined) return undefined;
    return now.server!.MainPID !== before.server!.MainPID && now.mtftp!.MainPID !== before.mtftp!.MainPID ? now : undefined;
  });
  assert.equal(after.interface!.MainPID, before.interface!.MainPID, 'the Interface is not touched by a server crash');
  assert.equal(after.signal!.MainPID, before.signal!.MainPID, 'Signal is not touched by a server crash');
  assert.match(await tftpGet('hello.txt'), /^live systemd /);
});

test('stopping the server stops MTFTP; starting it starts MTFTP again', async () => {
  await inside('systemctl', ['stop', unitOf('server')], 60000);
  const mtftp = await show(unitOf('mtftp'));
  assert.equal(mtftp.ActiveState, 'inactive', 'MTFTP must not outlive the server');
  await inside('systemctl', ['start', unitOf('server')], 90000);
  await waitFor('all four units active again', allActive);
});

test('stopping netboot.target stops all four cleanly', async () => {
  await inside('systemctl', ['stop', 'netboot.target'], 90000);
  // The target's own stop job finishes first (it is ordered after what it wants); the services'
  // stop jobs, pulled in by PartOf=, follow.
  const states = await waitFor('all four units stopped', async () => {
    const all = await Promise.all(SERVICES.map((s) => show(unitOf(s))));
    return all.every((st) => st.ActiveState === 'inactive' || st.ActiveState === 'failed') ? all : undefined;
  });
  states.forEach((st, i) => {
    assert.equal(st.ActiveState, 'inactive', `${SERVICES[i]}: ${JSON.stringify(st)}`);
    assert.equal(st.Result, 'success', `${SERVICES[i]} did not stop cleanly on SIGTERM: ${JSON.stringify(st)}`);
  });
});
