// Initial deployment through the agent's main (images/agent/main.ts) as a real process: the kernel
// command line (a --cmdline file) has `netboot.enrol=<secret>` and no job, the console (stdin, a
// pipe) gets no key, the default item (an erase of the first fixed disk, a loop device named by a
// /sys tree of our own) is taken when the countdown ends, and the agent runs the job the site made
// with the secret it got: the management-server stand-in receives machine-registered (with the
// inventory of that disk) before job-started, then job-completed, and the machine's next boot is
// the job's `then`. A secret that is not this machine's is refused (exit 1, nothing written); an
// item naming another preboot registers and restarts into it (runNow false: no job runs here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { waitFor } from '../helpers/env.ts';
import { withInitialSite, type InitialSite } from '../jobs/initial-site.ts';
import { attach, detach, MiB, sh } from './disks.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const MAC = '52:54:00:12:34:77';

// biome-ignore lint/suspicious/noThenProperty: the spec names this member `then`
const ERASE = { label: 'Erase this disk', job: { task: 'erase', preboot: 'linuxpe-x64', method: 'zero', then: { type: 'local' } } };
// biome-ignore lint/suspicious/noThenProperty: the spec names this member `then`
const ELSEWHERE = { label: 'Elsewhere', job: { task: 'erase', preboot: 'other-pe', method: 'zero', then: { type: 'local' } } };
// biome-ignore lint/suspicious/noThenProperty: the spec names this member `then`
const WAIT = { label: 'Nothing (wait)', job: { task: 'erase', preboot: 'linuxpe-x64', method: 'discard', then: { type: 'wait' } } };

interface Machine {
  readonly disk: string;
  readonly dev: string;
  readonly sys: string;
  readonly devDir: string;
}

/** An 8 MiB disk of random bytes as a loop device, the first fixed disk of a /sys tree of our own. */
async function withMachine(dir: string, fn: (m: Machine) => Promise<void>): Promise<void> {
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, randomBytes(8 * MiB));
  const dev = attach(disk);
  try {
    const sys = join(dir, 'sys');
    mkdirSync(join(sys, 'block/sda/device'), { recursive: true });
    writeFileSync(join(sys, 'block/sda/removable'), '0\n');
    writeFileSync(join(sys, 'block/sda/size'), `${sh('blockdev', ['--getsz', dev]).trim()}\n`);
    mkdirSync(join(dir, 'dev'));
    symlinkSync(dev, join(dir, 'dev/sda'));
    await fn({ disk, dev, sys, devDir: join(dir, 'dev') });
  } finally {
    detach(dev);
  }
}

/** The agent's main as the preboot runs it, with this kernel command line; stdin a pipe that stays open and silent. */
function runAgent(env: InitialSite, m: Machine, secret: string): Promise<{ code: number | null; out: string }> {
  const cmdline = join(env.site.dir, 'cmdline');
  writeFileSync(cmdline, `initrd=initrd.img console=ttyS0 netboot.server=127.0.0.1 netboot.enrol=${secret}\n`);
  const args = ['--import', 'tsx', 'images/agent/main.ts', '127.0.0.1', MAC, '127.0.0.2', '--cmdline', cmdline,
    '--server', env.server.replace('http://', ''), '--no-reboot', '--sys', m.sys, '--dev', m.devDir, '--check-ms', '200'];
  return new Promise((res) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill(), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, out });
    });
  });
}

test('an unknown machine enrols through the agent: the default (an erase) after the countdown, run at once with the job\'s secret', async () => {
  await withInitialSite(async (env) => {
    await withMachine(env.site.dir, async (m) => {
      const run = await runAgent(env, m, env.secretOf(MAC));
      assert.equal(run.code, 0, run.out);
      assert.match(run.out, /this machine is new to the site\. Choose what it should do:\r\n {2}1\) Erase this disk {2}\[erase\] {2}\(default\)\r\n {2}2\) Nothing \(wait\)/);
      assert.match(run.out, /"Erase this disk" chosen \(the default\)/);
      assert.match(run.out, /registered; job [0-9a-f-]{36} starts now/);
      assert.match(run.out, /erase-zero +100%/);
      assert.ok(readFileSync(m.disk).equals(Buffer.alloc(8 * MiB)), 'the disk is zeroed');
      const done = await waitFor('job-completed', () => env.mgmt.events.find((e) => e.kind === 'job-completed'), 20_000);
      const kinds = env.mgmt.events.map((e) => e.kind);
      assert.ok(kinds.indexOf('machine-registered') < kinds.indexOf('job-started'), kinds.join(' '));
      const reg = env.mgmt.events.find((e) => e.kind === 'machine-registered')!;
      assert.equal(reg.mac, MAC);
      assert.equal(reg.jobId, done.jobId);
      assert.equal((reg.inventory as { disk: { sizeBytes: number } }).disk.sizeBytes, 8 * MiB);
      assert.equal(env.svc.jobs.get(done.jobId as string)?.state, 'completed');
      assert.deepEqual(env.svc.state.state().clients?.find((c) => c.mac === MAC)?.action, { type: 'local' });
    });
  }, { preboot: 'linuxpe-x64', items: [ERASE, WAIT], default: 0, timeoutSec: 1 });
});

test('an enrolment secret that is not this machine\'s: the site refuses, the agent says so and exits 1, the disk untouched', async () => {
  await withInitialSite(async (env) => {
    await withMachine(env.site.dir, async (m) => {
      const before = readFileSync(m.disk);
      const run = await runAgent(env, m, env.secretOf('52:54:00:99:99:99'));
      assert.equal(run.code, 1, run.out);
      assert.match(run.out, /refused the enrolment \(403\)/);
      assert.ok(readFileSync(m.disk).equals(before));
      assert.equal(env.mgmt.events.filter((e) => e.kind === 'machine-registered').length, 0);
    });
  }, { preboot: 'linuxpe-x64', items: [ERASE], default: 0, timeoutSec: 0 });
});

test('an item whose job needs another preboot: the agent registers and restarts into it (runNow false), nothing runs here', async () => {
  await withInitialSite(async (env) => {
    await env.drop('images', { images: [
      { id: 'linuxpe-x64', name: 'Linux PE', arch: ['bios'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img'] },
      { id: 'other-pe', name: 'Other PE', arch: ['bios'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img'] },
    ] });
    await withMachine(env.site.dir, async (m) => {
      const before = readFileSync(m.disk);
      const run = await runAgent(env, m, env.secretOf(MAC));
      assert.equal(run.code, 0, run.out);
      assert.match(run.out, /needs preboot other-pe: restarting into it/);
      assert.doesNotMatch(run.out, /netboot agent: job /);
      assert.ok(readFileSync(m.disk).equals(before));
      const reg = await waitFor('machine-registered', () => env.mgmt.events.find((e) => e.kind === 'machine-registered'), 20_000);
      assert.equal(env.svc.jobs.get(reg.jobId as string)?.state, 'pending');
    });
  }, { preboot: 'linuxpe-x64', items: [ELSEWHERE], default: 0, timeoutSec: 0 });
});
