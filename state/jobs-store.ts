// Imaging jobs in the Interface's SQLite store (state/store.ts opens it and adds these statements
// to its own). One row per jobId: the job as applied, its lifecycle state, its secret, and the
// last progress the agent reported. A job-cancel for a job not seen yet leaves a row without a
// job (a tombstone), so the job arriving later with an older `issued` cannot start.
import type { Db } from './store.ts';
import type { JobState } from './jobs-lifecycle.ts';

export const JOBS_SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  job_id TEXT PRIMARY KEY, mac TEXT, task TEXT, job TEXT, state TEXT NOT NULL,
  issued TEXT NOT NULL, issued_ms INTEGER NOT NULL, instruction_id TEXT NOT NULL,
  secret TEXT NOT NULL, booted INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,
  phase TEXT, bytes_done INTEGER, bytes_total INTEGER, progress_event_ms INTEGER,
  reason TEXT, result TEXT, created_ms INTEGER NOT NULL, started_ms INTEGER, ended_ms INTEGER,
  outcome TEXT);
CREATE INDEX IF NOT EXISTS jobs_mac ON jobs (mac, state);
CREATE INDEX IF NOT EXISTS jobs_ended ON jobs (ended_ms);
CREATE INDEX IF NOT EXISTS jobs_secret ON jobs (secret);
`;

export interface JobRow {
  readonly jobId: string;
  readonly mac: string | null;
  readonly task: string | null;
  /** JSON of the sbs Job; null for a tombstone. */
  readonly job: string | null;
  readonly state: JobState;
  readonly issued: string;
  readonly issuedMs: number;
  readonly instructionId: string;
  readonly secret: string;
  readonly booted: number;
  readonly cancelRequested: number;
  readonly phase: string | null;
  readonly bytesDone: number | null;
  readonly bytesTotal: number | null;
  readonly progressEventMs: number | null;
  readonly reason: string | null;
  readonly result: string | null;
  readonly createdMs: number;
  readonly startedMs: number | null;
  readonly endedMs: number | null;
  /** What the machine's action became when the job ended: 'then', 'wait' or null. */
  readonly outcome: string | null;
}

const COLUMNS = `job_id AS jobId, mac, task, job, state, issued, issued_ms AS issuedMs, instruction_id AS instructionId,
  secret, booted, cancel_requested AS cancelRequested, phase, bytes_done AS bytesDone, bytes_total AS bytesTotal,
  progress_event_ms AS progressEventMs, reason, result, created_ms AS createdMs, started_ms AS startedMs,
  ended_ms AS endedMs, outcome`;

export function jobStatements(db: Db) {
  return {
    getJob: db.prepare<[string], JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE job_id = ?`),
    jobBySecret: db.prepare<[string], JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE secret = ?`),
    activeJobsOf: db.prepare<[string], JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE mac = ? AND state IN ('pending','running') ORDER BY issued_ms, job_id`),
    activeJobs: db.prepare<[], JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE state IN ('pending','running') ORDER BY job_id`),
    allJobs: db.prepare<[], JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE job IS NOT NULL ORDER BY created_ms, job_id`),
    endedAfter: db.prepare<[number], JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE ended_ms > ? AND outcome IS NOT NULL ORDER BY ended_ms`),
    putJob: db.prepare(
      `INSERT INTO jobs (job_id, mac, task, job, state, issued, issued_ms, instruction_id, secret, created_ms, ended_ms, reason)
       VALUES (@jobId, @mac, @task, @job, @state, @issued, @issuedMs, @instructionId, @secret, @createdMs, @endedMs, @reason)
       ON CONFLICT (job_id) DO UPDATE SET mac = excluded.mac, task = excluded.task, job = excluded.job, state = excluded.state,
         issued = excluded.issued, issued_ms = excluded.issued_ms, instruction_id = excluded.instruction_id,
         ended_ms = excluded.ended_ms, reason = excluded.reason`,
    ),
    setJobState: db.prepare(
      `UPDATE jobs SET state = @state, cancel_requested = @cancelRequested, started_ms = coalesce(started_ms, @startedMs),
         ended_ms = @endedMs, reason = coalesce(@reason, reason), outcome = @outcome, result = coalesce(@result, result),
         phase = coalesce(@phase, phase) WHERE job_id = @jobId`,
    ),
    setJobProgress: db.prepare(
      `UPDATE jobs SET phase = @phase, bytes_done = @bytesDone, bytes_total = @bytesTotal,
         progress_event_ms = coalesce(@eventMs, progress_event_ms) WHERE job_id = @jobId`,
    ),
    setJobBooted: db.prepare('UPDATE jobs SET booted = 1 WHERE job_id = ?'),
  };
}
