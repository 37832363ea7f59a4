// sd-notify against a real AF_UNIX datagram socket (a perl receiver: perl-base is in every
// Debian system; Node cannot bind such sockets), through the real systemd-notify.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { notifyReady, notifyStopping } from '../../platform/runtime/sd-notify.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { waitFor } from '../helpers/env.ts';

const RECEIVER = `
use IO::Socket::UNIX; use Socket;
my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $ARGV[0]) or die "bind: $!";
$| = 1; print "listening\\n";
while (1) { my $buf = ''; defined($s->recv($buf, 65536)) or die "recv: $!"; print "MSG ", join("|", split(/\\n/, $buf)), "\\n"; }
`;

async function withReceiver(fn: (socketPath: string, messages: string[]) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-notify-'));
  const socketPath = join(dir, 'notify.sock');
  const child = spawn('perl', ['-e', RECEIVER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  let listening = false;
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line === 'listening') listening = true;
    else if (line.startsWith('MSG ')) messages.push(line.slice(4));
  });
  try {
    await waitFor('the notify receiver', () => (listening ? true : undefined));
    await fn(socketPath, messages);
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

test('READY=1 and our pid reach the notify socket', async () => {
  await withReceiver(async (socketPath, messages) => {
    const log = createMemoryLogger();
    const sent = await notifyReady(log, 'serving on 806', { ...process.env, NOTIFY_SOCKET: socketPath });
    assert.equal(sent, true);
    const ready = await waitFor('READY=1', () => messages.find((m) => m.split('|').includes('READY=1')));
    const fields = ready.split('|');
    assert.ok(fields.includes(`MAINPID=${process.pid}`), ready);
    assert.ok(fields.includes('STATUS=serving on 806'), ready);
  });
});

test('STOPPING=1 reaches the notify socket', async () => {
  await withReceiver(async (socketPath, messages) => {
    assert.equal(await notifyStopping(createMemoryLogger(), { ...process.env, NOTIFY_SOCKET: socketPath }), true);
    await waitFor('STOPPING=1', () => messages.find((m) => m.split('|').includes('STOPPING=1')));
  });
});

test('without NOTIFY_SOCKET nothing is sent and nothing is logged', async () => {
  const log = createMemoryLogger();
  const env = { ...process.env };
  delete env.NOTIFY_SOCKET;
  assert.equal(await notifyReady(log, undefined, env), false);
  assert.deepEqual(log.records, []);
});

test('a notify socket nobody listens on is logged, never thrown', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-notify-'));
  try {
    const log = createMemoryLogger();
    const sent = await notifyReady(log, undefined, { ...process.env, NOTIFY_SOCKET: join(dir, 'nobody.sock') });
    assert.equal(sent, false);
    const warn = log.records.find((r) => r.msg === 'systemd notification failed');
    assert.ok(warn, JSON.stringify(log.records));
    assert.ok(typeof warn.reason === 'string' && warn.reason.length > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
