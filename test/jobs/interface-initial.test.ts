// Initial deployment through the real Interface: the agent's enrolment API on its port (real
// HTTP), SQLite, the outbox to a management-server stand-in, and the PXE decision from the feed
// state that results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { enrolSecrets } from '../../boot/enrol-secret.ts';
import { machineScript } from '../../boot/ipxe-script.ts';
import { machineAction } from '../../boot/pxe-policy.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { formatJob, formatJobTable } from '../../cli/job-command.ts';
import type { JobView } from '../../state/jobs.ts';
import { waitFor } from '../helpers/env.ts';
import { KNOWN_MAC, withInitialSite } from './initial-site.ts';

const MAC = '52:54:00:12:34:56';
const INVENTORY = { disk: { model: 'QEMU HARDDISK', serial: 'QM00001', sizeBytes: 1073741824, sectorBytes: 512, table: null, partitions: [] }, os: null };
const UUID = '8A3C2D1E-0000-4000-8000-0000000000AA';

const macOf = (i: number): string => `52:54:00:aa:00:${i.toString(16).padStart(2, '0')}`;

test('twenty machines choose at once, each twice: exactly one job and one machine-registered event each, reported before job-started', async () => {
  await withInitialSite(async ({ svc, mgmt, enrol, agent, secretOf }) => {
    const macs = Array.from({ length: 20 }, (_, i) => macOf(i + 1));
    // Each machine asks for the list, then posts its choice twice at the same moment (a retried
    // request), all twenty at once.
    const lists = await Promise.all(macs.map((mac) => enrol(secretOf(mac), mac)));
    for (const l of lists) {
      assert.equal(l.status, 200, JSON.stringify(l.body));
      assert.deepEqual(l.body, { preboot: 'linuxpe-x64', items: [{ label: 'Windows 11 lab image', task: 'deploy' }, { label: 'Erase and hand back', task: 'erase' }], default: 0, timeoutSec: 30 });
    }
    const choice = (i: number) => (i % 2 === 0 ? { item: 0, label: 'Windows 11 lab image' } : { item: 1, label: 'Erase and hand back' });
    const posts = await Promise.all(macs.flatMap((mac, i) => [0, 1].map(() => enrol(secretOf(mac), mac, { ...choice(i), uuid: UUID, inventory: INVENTORY }))));
    const byMac = new Map<string, Array<Record<string, unknown>>>();
    posts.forEach((p, k) => {
      assert.equal(p.status, 200, JSON.stringify(p.body));
      const mac = macs[Math.floor(k / 2)]!;
      byMac.set(mac, [...(byMac.get(mac) ?? []), p.body]);
    });
    for (const [mac, [a, b]] of byMac) {
      assert.equal(a!.jobId, b!.jobId, `${mac}: the same job both times`);
      assert.equal(a!.secret, b!.secret);
      assert.deepEqual([a!.created, b!.created].sort(), [false, true], `${mac}: made once`);
      assert.match(String(a!.secret), /^[0-9a-f]{64}$/);
      assert.equal((a!.job as JobView).mac, mac);
    }
    const jobs = svc.jobs.list();
    assert.equal(jobs.length, 20);
    assert.deepEqual(jobs.map((j) => j.mac).sort(), [...macs].sort());
    for (const j of jobs) {
      const i = macs.indexOf(j.mac);
      assert.equal(j.task, i % 2 === 0 ? 'deploy' : 'erase');
      assert.equal(j.state, 'pending');
      assert.equal(j.job.preboot, 'linuxpe-x64');
      if (j.task === 'deploy') assert.equal(j.job.package, 'win11-gold');
    }
    // Every machine is a client now (action wait until its job's `then`).
    for (const mac of macs) assert.deepEqual(svc.state.state().clients?.find((c) => c.mac === mac), { mac, uuid: '8a3c2d1e-0000-4000-8000-0000000000aa', action: { type: 'wait' } });

    // The agents run their jobs at once with the secrets they were given.
    await Promise.all([...byMac.values()].map(async ([a]) => assert.equal((await agent(String(a!.secret), 'started', { jobId: a!.jobId })).status, 200)));
    const events = await waitFor('20 machine-registered and 20 job-started events', () => {
      const reg = mgmt.events.filter((e) => e.kind === 'machine-registered');
      const started = mgmt.events.filter((e) => e.kind === 'job-started');
      return reg.length >= 20 && started.length >= 20 ? mgmt.events : undefined;
    }, 20000);
    const registered = events.filter((e) => e.kind === 'machine-registered');
    assert.equal(registered.length, 20, 'one machine-registered per machine');
    assert.equal(events.filter((e) => e.kind === 'job-started').length, 20);
    for (const mac of macs) {
      const mine = events.filter((e) => e.mac === mac);
      assert.deepEqual(mine.map((e) => e.kind), ['machine-registered', 'job-started'], `${mac}: registered before started`);
      const r = mine[0]!;
      const job = jobs.find((j) => j.mac === mac)!;
      assert.equal(r.jobId, job.jobId);
      assert.equal(r.uuid, '8a3c2d1e-0000-4000-8000-0000000000aa');
      assert.deepEqual(r.inventory, INVENTORY);
      assert.equal(r.label, macs.indexOf(mac) % 2 === 0 ? 'Windows 11 lab image' : 'Erase and hand back');
      assert.ok(Number.isFinite(Date.parse(String(r.at))));
    }
    assert.ok(!JSON.stringify(events).includes(String(byMac.get(macs[0]!)![0]!.secret)), 'no secret leaves the site');
  });
});

