// The command at an 80-column terminal (tmux): `netboot run` shows one readable line per event,
// and `status`, `state`, `peers` and `package status` fit 80 columns. Lines are captured joined
// (capture-pane -J), so a line that the terminal wrapped shows up as longer than 80.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { makeTestSite, waitFor } from '../helpers/env.ts';
import { inProcess, NETBOOT } from './cli-run.ts';

const SOCKET = `netboot-test-${process.pid}`;
const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
const pane = (target: string): string[] => tmux('capture-pane', '-p', '-J', '-S', '-', '-t', target).replace(/\n+$/, '').split('\n');
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

const PKG = 'linuxpe-x64-automation-with-a-long-name';

test('an 80-column terminal: readable run logs; status, state, peers and package status fit', async (t) => {
  assert.equal(spawnSync('sh', ['-c', 'command -v tmux']).status, 0, 'tmux is needed (installed by .ci/run)');
  const key = randomBytes(32).toString('base64');
  const site = await makeTestSite('', 'netboot-terminal');
  const keyFile = join(site.dir, 'site.key');
  writeFileSync(keyFile, key, { mode: 0o600 });
  // One peer that never answers, with a long name: the peers table has something to cut.
  writeFileSync(site.configPath, `${(await import('node:fs')).readFileSync(site.configPath, 'utf8').replace('id = "test-site"', `id = "test-site"\nkey_file = "${keyFile}"`)}\n[[peers]]\nid = "branch-office-on-the-far-side-of-the-country"\naddress = "127.0.0.1:9"\n`);
  const config = site.configPath;
  t.after(() => {
    spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
    site.cleanup();
  });
  tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'nb', '-x', '80', '-y', '50', `env -u NETBOOT_CONFIG ${quote(NETBOOT)} run --config ${quote(config)}; sleep 600`);
  tmux('set-option', '-t', 'nb', 'history-limit', '20000');

  await waitFor('all services serving', () => (pane('nb:0').some((l) => l.includes('all services serving')) ? true : undefined), 90_000, 300);

  // Something in every table: an image whose package is published (and so Ready here).
  const dir = join(site.dir, 'pkg');
  mkdirSync(dir);
  writeFileSync(join(dir, 'vmlinuz'), randomBytes(4096));
  for (const argv of [
    ['package', 'publish', dir, '--id', PKG, '--kind', 'image'],
    ['sbs', 'send', 'image', '--id', PKG, '--name', 'Linux automation image with a rather long descriptive name', '--arch', 'bios,efi-x64', '--type', 'linux', '--kernel', 'vmlinuz', '--package', PKG],
    ['sbs', 'send', 'client', '--mac', '52:54:00:ab:cd:ef', '--boot', PKG, '--name', 'LAB-PC-01-IN-THE-BASEMENT-NEXT-TO-THE-BOILER'],
  ]) {
    const r = await inProcess(['--config', config, ...argv]);
    assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
  }
  const sock = controlSocketPath(site.config.paths.data, 'interface');
  await waitFor('image and client applied', async () => {
    const s = await controlCall<{ objects: Array<{ table: string }> }>(sock, 'GET', '/state');
    return s.objects.some((o) => o.table === 'images') && s.objects.some((o) => o.table === 'clients') ? true : undefined;
  }, 30_000, 200);

  const outputs = new Map<string, string[]>();
  for (const cmd of ['status', 'state', 'peers', 'package status']) {
    const name = cmd.replace(' ', '-');
    tmux('new-window', '-d', '-t', 'nb', '-n', name, `env -u NETBOOT_CONFIG ${quote(NETBOOT)} ${cmd} --config ${quote(config)}; echo EXIT=$?; sleep 600`);
    const lines = await waitFor(`${cmd} finished`, () => {
      const l = pane(`nb:${name}`);
      return l.some((x) => x.startsWith('EXIT=')) ? l : undefined;
    }, 60_000, 200);
    outputs.set(cmd, lines);
    for (const l of lines) assert.ok(l.length <= 80, `netboot ${cmd}: a line of ${l.length} columns:\n${l}`);
    assert.ok(lines.includes('EXIT=0'), `netboot ${cmd}:\n${lines.join('\n')}`);
  }
  assert.match(outputs.get('status')!.join('\n'), /^SERVICE +STATE +PID +PORTS\ninterface +serving +\d+ +interface=\d+\nsignal +serving/m);
  const state = outputs.get('state')!.join('\n');
  assert.match(state, /^ {2}ID +NAME +TYPE +ARCH +PACKAGE +READY +ISSUED +INSTRUCTION$/m);
  assert.match(state, /^ {2}linuxpe-x64\S*… +Linux\S* +linux +bios\S* +linuxp\S* +yes +\d{4}-\S+ +[0-9a-f]\S+$/m);
  assert.match(state, /^ {2}52:54:00:ab:cd:ef +LAB-PC-01\S*… +boot linuxpe\S*/m);
  assert.match(outputs.get('peers')!.join('\n'), /^PEER +ADDRESS +LINK +AUTH +QUEUED +DELIVERED +LATENCY +LAST ERROR\nbranch-off\S*… +127\.0\.0\.1:9 +down +no +\d+ +\d+ +- +/m);
  assert.match(outputs.get('package status')!.join('\n'), new RegExp(`^${PKG} \\(image\\) seq 1 [0-9a-f]{12} owner test-s\\S*\\n {2}SERVER +STATE +SEQ +DIGEST +PROGRESS\\n {2}test-site +ready +1 +[0-9a-f]{12} +-$`, 'm'));

  // The run window: every line fits, none is JSON, each is an event line or its continuation.
  const logs = pane('nb:0');
  const events = logs.filter((l) => l !== '');
  assert.ok(events.length > 10, logs.join('\n'));
  for (const l of events) {
    assert.ok(l.length <= 80, `a log line of ${l.length} columns:\n${l}`);
    assert.match(l, /^(\d\d:\d\d:\d\d (supervisor|interface |signal {4}|server {4}|mtftp {5}) \S| {20}\S)/, l);
  }
  assert.ok(events.some((l) => / supervisor service serving {2}child=mtftp pid=\d+$/.test(l)), events.join('\n'));

  // Ctrl-C stops everything in order; the window shows it readably too.
  tmux('send-keys', '-t', 'nb:0', 'C-c');
  await waitFor('stopped', () => (pane('nb:0').some((l) => / supervisor service stopped {2}child=interface /.test(l)) ? true : undefined), 60_000, 300);
});
