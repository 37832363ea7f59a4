// The job store with a clock the test moves: the progress event rate, ordering between jobs and
// cancels whatever order they arrive in, and a `clients` snapshot that does not undo a job's end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { buildDocument } from '../../sbs/build.ts';
import type { SbsDocument } from '../../sbs/types.ts';
import { JobBook } from '../../state/jobs.ts';
import { StateBook } from '../../state/state-book.ts';
import { openStore, statements } from '../../state/store.ts';

const MAC = '52:54:00:12:34:56';
const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';

function setup(): { book: StateBook; jobs: JobBook; clock: { ms: number }; events: () => Array<Record<string, unknown>>; apply: (doc: SbsDocument) => string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-jobs-'));
  const db = openStore(dir);
  const book = new StateBook(db, createMemoryLogger());
  book.load();
  const clock = { ms: Date.parse('2026-12-05T12:00:00Z') };
  const jobs = new JobBook(book, () => {}, () => new Date(clock.ms));
  const st = statements(db);
  return {
    book, jobs, clock,
    events: () => st.pendingEvents.all(1000).map((e) => JSON.parse(e.body) as Record<string, unknown>),
    apply: (doc) => book.applyBatch([{ doc, source: { file: null, source: 'test', now: new Date(clock.ms) } }])[0]!,
    done: () => { db.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}

const job = (jobId: string, issued: string, then: object = { type: 'menu' }): SbsDocument =>
  buildDocument('job', { job: { jobId, mac: MAC, task: 'capture', preboot: 'pe', package: 'lab', then } }, { issued });

test('job-progress: every report is kept, at most one event every 5 s per job', () => {
  const t = setup();
  try {
    t.apply(job(A, '2026-12-05T10:00:00Z'));
    const secret = t.book.state().jobs![0]!.secret;
    assert.ok(t.jobs.report(secret, null, { kind: 'started' }).ok);
    for (let i = 0; i <= 12; i++) {
      assert.ok(t.jobs.report(secret, null, { kind: 'progress', phase: 'read', bytesDone: i, bytesTotal: 12 }).ok);
      t.clock.ms += 1000;
    }
    const progress = t.events().filter((e) => e.kind === 'job-progress');
    assert.deepEqual(progress.map((e) => e.bytesDone), [0, 5, 10]);
    assert.equal(t.jobs.get(A)?.bytesDone, 12);
    assert.deepEqual(t.jobs.get(A)?.writes, ['lab']);
  } finally {
    t.done();
  }
});

test('a cancel that arrives before its job keeps the job from starting; equal issued: the greater jobId wins', () => {
  const t = setup();
  try {
    assert.equal(t.apply(buildDocument('job-cancel', { jobId: A }, { issued: '2026-12-05T10:01:00Z' })), 'applied');
    assert.equal(t.apply(job(A, '2026-12-05T10:00:00Z')), 'stale');
    assert.deepEqual(t.book.state().jobs, []);
    const same = '2026-12-05T11:00:00Z';
    const C = 'cccccccc-0000-4000-8000-000000000003';
    assert.equal(t.apply(job(C, same)), 'applied');
    assert.equal(t.apply(job(B, same)), 'stale', 'B < C at the same issued: B never runs');
    assert.deepEqual(t.book.state().jobs?.map((j) => j.jobId), [C]);
    assert.equal(t.jobs.get(B)?.state, 'cancelled');
  } finally {
    t.done();
  }
});

test('a clients snapshot issued before the job ended does not undo `then`; a later one decides', () => {
  const t = setup();
  try {
    t.apply(buildDocument('clients', { clients: [{ mac: MAC, action: { type: 'local' } }] }, { issued: '2026-12-05T09:00:00Z' }));
    t.apply(job(A, '2026-12-05T10:00:00Z'));
    const secret = t.book.state().jobs![0]!.secret;
    t.jobs.report(secret, null, { kind: 'started' });
    t.jobs.report(secret, null, { kind: 'completed', result: { bytesWritten: 0, bytesTransferred: 0, seconds: 1 } });
    const action = () => t.book.state().clients?.find((c) => c.mac === MAC)?.action;
    assert.deepEqual(action(), { type: 'menu' });
    t.apply(buildDocument('clients', { clients: [{ mac: MAC, action: { type: 'local' } }] }, { issued: '2026-12-05T11:00:00Z' }));
    assert.deepEqual(action(), { type: 'menu' }, 'the job ended after this snapshot was issued');
    t.apply(buildDocument('clients', { clients: [{ mac: MAC, action: { type: 'local' } }] }, { issued: '2026-12-05T13:00:00Z' }));
    assert.deepEqual(action(), { type: 'local' });
  } finally {
    t.done();
  }
});