test('after the choice the machine boots by its job, not the list; after the job, by its `then`; it is never asked again', async () => {
  await withInitialSite(async ({ site, svc, enrol, agent, secretOf }) => {
    const options = { enrolSecret: enrolSecrets(() => randomBytes(32)) };
    const before = machineAction(MAC, svc.state.state(), options);
    assert.ok(!('none' in before) && before.enrol !== undefined, 'no client entry: the list');
    const r = await enrol(secretOf(MAC), MAC, { item: 1, label: 'Erase and hand back', inventory: null });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const jobId = String(r.body.jobId);
    const secret = String(r.body.secret);
    // A reboot now: the job's preboot with the job's own secret (no enrolment).
    const st = svc.state.state();
    const m = machineAction(MAC, st, options);
    assert.ok(!('none' in m));
    assert.equal(m.enrol, undefined);
    assert.equal(m.job?.jobId, jobId);
    assert.match(machineScript(MAC, m, st), new RegExp(`netboot\\.job=${jobId} netboot\\.secret=${secret}\\n`));
    // Asking again while the job is pending: the list says which job it has; posting returns it.
    const again = await enrol(secretOf(MAC), MAC);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body.registered, { jobId, label: 'Erase and hand back' });
    const repost = await enrol(secretOf(MAC), MAC, { item: 0, label: 'Windows 11 lab image', inventory: null });
    assert.equal(repost.body.jobId, jobId, 'the first choice stands');
    // `netboot job list` (the control socket's /jobs) says where the job came from.
    const listed = await controlCall<{ jobs: JobView[] }>(controlSocketPath(site.config.paths.data, 'interface'), 'GET', '/jobs');
    assert.deepEqual(listed.jobs.find((j) => j.jobId === jobId)?.origin, { kind: 'initial-deployment', label: 'Erase and hand back' });
    const table = formatJobTable(listed.jobs);
    assert.match(table[0]!, /^JOB\s+MAC\s+TASK\s+STATE\s+PROGRESS$/);
    assert.match(table[1]!, new RegExp(`^${jobId.slice(0, 8)}\\s+52:54:00:12:34:56\\s+erase\\*\\s+pending\\s+`));
    assert.match(table.at(-1)!, /^\* made by initial deployment: the machine chose it at its console/);
    assert.ok(formatJob(listed.jobs[0]!).includes('  from initial deployment: the machine chose "Erase and hand back"'));
    // The job runs and completes: the machine's action is the template's `then` (wait).
    assert.equal((await agent(secret, 'started')).status, 200);
    assert.equal((await agent(secret, 'completed', { result: { bytesWritten: 1, bytesTransferred: 0, seconds: 1 } })).status, 200);
    assert.deepEqual(svc.state.state().clients?.find((c) => c.mac === MAC)?.action, { type: 'wait' });
    const after = machineAction(MAC, svc.state.state(), options);
    assert.ok(!('none' in after) && after.enrol === undefined && after.identity === 'client');
    // The enrolment secret is dead now: the machine is a client.
    const late = await enrol(secretOf(MAC), MAC, { item: 0, label: 'Windows 11 lab image', inventory: null });
    assert.equal(late.status, 403);
    assert.match(String(late.body.error), /is a client of this site now/);
    assert.equal((await enrol(secretOf(MAC), MAC)).status, 403);
    assert.equal(svc.jobs.list().length, 1);
  });
});

