// Imaging jobs through the real Interface: dropped SBS files, SQLite, the agent's API on its
// port, and a management-server stand-in that receives the outbox's events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { machineScript } from '../../boot/ipxe-script.ts';
import { decide, machineAction } from '../../boot/pxe-policy.ts';
import { writeFileAtomic } from '../../platform/runtime/atomic-file.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import type { InterfaceService } from '../../services/interface/interface-service.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';
import { management, type Mgmt } from '../helpers/event-recorder.ts';
import { FeedClient } from '../helpers/feed-client.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';

const MAC = '52:54:00:12:34:56';
const MAC2 = '52:54:00:00:00:02';
const JOB_A = 'aaaaaaaa-0000-4000-8000-000000000001';
const JOB_B = 'bbbbbbbb-0000-4000-8000-000000000002';
const JOB_C = 'cccccccc-0000-4000-8000-000000000003';
let n = 0;
const newId = (): string => `11111111-2222-4333-8444-${String(++n).padStart(12, '0')}`;



interface Env {
  readonly site: TestSite;
  readonly svc: InterfaceService;
  readonly mgmt: Mgmt;
  drop(kind: string, payload: object, issued?: string): Promise<string>;
  agent(secret: string, what: string, body?: object): Promise<{ status: number; body: Record<string, unknown> }>;
  secretOf(jobId: string): string;
}

