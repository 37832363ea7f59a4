// Readiness tells the truth, and a service that cannot start exits non-zero with its reason
// (issue 15 item 3, issue 16 item 3): `netboot run interface` with an SBS folder path that is a
// file logs why, releases its port and control socket, and exits by itself; its control socket
// never says "serving" meanwhile. In-process: status says "starting" until the last part is up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { reachablePort } from '../../platform/local/bound-port.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { makeTestSite, waitFor } from '../helpers/env.ts';
import { spawnService } from '../helpers/process.ts';

async function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

test('netboot run interface: an SBS folder path that is a file -> reason logged, port and socket released, exit 1, never "serving"', async () => {
  const site = await makeTestSite('', 'iface-start-fail');
  writeFileSync(site.config.paths.sbs, 'not a folder');
  const proc = spawnService(['interface'], site.configPath);
  const socket = controlSocketPath(site.config.paths.data, 'interface');
  const seen = new Set<string>();
  let exited = false;
  void proc.exited.then(() => (exited = true));
  try {
    // Ask the control socket as often as it answers until the process ends by itself.
    while (!exited) {
      try {
        seen.add(String((await controlCall<{ state?: unknown }>(socket, 'GET', '/status', undefined, 1000)).state));
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const exit = await proc.exited;
    assert.equal(exit.code, 1, 'exits non-zero by itself');
    assert.ok(!seen.has('serving'), `status said ${[...seen].join(', ')}`);
    const failed = proc.logs.find((l) => l.msg === 'interface failed to start');
    assert.ok(failed !== undefined, 'the reason is logged');
    assert.match(JSON.stringify(failed), /sbs/);
    assert.equal(existsSync(socket), false, 'control socket removed');
    // Port 0: the port the kernel picked, as the Interface recorded it for our other processes.
    const port = reachablePort(site.config.paths.data, 'interface', site.config.interface.port);
    assert.ok(port > 0, 'the port was bound before the SBS folder failed');
    assert.equal(await canListen(port), true, 'TCP port released');
  } finally {
    await proc.kill('SIGKILL');
    site.cleanup();
  }
});

test('netboot run interface: TCP port already taken -> exit 1 with EADDRINUSE in the log, control socket released', async () => {
  // The holder takes a port first (0: the kernel's pick); the site is then configured with it.
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', () => resolve()));
  const site = await makeTestSite(`[interface]\nport = ${(holder.address() as { port: number }).port}`, 'iface-port-taken');
  const proc = spawnService(['interface'], site.configPath);
  try {
    const exit = await proc.exited;
    assert.equal(exit.code, 1);
    assert.match(JSON.stringify(proc.logs.find((l) => l.msg === 'interface failed to start')), /EADDRINUSE/);
    assert.equal(existsSync(controlSocketPath(site.config.paths.data, 'interface')), false);
  } finally {
    await proc.kill('SIGKILL');
    holder.close();
    site.cleanup();
  }
});

test('the Interface says "starting" until its last part (the package component) is up, then "serving"', async () => {
  const site = await makeTestSite('', 'iface-ready');
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let packagesStarting = false;
  const svc = buildInterface(site.config, createMemoryLogger(), {
    wrapPackages: (p: Lifecycle) => ({
      start: async () => {
        packagesStarting = true;
        await held;
        await p.start();
      },
      stop: () => p.stop(),
    }),
  });
  const socket = controlSocketPath(site.config.paths.data, 'interface');
  const starting = svc.start();
  try {
    await waitFor('the package component starting', () => (packagesStarting ? true : undefined));
    const during = await controlCall<{ state: string; warnings: unknown }>(socket, 'GET', '/status');
    assert.equal(during.state, 'starting');
    assert.deepEqual(during.warnings, []);
    await assert.rejects(controlCall(socket, 'GET', '/packages'), /starting/);
    release();
    await starting;
    assert.equal((await controlCall<{ state: string }>(socket, 'GET', '/status')).state, 'serving');
  } finally {
    release();
    await starting.catch(() => {});
    await svc.stop();
    site.cleanup();
  }
});