test('refused: no secret, another MAC\'s secret, a client, a machine with a job, a list that changed, no initialDeployment', async () => {
  await withInitialSite(async ({ svc, server, drop, enrol, secretOf }) => {
    const choice = { item: 0, label: 'Windows 11 lab image', inventory: null };
    assert.equal((await enrol(null, MAC)).status, 401);
    assert.equal((await enrol(secretOf('52:54:00:12:34:57'), MAC, choice)).status, 403, 'another MAC\'s secret');
    assert.equal((await enrol(randomBytes(32).toString('hex'), MAC)).status, 403);
    assert.equal((await enrol(secretOf(KNOWN_MAC), KNOWN_MAC, choice)).status, 403, 'a client already');
    const bad = await enrol(secretOf(MAC), MAC, { item: 0, label: 'Windows 11 lab image', uuid: 'not-a-guid' });
    assert.equal(bad.status, 400);
    assert.equal((await fetch(`${server}/agent/enrol`, { method: 'PUT' })).status, 405);
    const changed = await enrol(secretOf(MAC), MAC, { item: 0, label: 'Windows 10 lab image', inventory: null });
    assert.equal(changed.status, 409);
    assert.match(String(changed.body.error), /the list changed/);
    assert.equal((await enrol(secretOf(MAC), MAC, { item: 2, label: 'x', inventory: null })).status, 409);
    // A job dropped for the machine during its countdown: it runs that one (after a reboot).
    await drop('job', { job: { jobId: 'a1b2c3d4-0000-4000-8000-00000000c0de', mac: MAC, task: 'erase', preboot: 'linuxpe-x64' } });
    const withJob = await enrol(secretOf(MAC), MAC, choice);
    assert.equal(withJob.status, 409);
    assert.match(String(withJob.body.error), /has job a1b2c3d4-0000-4000-8000-00000000c0de now: reboot to run it/);
    // No initialDeployment any more.
    await drop('config', { config: { respond: 'all', bootFiles: { bios: 'undionly.kpxe' } } });
    const none = await enrol(secretOf('52:54:00:12:34:58'), '52:54:00:12:34:58');
    assert.equal(none.status, 409);
    assert.match(String(none.body.error), /no initialDeployment/);
    assert.equal(svc.jobs.list().length, 1);
  });
});

test('the management server\'s next clients snapshot decides the client entry; an older one does not undo the registration', async () => {
  await withInitialSite(async ({ svc, drop, enrol, secretOf }) => {
    const r = await enrol(secretOf(MAC), MAC, { item: 0, label: 'Windows 11 lab image', inventory: null });
    assert.equal(r.status, 200);
    const entry = () => svc.state.state().clients?.find((c) => c.mac === MAC);
    // A snapshot issued before the registration (a late or stale one): the registration stays.
    await drop('clients', { clients: [{ mac: KNOWN_MAC, action: { type: 'local' } }] }, '2026-12-05T09:30:00Z');
    assert.deepEqual(entry()?.action, { type: 'wait' });
    // The next snapshot, issued after it, names the machine: it decides.
    await drop('clients', { clients: [{ mac: MAC, name: 'LAB-PC-07', action: { type: 'menu' } }] }, new Date(Date.now() + 60_000).toISOString());
    assert.deepEqual(entry(), { mac: MAC, name: 'LAB-PC-07', action: { type: 'menu' } });
    // Its job still runs (a job overrides the client action while it is active).
    assert.equal(svc.state.state().jobs?.length, 1);
  });
});
