// Applies `job` and `job-cancel` instructions and the agent's reports to the store, inside the
// caller's transaction (sbs-v1 "Imaging jobs"). Ordering and idempotency are those of every
// update: an applied instruction id is a no-op (apply.ts checks), an instruction older than the
// job's last one changes nothing, and between two jobs for one machine the newer by (`issued`,
// `jobId`) wins whatever order they arrive in. A job's secret is made here, once, when the job is
// first applied, and is never sent anywhere but the feed (to that machine's boot script).
import { randomBytes, randomUUID } from 'node:crypto';
import type { FeedChange, FeedJob } from '../boot/feed-protocol.ts';
import type { Action, Client, Job, SbsDocument } from '../sbs/types.ts';
import type { ApplyResult, ApplySource } from './apply.ts';
import { isActive, transition, type JobInput, type JobState, type MachineOutcome } from './jobs-lifecycle.ts';
import type { JobRow } from './jobs-store.ts';
import type { Statements } from './store.ts';

export type JobDoc = Extract<SbsDocument, { kind: 'job' | 'job-cancel' }>;

/** job-progress events: at most one every 5 s per job (the spec's rate). */
export const PROGRESS_EVENT_MS = 5000;

const WAIT: Action = { type: 'wait' };

export function isJobDoc(doc: SbsDocument): doc is JobDoc {
  return doc.kind === 'job' || doc.kind === 'job-cancel';
}

export function jobKey(doc: JobDoc): string {
  return doc.kind === 'job' ? doc.job.jobId : doc.jobId;
}

export function feedJob(row: JobRow): FeedJob {
  const job = JSON.parse(row.job!) as Job;
  return {
    jobId: row.jobId, mac: job.mac, task: job.task, preboot: job.preboot, state: row.state as 'pending' | 'running',
    booted: row.booted === 1, cancelRequested: row.cancelRequested === 1, secret: row.secret,
  };
}

function feedOf(st: Statements, jobId: string): FeedChange {
  const row = st.getJob.get(jobId)!;
  return isActive(row.state) && row.job !== null ? { table: 'jobs', op: 'put', job: feedJob(row) } : { table: 'jobs', op: 'delete', jobId };
}

/** (issuedMs, jobId) order: is a newer than b? */
function newer(a: { issuedMs: number; jobId: string }, b: { issuedMs: number; jobId: string }): boolean {
  return a.issuedMs > b.issuedMs || (a.issuedMs === b.issuedMs && a.jobId > b.jobId);
}

export function applyJobDoc(st: Statements, doc: JobDoc, ms: number, src: ApplySource): ApplyResult {
  return doc.kind === 'job' ? applyJob(st, doc, ms, src) : applyCancel(st, doc, ms, src);
}

function applyJob(st: Statements, doc: Extract<JobDoc, { kind: 'job' }>, ms: number, src: ApplySource): ApplyResult {
  const job = doc.job;
  const row = st.getJob.get(job.jobId);
  // A job is replaced only while it has not started; a cancelled or ended one stays ended.
  if (row !== undefined && (row.issuedMs > ms || row.job === null || row.state !== 'pending')) return { effect: 'stale', changes: [] };
  const changes: FeedChange[] = [];
  st.putJob.run({
    jobId: job.jobId, mac: job.mac, task: job.task, job: JSON.stringify(job), state: 'pending', issued: doc.issued, issuedMs: ms,
    instructionId: doc.id, secret: row?.secret ?? randomBytes(32).toString('hex'), createdMs: row?.createdMs ?? src.now.getTime(),
    endedMs: null, reason: null,
  });
  // A resend that moved the job to another machine leaves the old machine's feed entry replaced.
  const me = { issuedMs: ms, jobId: job.jobId };
  for (const other of st.activeJobsOf.all(job.mac)) {
    if (other.jobId === job.jobId) continue;
    if (newer(other, me)) {
      // A newer job for this machine is already here: this one never runs.
      end(st, job.jobId, 'cancelled', `replaced by newer job ${other.jobId}`, src.now, null);
      changes.push(feedOf(st, job.jobId));
      return { effect: 'stale', changes: changes.filter((c) => c.op !== 'delete' || row !== undefined) };
    }
    changes.push(...step(st, other, 'replace', `replaced by job ${job.jobId}`, src.now));
  }
  changes.push(feedOf(st, job.jobId));
  return { effect: 'applied', changes };
}