async function withJobs(fn: (env: Env) => Promise<void>): Promise<void> {
  const mgmt = await management();
  const site = await makeTestSite(`[management]\nurl = "${mgmt.url}"\n[interface]\nsettle_ms = 10\n`);
  const svc = buildInterface(site.config, createMemoryLogger());
  await svc.start();
  const drop = async (kind: string, payload: object, issued = new Date().toISOString()): Promise<string> => {
    const id = newId();
    writeFileAtomic(join(site.config.paths.sbs, `${id}.sbs`), JSON.stringify({ sbs: 1, id, kind, issued, ...payload }));
    await waitFor(`instruction ${kind} applied`, () => (svc.state.hasApplied(id) ? true : undefined));
    return id;
  };
  const agent = async (secret: string, what: string, body?: object) => {
    const res = await fetch(`http://127.0.0.1:${svc.boundPort}/agent/job${what === '' ? '' : `/${what}`}`, {
      method: what === '' ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      ...(what === '' ? {} : { body: JSON.stringify(body ?? {}) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const secretOf = (jobId: string): string => {
    const job = svc.state.state().jobs?.find((j) => j.jobId === jobId);
    assert.ok(job !== undefined, `job ${jobId} is on the feed`);
    return job.secret;
  };
  try {
    const issued = '2026-12-05T09:00:00Z';
    await drop('config', { config: { respond: 'known', bootFiles: { bios: 'undionly.kpxe', 'efi-x64': 'snponly.efi' } } }, issued);
    await drop('clients', { clients: [{ mac: MAC2, action: { type: 'local' } }] }, issued);
    await drop('images', { images: [{ id: 'linuxpe-x64', name: 'Linux PE', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img'] }] }, issued);
    await fn({ site, svc, mgmt, drop, agent, secretOf });
  } finally {
    await svc.stop();
    site.cleanup();
    mgmt.close();
  }
}

function deploy(jobId: string, mac = MAC, then: object = { type: 'menu' }): object {
  return { job: { jobId, mac, task: 'deploy', preboot: 'linuxpe-x64', package: 'win11-gold', then } };
}

const clientAction = (svc: InterfaceService, mac: string) => svc.state.state().clients?.find((c) => c.mac === mac)?.action;

test('a dropped job makes an unknown machine boot its preboot; completion through the agent API sets `then` and the events reach the management server in order', async () => {
  await withJobs(async ({ svc, mgmt, drop, agent }) => {
    const state0 = svc.state.state();
    assert.ok('none' in decide({ mac: MAC, archCode: 7, isIpxe: true, port: 'dhcp' }, state0), 'unknown machine, respond known: no offer before the job');
    await drop('job', deploy(JOB_A));
    const state = svc.state.state();
    const d = decide({ mac: MAC, archCode: 7, isIpxe: true, port: 'dhcp' }, state);
    assert.ok('offer' in d, JSON.stringify(d));
    assert.match(d.offer.reason, new RegExp(`job ${JOB_A} \\(deploy\\): boots preboot linuxpe-x64`));
    const script = machineScript(MAC, machineAction(MAC, state), state);
    const secret = /netboot\.job=([0-9a-f-]+) netboot\.secret=([0-9a-f]{64})/.exec(script);
    assert.ok(secret !== null, script);
    assert.equal(secret[1], JOB_A);
    const key = secret[2]!;

    const first = await agent(key, '');
    assert.equal(first.status, 200);
    assert.equal((first.body.job as { state: string }).state, 'pending');
    assert.deepEqual((first.body.job as { reads: string[] }).reads, ['win11-gold']);
    assert.equal((await agent(key, 'progress', { phase: 'write', bytesDone: 1, bytesTotal: 10 })).status, 409, 'progress before started');
    assert.equal((await agent(key, 'started', { jobId: JOB_A })).status, 200);
    assert.equal(svc.jobs.mayRead(key, 'win11-gold'), true);
    assert.equal(svc.jobs.mayRead(key, 'other'), false);
    assert.equal(svc.jobs.mayWrite(key, 'win11-gold'), false, 'a deploy writes no package');
    // Two reports within 5 s: both are kept, one event.
    assert.equal((await agent(key, 'progress', { phase: 'write', bytesDone: 5, bytesTotal: 10 })).status, 200);
    const p2 = await agent(key, 'progress', { phase: 'write', bytesDone: 7, bytesTotal: 10 });
    assert.equal((p2.body.job as { bytesDone: number }).bytesDone, 7);
    const result = { package: 'win11-gold', bytesWritten: 10, bytesTransferred: 4, seconds: 1.5 };
    const done = await agent(key, 'completed', { jobId: JOB_A, result });
    assert.equal(done.status, 200);
    assert.equal((done.body.job as { state: string }).state, 'completed');
    assert.deepEqual(clientAction(svc, MAC), { type: 'menu' }, 'the machine\'s action is now the job\'s then');
    assert.deepEqual(svc.state.state().jobs, [], 'the job left the feed');
    assert.equal((await agent(key, '')).status, 403, 'the secret ended with its job');
    assert.equal(svc.jobs.mayRead(key, 'win11-gold'), false);

    const events = await waitFor('the job events up to job-completed', () => {
      const jobEvents = mgmt.events.filter((e) => String(e.kind).startsWith('job-'));
      return jobEvents.some((e) => e.kind === 'job-completed') ? jobEvents : undefined;
    }, 15000);
    // Two progress reports in quick succession make one event (the 5 s rate: test/jobs/job-book.test.ts
    // pins it with a test clock; here a slow machine could space them out, so one or two).
    const kinds = events.map((e) => e.kind);
    assert.equal(kinds[0], 'job-started');
    assert.equal(kinds.at(-1), 'job-completed');
    assert.ok(kinds.length === 3 || kinds.length === 4, kinds.join(', '));
    assert.ok(kinds.slice(1, -1).every((k) => k === 'job-progress'), kinds.join(', '));
    for (const e of events) {
      assert.equal(e.jobId, JOB_A);
      assert.equal(e.mac, MAC);
      assert.equal(e.task, 'deploy');
      assert.ok(Number.isFinite(Date.parse(String(e.at))));
    }
    assert.equal(events[0]!.preboot, 'linuxpe-x64');
    assert.deepEqual([events[1]!.phase, events[1]!.bytesDone, events[1]!.bytesTotal], ['write', 5, 10]);
    assert.deepEqual(events.at(-1)!.result, result);
    assert.ok(!JSON.stringify(mgmt.events).includes(key), 'the secret never leaves the site');
  });
});

test('a failure sets `wait`; a secret of another job, of no job, or none at all is refused', async () => {
  await withJobs(async ({ svc, mgmt, drop, agent, secretOf }) => {
    await drop('job', deploy(JOB_A));
    await drop('job', { job: { jobId: JOB_B, mac: MAC2, task: 'capture', preboot: 'linuxpe-x64', package: 'lab' } });
    const a = secretOf(JOB_A);
    const b = secretOf(JOB_B);
    assert.notEqual(a, b);
    assert.equal((await agent(a, 'started', { jobId: JOB_B })).status, 403, 'the secret of A claiming B');
    assert.equal((await agent(randomBytes(32).toString('hex'), '')).status, 403);
    const none = await fetch(`http://127.0.0.1:${svc.boundPort}/agent/job`);
    assert.equal(none.status, 401);
    assert.equal((await agent(a, 'failed', { reason: 'x' })).status, 400, 'phase is required');
    assert.equal(svc.jobs.mayWrite(b, 'lab'), true);
    assert.equal(svc.jobs.mayWrite(a, 'lab'), false, 'A may not write B\'s package');
    assert.equal(svc.jobs.mayRead(b, 'lab'), false);

    assert.equal((await agent(a, 'started')).status, 200);
    const failed = await agent(a, 'failed', { reason: 'disk too small: needs 64 GiB, has 32 GiB', phase: 'check' });
    assert.equal(failed.status, 200);
    assert.deepEqual(clientAction(svc, MAC), { type: 'wait' });
    assert.equal(svc.jobs.get(JOB_A)?.state, 'failed');
    assert.equal(svc.jobs.get(JOB_B)?.state, 'pending', 'the other machine\'s job is untouched');
    assert.deepEqual(clientAction(svc, MAC2), { type: 'local' });
    const ev = await waitFor('job-failed', () => mgmt.events.find((e) => e.kind === 'job-failed'), 15000);
    assert.deepEqual([ev.jobId, ev.reason, ev.phase], [JOB_A, 'disk too small: needs 64 GiB, has 32 GiB', 'check']);
    assert.equal((await agent(a, 'started')).status, 403);
  });
});

test('a replaced pending job never runs; a running one is cancelled at its next check, then the new one runs', async () => {
  await withJobs(async ({ svc, drop, agent, secretOf }) => {
    await drop('job', deploy(JOB_A), '2026-12-05T10:00:00Z');
    const a = secretOf(JOB_A);
    await drop('job', deploy(JOB_B), '2026-12-05T10:01:00Z');
    assert.equal(svc.jobs.get(JOB_A)?.state, 'cancelled');
    assert.match(svc.jobs.get(JOB_A)?.reason ?? '', new RegExp(`replaced by job ${JOB_B}`));
    assert.equal((await agent(a, 'started')).status, 403, 'the replaced job\'s secret is dead');
    assert.deepEqual(svc.state.state().jobs?.map((j) => j.jobId), [JOB_B]);
    // A job for the machine issued before B, arriving after it: recorded, never runs.
    await drop('job', deploy(JOB_C), '2026-12-05T09:59:00Z');
    assert.equal(svc.jobs.get(JOB_C)?.state, 'cancelled');
    assert.deepEqual(svc.state.state().jobs?.map((j) => j.jobId), [JOB_B]);

    const b = secretOf(JOB_B);
    assert.equal((await agent(b, 'started')).status, 200);
    await drop('job', deploy(JOB_C.replace('cccccccc', 'dddddddd')), '2026-12-05T10:02:00Z');
    assert.equal(svc.jobs.get(JOB_B)?.cancelRequested, true);
    let st = svc.state.state();
    const holding = machineAction(MAC, st);
    assert.ok(!('none' in holding));
    assert.match(holding.note, new RegExp(`job ${JOB_B}`), 'the running job still holds the machine');
    const cancelled = await agent(b, 'progress', { phase: 'write', bytesDone: 1, bytesTotal: 2 });
    assert.equal(cancelled.status, 410);
    assert.deepEqual(clientAction(svc, MAC), { type: 'wait' });
    st = svc.state.state();
    const m = machineAction(MAC, st);
    assert.ok(!('none' in m));
    assert.match(m.note, /job dddddddd-.* \(deploy\): boots preboot linuxpe-x64/);
  });
});

test('instructions are idempotent; job-cancel ends a pending job; jobs and secrets survive a restart', async () => {
  await withJobs(async ({ site, svc, drop, secretOf }) => {
    const id = await drop('job', deploy(JOB_A), '2026-12-05T10:00:00Z');
    const secret = secretOf(JOB_A);
    // The same instruction again: a no-op. A resend with a newer issued while pending: same secret.
    writeFileAtomic(join(site.config.paths.sbs, 'again.sbs'), JSON.stringify({ sbs: 1, id, kind: 'job', issued: '2026-12-05T10:00:00Z', ...deploy(JOB_A, MAC, { type: 'wait' }) }));
    await waitFor('the duplicate archived', () => (existsSync(join(site.config.paths.sbs, 'again.sbs')) ? undefined : true));
    assert.deepEqual(svc.jobs.get(JOB_A)?.job.then, { type: 'menu' });
    await drop('job', deploy(JOB_A, MAC, { type: 'local' }), '2026-12-05T10:05:00Z');
    assert.deepEqual(svc.jobs.get(JOB_A)?.job.then, { type: 'local' });
    assert.equal(secretOf(JOB_A), secret);

    await svc.stop();
    const again = buildInterface(site.config, createMemoryLogger());
    await again.start();
    try {
      assert.equal(again.state.state().jobs?.[0]?.secret, secret);
      assert.equal(again.jobs.mayRead(secret, 'win11-gold'), true);
      const cancelId = newId();
      writeFileAtomic(join(site.config.paths.sbs, 'cancel.sbs'), JSON.stringify({ sbs: 1, id: cancelId, kind: 'job-cancel', issued: '2026-12-05T10:06:00Z', jobId: JOB_A }));
      await waitFor('the cancel applied', () => (again.state.hasApplied(cancelId) ? true : undefined));
      assert.equal(again.jobs.get(JOB_A)?.state, 'cancelled');
      assert.equal(clientAction(again, MAC), undefined, 'cancelled before it ran: the machine keeps what it had (no entry)');
      assert.deepEqual(again.state.state().jobs, []);
    } finally {
      await again.stop();
      // svc stays stopped: withJobs stopping it again is a no-op.
    }
  });
});

test('the PXE server\'s pxe-booted for the job consumes the job\'s preboot boot, not the client\'s; the control socket never shows a secret', async () => {
  await withJobs(async ({ site, svc, drop, secretOf }) => {
    await drop('job', deploy(JOB_A, MAC2));
    const secret = secretOf(JOB_A);
    const feed = await FeedClient.connect(svc.boundPort, site.config.paths.data);
    const old = await FeedClient.connect(svc.boundPort, site.config.paths.data);
    try {
      feed.send({ type: 'subscribe', jobs: true });
      assert.equal((await feed.next('snapshot')).state.jobs?.[0]?.jobId, JOB_A);
      // A subscriber older than jobs never sees the table: a snapshot without it, then (below)
      // a snapshot where a change touched jobs, never a change it could not apply.
      old.send({ type: 'subscribe' });
      const oldSnap = await old.next('snapshot');
      assert.equal('jobs' in oldSnap.state, false);
      feed.send({ type: 'event', eventId: 'job-boot-1', event: { kind: 'pxe-booted', mac: MAC2, image: 'linuxpe-x64', at: new Date().toISOString(), jobId: JOB_A } });
      await feed.next('event-ack', (m) => m.eventId === 'job-boot-1');
      const change = await feed.next('change', (m) => m.change.table === 'jobs');
      assert.deepEqual(change.change.table === 'jobs' && change.change.op === 'put' ? change.change.job.booted : null, true);
      const resent = await old.next('snapshot', (m) => m.seq === change.seq);
      assert.equal('jobs' in resent.state, false);
      assert.equal(old.messages.some((m) => m.type === 'change' && m.change.table === 'jobs'), false);
      // A client change still reaches the old subscriber as a change, in sequence.
      await drop('client', { client: { mac: MAC, action: { type: 'wait' } } });
      const c = await old.next('change');
      assert.equal(c.seq, resent.seq + 1);
    } finally {
      feed.close();
      old.close();
    }
    const st = svc.state.state();
    const m = machineAction(MAC2, st);
    assert.ok(!('none' in m));
    assert.deepEqual(m.action, { type: 'wait' }, 'booted once for this job: the machine now waits until the job ends');
    assert.deepEqual(clientAction(svc, MAC2), { type: 'local' }, 'the client entry itself is untouched');
    const shown = JSON.stringify(await controlCall(controlSocketPath(site.config.paths.data, 'interface'), 'GET', '/state'));
    const jobs = JSON.stringify(await controlCall(controlSocketPath(site.config.paths.data, 'interface'), 'GET', '/jobs'));
    assert.ok(!shown.includes(secret) && !jobs.includes(secret));
    assert.match(jobs, /"booted":true/);
  });
});
