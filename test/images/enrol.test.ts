// The agent's enrolment (images/agent/enrol.ts) on real streams against a real Interface: the
// list on the console, the default after the countdown, a key that picks another item, no prompt
// with timeoutSec 0 and a default, and no default: it waits for a key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { EnrolError, runEnrolment, type EnrolOptions } from '../../images/agent/enrol.ts';
import { waitFor } from '../helpers/env.ts';
import { INITIAL, withInitialSite, type InitialSite } from '../jobs/initial-site.ts';

const MAC = '52:54:00:12:34:56';
const INVENTORY = { disk: { path: '/dev/vda', model: null, serial: null, sizeBytes: 1 << 30, sectorBytes: 512, table: null, partitions: [] }, os: null };

interface Console {
  readonly input: PassThrough;
  readonly output: PassThrough;
  /** Everything written to the console so far. */
  text(): string;
}

function console(): Console {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return { input, output, text: () => text };
}

function options(env: InitialSite, con: Console, over: Partial<EnrolOptions> = {}): EnrolOptions {
  return {
    server: env.server, mac: MAC, secret: env.secretOf(MAC), input: con.input, output: con.output,
    inventory: async () => INVENTORY, uuid: async () => '8a3c2d1e-0000-4000-8000-0000000000aa', retryMs: 50, ...over,
  };
}

test('the default is taken when the countdown ends; the job and its secret come back, and the site has registered the machine', async () => {
  await withInitialSite(async (env) => {
    const con = console();
    const r = await runEnrolment(options(env, con));
    assert.equal(r.chosenBy, 'default');
    assert.equal(r.label, 'Windows 11 lab image');
    assert.equal(r.runNow, true, 'the job\'s preboot is the one running');
    assert.match(r.secret, /^[0-9a-f]{64}$/);
    const text = con.text();
    assert.match(text, /this machine is new to the site\. Choose what it should do:\r\n {2}1\) Windows 11 lab image {2}\[deploy\] {2}\(default\)\r\n {2}2\) Erase and hand back {2}\[erase\]\r\n/);
    assert.match(text, /starts in 1 s unless a key is pressed/);
    assert.match(text, /registered; job [0-9a-f-]{36} starts now/);
    const job = env.svc.jobs.get(r.jobId);
    assert.equal(job?.task, 'deploy');
    // The secret works on the job API at once: the agent's main runs the job without a reboot.
    assert.equal((await env.agent(r.secret, 'started')).status, 200);
    const reg = await waitFor('machine-registered', () => env.mgmt.events.find((e) => e.kind === 'machine-registered'), 15000);
    assert.deepEqual([reg.mac, reg.uuid, reg.label, reg.jobId], [MAC, '8a3c2d1e-0000-4000-8000-0000000000aa', 'Windows 11 lab image', r.jobId]);
    assert.deepEqual(reg.inventory, INVENTORY);
  }, { ...INITIAL, timeoutSec: 2 });
});

test('a key picks another item: a digit at once, or the arrows and Enter', async () => {
  await withInitialSite(async (env) => {
    const con = console();
    const running = runEnrolment(options(env, con));
    await waitFor('the list on the console', () => (con.text().includes('Press 1-2') ? true : undefined));
    con.input.write('2');
    const r = await running;
    assert.equal(r.chosenBy, 'key');
    assert.equal(r.label, 'Erase and hand back');
    assert.equal(env.svc.jobs.get(r.jobId)?.task, 'erase');
  });
  await withInitialSite(async (env) => {
    const con = console();
    const running = runEnrolment(options(env, con));
    await waitFor('the list on the console', () => (con.text().includes('Press 1-2') ? true : undefined));
    con.input.write('\x1b[B'); // down: item 2, and the countdown stops
    await waitFor('the selection moved', () => (con.text().includes('> 2) Erase and hand back: Enter to start') ? true : undefined));
    con.input.write('\x1b[B\x1b[A\x1b'); // down (wraps to 1), up (2 again), and half an escape sequence
    con.input.write('[A\x1b[B\r'); // its end (up: 1), down (2), Enter
    const r = await running;
    assert.equal(r.chosenBy, 'key');
    assert.equal(r.label, 'Erase and hand back');
  });
});

test('timeoutSec 0 with a default: no prompt, straight to the job', async () => {
  await withInitialSite(async (env) => {
    const con = console();
    const r = await runEnrolment(options(env, con));
    assert.equal(r.chosenBy, 'default');
    assert.equal(r.label, 'Erase and hand back');
    assert.ok(!con.text().includes('Choose what it should do'), con.text());
    assert.match(con.text(), /"Erase and hand back" \(the site's default, no prompt\)/);
  }, { ...INITIAL, default: 1, timeoutSec: 0 });
});

test('no default: the machine waits at the list until a key is pressed', async () => {
  const { default: _d, ...noDefault } = INITIAL;
  await withInitialSite(async (env) => {
    const con = console();
    let settled = false;
    const running = runEnrolment(options(env, con)).finally(() => (settled = true));
    await waitFor('the list on the console', () => (con.text().includes('no default: waiting for a choice') ? true : undefined));
    // Longer than timeoutSec (1 s): nothing is chosen, nothing is registered.
    await delay(1500);
    assert.equal(settled, false);
    assert.equal(env.svc.jobs.list().length, 0);
    con.input.write('1');
    const r = await running;
    assert.equal(r.label, 'Windows 11 lab image');
    assert.equal(r.chosenBy, 'key');
  }, { ...noDefault, timeoutSec: 1 });
});

test('a machine that chose before gets its job again without a prompt; a refusal is an EnrolError with the site\'s reason', async () => {
  await withInitialSite(async (env) => {
    const first = await runEnrolment(options(env, console()));
    const con = console();
    const again = await runEnrolment(options(env, con));
    assert.equal(again.jobId, first.jobId);
    assert.equal(again.chosenBy, 'registered');
    assert.ok(!con.text().includes('Choose what it should do'));
    await assert.rejects(runEnrolment(options(env, console(), { secret: env.secretOf('52:54:00:12:34:57') })), (err: unknown) => {
      assert.ok(err instanceof EnrolError);
      assert.equal(err.status, 403);
      assert.match(err.message, /not this machine's/);
      return true;
    });
  }, { ...INITIAL, timeoutSec: 0 });
});

test('the site not reachable yet: the agent says so and tries again', async () => {
  await withInitialSite(async (env) => {
    const con = console();
    let calls = 0;
    const flaky: typeof fetch = async (url, init) => {
      calls++;
      if (calls <= 2) throw new TypeError('fetch failed');
      return fetch(url, init);
    };
    const r = await runEnrolment(options(env, con, { fetch: flaky }));
    assert.equal(r.chosenBy, 'default');
    assert.match(con.text(), /cannot reach the site server at http:\/\/127\.0\.0\.1:\d+: fetch failed; trying again in 1 s/);
  }, { ...INITIAL, timeoutSec: 0 });
});

test('an item whose job needs another preboot: registered, and main is told to restart into it', async () => {
  const other = { ...INITIAL, timeoutSec: 0, items: [{ label: 'Memory test first', job: { task: 'erase', preboot: 'memtest-pe' } }] };
  await withInitialSite(async (env) => {
    const con = console();
    const r = await runEnrolment(options(env, con));
    assert.equal(r.runNow, false);
    assert.match(con.text(), /needs preboot memtest-pe: restarting into it/);
    assert.equal(env.svc.state.state().jobs?.[0]?.preboot, 'memtest-pe');
  }, other);
});