function applyCancel(st: Statements, doc: Extract<JobDoc, { kind: 'job-cancel' }>, ms: number, src: ApplySource): ApplyResult {
  const row = st.getJob.get(doc.jobId);
  if (row === undefined) {
    // Cancelled before it arrived: the tombstone keeps the job, when it comes, from starting.
    st.putJob.run({
      jobId: doc.jobId, mac: null, task: null, job: null, state: 'cancelled', issued: doc.issued, issuedMs: ms, instructionId: doc.id,
      secret: randomBytes(32).toString('hex'), createdMs: src.now.getTime(), endedMs: src.now.getTime(), reason: 'cancelled before the job arrived',
    });
    return { effect: 'applied', changes: [] };
  }
  if (row.issuedMs > ms || !isActive(row.state)) return { effect: 'stale', changes: [] };
  return { effect: 'applied', changes: step(st, row, 'cancel', `cancelled by instruction ${doc.id}`, src.now) };
}

/** Moves a job by `input`; returns the feed changes (job, and the machine's client when it ends). */
function step(st: Statements, row: JobRow, input: JobInput, reason: string | null, now: Date): FeedChange[] {
  const t = transition({ state: row.state, cancelRequested: row.cancelRequested === 1 }, input);
  if ('refused' in t) return [];
  const changes: FeedChange[] = [];
  if (t.ended) {
    end(st, row.jobId, t.status.state, reason, now, t.machine);
    const action = machineAction(row, t.machine);
    if (action !== null) {
      const c = setMachineAction(st, row.mac!, action, now.getTime(), row.instructionId);
      if (c !== null) changes.push(c);
    }
  } else {
    st.setJobState.run({
      jobId: row.jobId, state: t.status.state, cancelRequested: t.status.cancelRequested ? 1 : 0,
      startedMs: t.status.state === 'running' ? now.getTime() : null, endedMs: null, reason, outcome: null, result: null, phase: null,
    });
  }
  changes.push(feedOf(st, row.jobId));
  return changes;
}

function end(st: Statements, jobId: string, state: JobState, reason: string | null, now: Date, outcome: MachineOutcome, result: string | null = null, phase: string | null = null): void {
  st.setJobState.run({ jobId, state, cancelRequested: 0, startedMs: null, endedMs: now.getTime(), reason, outcome, result, phase });
}

function machineAction(row: JobRow, outcome: MachineOutcome | string | null): Action | null {
  if (outcome === 'then') return (JSON.parse(row.job!) as Job).then;
  if (outcome === 'wait') return WAIT;
  return null;
}

/**
 * The machine's action after its job ended, unless the machine was re-assigned after that (like a
 * consumed `once` boot). A machine with no client entry gets one. Keeps an existing client's
 * `issued` and instruction id, so any newer instruction for it still applies normally.
 */
function setMachineAction(st: Statements, mac: string, action: Action, atMs: number, instructionId: string): FeedChange | null {
  const row = st.getObject.get('clients', mac);
  if (row !== undefined && row.issuedMs > atMs) return null;
  if (row !== undefined && row.value !== null) {
    const client = { ...(JSON.parse(row.value) as Client), action };
    st.setObjectValue.run(JSON.stringify(client), 'clients', mac);
    return { table: 'clients', op: 'put', client };
  }
  const client: Client = { mac, action };
  st.putObject.run({ tbl: 'clients', key: mac, value: JSON.stringify(client), issued: new Date(atMs).toISOString(), issuedMs: atMs, instructionId });
  return { table: 'clients', op: 'put', client };
}

/** After a `clients` snapshot: jobs that ended after it set their machine's action again. */
export function reapplyJobOutcomes(st: Statements, snapshotMs: number): void {
  for (const row of st.endedAfter.all(snapshotMs)) {
    const action = machineAction(row, row.outcome);
    if (action !== null && row.mac !== null) setMachineAction(st, row.mac, action, row.endedMs!, row.instructionId);
  }
}

/** The machine fetched the job's preboot boot program: that boot is consumed, like `once`. */
export function markJobBooted(st: Statements, jobId: string): FeedChange | null {
  const row = st.getJob.get(jobId);
  if (row === undefined || row.booted === 1 || !isActive(row.state)) return null;
  st.setJobBooted.run(jobId);
  return feedOf(st, jobId);
}

/** A report from the agent (the spec's events, without jobId/mac/task/at: those are the site's). */
export type AgentReport =
  | { readonly kind: 'check' }
  | { readonly kind: 'started' }
  | { readonly kind: 'progress'; readonly phase: string; readonly bytesDone: number; readonly bytesTotal: number }
  | { readonly kind: 'completed'; readonly result: Readonly<Record<string, unknown>> }
  | { readonly kind: 'failed'; readonly reason: string; readonly phase: string };

