// The supervisor with real child processes (tiny stand-in services from ./fixtures, each with a
// real control socket): start order, readiness, restarts with backoff, MTFTP bound to the server,
// and stopping in reverse order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Supervisor, type SupervisedService, type SupervisorTimings } from '../../services/supervisor/supervisor.ts';
import { controlProbe, tsxLoaderPath } from '../../services/supervisor/service-commands.ts';
import { createMemoryLogger, type LogFields } from '../../platform/runtime/logger.ts';
import { makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/fake-service.ts', import.meta.url));
const FAST: Partial<SupervisorTimings> = { backoff: { baseMs: 50, capMs: 400 }, stableMs: 60000, stopTimeoutMs: 5000, readyPollMs: 20, readyWaitMs: 10000 };

interface Harness {
  readonly site: TestSite;
  readonly supervisor: Supervisor;
  readonly log: ReturnType<typeof createMemoryLogger>;
  readonly out: string[];
  events(): string[];
  allServing: number;
}

function fake(site: TestSite, name: string, knobs: Record<string, string> = {}, boundTo?: string): SupervisedService {
  return {
    name,
    command: {
      command: process.execPath,
      args: ['--import', tsxLoaderPath(), FIXTURE],
      env: { ...process.env, FAKE_NAME: name, FAKE_DATA: site.config.paths.data, FAKE_EVENTS: join(site.dir, 'events'), ...knobs },
    },
    ...(boundTo === undefined ? {} : { boundTo }),
  };
}

async function withSupervisor(make: (site: TestSite) => SupervisedService[], timings: Partial<SupervisorTimings>, fn: (h: Harness) => Promise<void>): Promise<void> {
  const site = await makeTestSite('', 'netboot-supervisor');
  const log = createMemoryLogger();
  const out: string[] = [];
  const eventsPath = join(site.dir, 'events');
  writeFileSync(eventsPath, '');
  const h: Harness = {
    site,
    log,
    out,
    allServing: 0,
    events: () => readFileSync(eventsPath, 'utf8').split('\n').filter((l) => l !== ''),
    supervisor: null as unknown as Supervisor,
  };
  const supervisor = new Supervisor({
    services: make(site),
    isServing: controlProbe(site.config),
    log,
    out: { write: (line: string) => out.push(line) },
    err: { write: (line: string) => out.push(line) },
    timings: { ...FAST, ...timings },
    onAllServing: () => h.allServing++,
  });
  Object.assign(h, { supervisor });
  try {
    await supervisor.start();
    await fn(h);
  } finally {
    await supervisor.stop();
    site.cleanup();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function pidOf(h: Harness, name: string): number {
  const pid = h.supervisor.status().find((s) => s.name === name)?.pid;
  assert.ok(typeof pid === 'number', `${name} has no pid`);
  return pid;
}

function servingAll(h: Harness, names: readonly string[]): true | undefined {
  const st = h.supervisor.status();
  return names.every((n) => st.find((s) => s.name === n)?.state === 'serving') ? true : undefined;
}

const exits = (records: LogFields[]): LogFields[] => records.filter((r) => r.msg === 'service exited; restarting');
const ORDER = ['interface', 'signal', 'server', 'mtftp'];

test('starts in order, each once the previous serves; passes output through; stops in reverse order', async () => {
  let pids: number[] = [];
  await withSupervisor((site) => ORDER.map((n) => fake(site, n, { FAKE_READY_DELAY_MS: '100' }, n === 'mtftp' ? 'server' : undefined)), {}, async (h) => {
    await h.supervisor.started;
    await waitFor('all serving', () => servingAll(h, ORDER));
    const ev = h.events();
    for (let i = 0; i + 1 < ORDER.length; i++) {
      const ready = ev.findIndex((e) => e.startsWith(`ready ${ORDER[i]} `));
      const nextStart = ev.findIndex((e) => e.startsWith(`start ${ORDER[i + 1]} `));
      assert.ok(ready >= 0 && nextStart > ready, `${ORDER[i + 1]} started before ${ORDER[i]} served:\n${ev.join('\n')}`);
    }
    assert.equal(h.allServing, 1);
    for (const n of ORDER) assert.ok(h.out.some((l) => JSON.parse(l).service === n && JSON.parse(l).msg === 'fake started'), `no output from ${n}`);
    pids = ORDER.map((n) => pidOf(h, n));

    await h.supervisor.stop();
    const stops = h.events().filter((e) => e.startsWith('stop '));
    assert.deepEqual(stops.map((e) => e.split(' ')[1]), [...ORDER].reverse());
    assert.deepEqual(pids.filter(alive), []);
    assert.ok(h.supervisor.status().every((s) => s.state === 'stopped' && s.pid === null));
  });
});

test('a crashing child is restarted with exponential backoff, the exit logged; the backoff resets once it stayed up', async () => {
  await withSupervisor(
    (site) => {
      writeFileSync(join(site.dir, 'crashes'), '3');
      return [fake(site, 'interface', { FAKE_CRASH_FILE: join(site.dir, 'crashes') })];
    },
    { stableMs: 500 },
    async (h) => {
      await waitFor('serving after three crashes', () => servingAll(h, ['interface']));
      const logged = exits(h.log.records);
      assert.deepEqual(logged.map((r) => [r.code, r.signal, r.restartInMs]), [[3, null, 50], [3, null, 100], [3, null, 200]]);
      assert.equal(h.events().filter((e) => e.startsWith('crash ')).length, 3);

      const first = pidOf(h, 'interface');
      await new Promise((r) => setTimeout(r, 700)); // part of the scenario: serve longer than stableMs
      process.kill(first, 'SIGKILL');
      await waitFor('restarted', () => (servingAll(h, ['interface']) && pidOf(h, 'interface') !== first ? true : undefined));
      const last = exits(h.log.records).at(-1)!;
      assert.equal(last.signal, 'SIGKILL');
      assert.equal(last.code, null);
      assert.equal(last.restartInMs, 50);
      assert.ok(Number(last.servedMs) >= 500);
      assert.equal(h.supervisor.status()[0]?.restarts, 4);
    },
  );
});

test('MTFTP stops whenever the server stops, and starts again once the server serves again', async () => {
  await withSupervisor((site) => [fake(site, 'server', { FAKE_READY_DELAY_MS: '100' }), fake(site, 'mtftp', {}, 'server')], {}, async (h) => {
    await waitFor('both serving', () => servingAll(h, ['server', 'mtftp']));
    const server1 = pidOf(h, 'server');
    const mtftp1 = pidOf(h, 'mtftp');
    process.kill(server1, 'SIGKILL');
    await waitFor('both serving again with new processes', () => (servingAll(h, ['server', 'mtftp']) && pidOf(h, 'server') !== server1 && pidOf(h, 'mtftp') !== mtftp1 ? true : undefined));
    const ev = h.events();
    const server2 = pidOf(h, 'server');
    const mtftp2 = pidOf(h, 'mtftp');
    assert.ok(ev.includes(`stop mtftp ${mtftp1}`), ev.join('\n'));
    assert.ok(!alive(mtftp1));
    assert.ok(ev.indexOf(`ready server ${server2}`) < ev.indexOf(`start mtftp ${mtftp2}`), ev.join('\n'));
    assert.ok(h.log.records.some((r) => r.msg === 'stopping a bound service: the service it is bound to stopped' && r.child === 'mtftp'));
    // MTFTP's stop was the supervisor's doing, not a crash: no restart was counted for it.
    assert.deepEqual(exits(h.log.records).map((r) => r.child), ['server']);
  });
});

test('MTFTP crashing on its own is restarted while the server keeps serving', async () => {
  await withSupervisor((site) => [fake(site, 'server'), fake(site, 'mtftp', {}, 'server')], {}, async (h) => {
    await waitFor('both serving', () => servingAll(h, ['server', 'mtftp']));
    const server = pidOf(h, 'server');
    const mtftp1 = pidOf(h, 'mtftp');
    process.kill(mtftp1, 'SIGKILL');
    await waitFor('mtftp back', () => (servingAll(h, ['mtftp']) && pidOf(h, 'mtftp') !== mtftp1 ? true : undefined));
    assert.equal(pidOf(h, 'server'), server);
  });
});

test('a bound service waits while its server does not serve; the start sequence goes on after a bounded wait', async () => {
  await withSupervisor((site) => [fake(site, 'server', { FAKE_NEVER_READY: '1' }), fake(site, 'mtftp', {}, 'server'), fake(site, 'signal')], { readyWaitMs: 300 }, async (h) => {
    await h.supervisor.started;
    await waitFor('signal serving', () => servingAll(h, ['signal']));
    assert.ok(h.log.records.some((r) => r.msg === 'service not serving yet; starting the next one' && r.child === 'server'));
    assert.equal(h.supervisor.status().find((s) => s.name === 'mtftp')?.state, 'held');
    assert.ok(!h.events().some((e) => e.startsWith('start mtftp ')));
    assert.equal(h.allServing, 0);
  });
});

test('a child that ignores SIGTERM is killed after the stop timeout', async () => {
  let pid = 0;
  await withSupervisor((site) => [fake(site, 'interface', { FAKE_IGNORE_SIGTERM: '1' })], { stopTimeoutMs: 300 }, async (h) => {
    await waitFor('serving', () => servingAll(h, ['interface']));
    pid = pidOf(h, 'interface');
    await h.supervisor.stop();
    assert.ok(h.events().includes(`ignored-sigterm interface ${pid}`));
    const killed = h.log.records.find((r) => String(r.msg).startsWith('service did not stop within 300 ms'));
    assert.equal(killed?.signal, 'SIGKILL');
    assert.ok(!alive(pid));
  });
});

test('a command that cannot be started is retried with backoff and reported', async () => {
  await withSupervisor(
    () => [{ name: 'interface', command: { command: '/nonexistent/netboot-node', args: [], env: {} } }],
    {},
    async (h) => {
      await waitFor('two failed starts', () => (exits(h.log.records).length >= 2 ? true : undefined));
      assert.deepEqual(exits(h.log.records).slice(0, 2).map((r) => r.restartInMs), [50, 100]);
      assert.ok(!existsSync(join(h.site.config.paths.data, 'run', 'interface.sock')));
    },
  );
});