export type AgentOutcome =
  | { readonly ok: true; readonly row: JobRow; readonly changes: FeedChange[]; readonly events: number }
  | { readonly ok: false; readonly status: 403 | 409 | 410; readonly error: string; readonly row?: JobRow; readonly changes: FeedChange[]; readonly events: number };

const INPUT: Record<AgentReport['kind'], JobInput> = { check: 'check', started: 'start', progress: 'progress', completed: 'complete', failed: 'fail' };

/**
 * One agent call, authenticated by the job's secret. Refused: a secret no job has, a jobId in the
 * body that is not the secret's job, a job that has ended. A cancel waiting for this check ends
 * the job here (410, the machine waits).
 */
export function agentStep(st: Statements, secret: string, claimedJobId: string | null, report: AgentReport, now: Date): AgentOutcome {
  const row = st.jobBySecret.get(secret);
  if (row === undefined || row.job === null) return { ok: false, status: 403, error: 'no job has this secret', changes: [], events: 0 };
  if (claimedJobId !== null && claimedJobId !== row.jobId) return { ok: false, status: 403, error: 'the secret is not for this job', changes: [], events: 0 };
  if (!isActive(row.state)) return { ok: false, status: 403, error: `the job has ended (${row.state})`, changes: [], events: 0 };
  const from = { state: row.state, cancelRequested: row.cancelRequested === 1 };
  const t = transition(from, INPUT[report.kind]);
  if ('refused' in t) return { ok: false, status: 409, error: t.refused, row, changes: [], events: 0 };
  const job = JSON.parse(row.job) as Job;
  const base = { jobId: row.jobId, mac: job.mac, task: job.task, at: now.toISOString() };
  let events = 0;
  const event = (body: Record<string, unknown>): void => {
    st.insertEvent.run(randomUUID(), JSON.stringify({ ...base, ...body }), now.toISOString());
    events++;
  };
  const changes: FeedChange[] = [];
  if (t.status.state === 'cancelled') {
    const phase = row.phase ?? 'running';
    end(st, row.jobId, 'cancelled', 'cancelled', now, 'wait', null, phase);
    const c = setMachineAction(st, job.mac, WAIT, now.getTime(), row.instructionId);
    if (c !== null) changes.push(c);
    changes.push(feedOf(st, row.jobId));
    event({ kind: 'job-failed', reason: 'cancelled', phase });
    return { ok: false, status: 410, error: 'the job was cancelled', row: st.getJob.get(row.jobId)!, changes, events };
  }
  switch (report.kind) {
    case 'check':
      break;
    case 'started':
      if (row.state === 'pending') {
        st.setJobState.run({ jobId: row.jobId, state: 'running', cancelRequested: 0, startedMs: now.getTime(), endedMs: null, reason: null, outcome: null, result: null, phase: 'started' });
        changes.push(feedOf(st, row.jobId));
        event({ kind: 'job-started', preboot: job.preboot });
      }
      break;
    case 'progress': {
      const due = row.progressEventMs === null || now.getTime() - row.progressEventMs >= PROGRESS_EVENT_MS;
      st.setJobProgress.run({ jobId: row.jobId, phase: report.phase, bytesDone: report.bytesDone, bytesTotal: report.bytesTotal, eventMs: due ? now.getTime() : null });
      if (due) event({ kind: 'job-progress', phase: report.phase, bytesDone: report.bytesDone, bytesTotal: report.bytesTotal });
      break;
    }
    case 'completed':
      end(st, row.jobId, 'completed', null, now, 'then', JSON.stringify(report.result));
      changes.push(...machineChange(st, job.mac, job.then, now, row.instructionId), feedOf(st, row.jobId));
      event({ kind: 'job-completed', result: report.result });
      break;
    case 'failed':
      end(st, row.jobId, 'failed', report.reason, now, 'wait', null, report.phase);
      changes.push(...machineChange(st, job.mac, WAIT, now, row.instructionId), feedOf(st, row.jobId));
      event({ kind: 'job-failed', reason: report.reason, phase: report.phase });
      break;
  }
  return { ok: true, row: st.getJob.get(row.jobId)!, changes, events };
}

function machineChange(st: Statements, mac: string, action: Action, now: Date, instructionId: string): FeedChange[] {
  const c = setMachineAction(st, mac, action, now.getTime(), instructionId);
  return c === null ? [] : [c];
}

/** The job a secret belongs to while it is active (for package access checks). */
export function activeJobBySecret(st: Statements, secret: string): Job | null {
  const row = st.jobBySecret.get(secret);
  if (row === undefined || row.job === null || !isActive(row.state)) return null;
  return JSON.parse(row.job) as Job;
}
