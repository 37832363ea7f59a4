// Imaging jobs as the Interface serves them: the agent's reports (each one transaction, its
// feed changes published and its events put in the outbox), the job list for `netboot job`, and
// which packages a job's secret may read or write. Built by the Interface with its StateBook.
import type { Job } from '../sbs/types.ts';
import { activeJobBySecret, agentStep, type AgentOutcome, type AgentReport } from './jobs-apply.ts';
import type { JobState } from './jobs-lifecycle.ts';
import type { JobRow } from './jobs-store.ts';
import type { StateBook } from './state-book.ts';

/** A job as `netboot job` and the agent see it (never with its secret). */
export interface JobView {
  readonly jobId: string;
  readonly mac: string;
  readonly task: string;
  readonly job: Job;
  readonly state: JobState;
  readonly cancelRequested: boolean;
  /** The machine fetched the job's preboot boot program. */
  readonly booted: boolean;
  readonly phase: string | null;
  readonly bytesDone: number | null;
  readonly bytesTotal: number | null;
  readonly reason: string | null;
  readonly result: unknown;
  readonly issued: string;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  /** Packages the job's agent may read (deploy, restore) and write (capture, backup). */
  readonly reads: readonly string[];
  readonly writes: readonly string[];
  /** Set on a job made by initial deployment (state/enrolment.ts): the item the machine chose. */
  readonly origin?: { readonly kind: 'initial-deployment'; readonly label: string };
}

/** The package that holds a machine's backups: `backup-<mac, 12 hex digits>`. */
export function backupPackageId(mac: string): string {
  return `backup-${mac.replaceAll(':', '').toLowerCase()}`;
}

export function packagesRead(job: Job): string[] {
  if (job.task === 'deploy' && job.package !== undefined) return [job.package];
  if (job.task === 'restore') return [backupPackageId(job.mac)];
  return [];
}

export function packagesWritten(job: Job): string[] {
  if (job.task === 'capture' && job.package !== undefined) return [job.package];
  if (job.task === 'backup') return [backupPackageId(job.mac)];
  return [];
}

export function jobView(row: JobRow): JobView {
  const job = JSON.parse(row.job!) as Job;
  const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
  return {
    jobId: row.jobId, mac: job.mac, task: job.task, job, state: row.state, cancelRequested: row.cancelRequested === 1,
    booted: row.booted === 1, phase: row.phase, bytesDone: row.bytesDone, bytesTotal: row.bytesTotal, reason: row.reason,
    result: row.result === null ? null : JSON.parse(row.result), issued: row.issued, createdAt: iso(row.createdMs)!,
    startedAt: iso(row.startedMs), endedAt: iso(row.endedMs), reads: packagesRead(job), writes: packagesWritten(job),
  };
}

export class JobBook {
  constructor(private readonly book: StateBook, private readonly onEvents: () => void, private readonly now: () => Date = () => new Date()) {}

  /** One agent call (check, started, progress, completed, failed), authenticated by `secret`. */
  report(secret: string, claimedJobId: string | null, report: AgentReport): AgentOutcome {
    const outcome = this.book.transact((st) => {
      const r = agentStep(st, secret, claimedJobId, report, this.now());
      return { value: r, changes: r.changes };
    });
    if (outcome.events > 0) this.onEvents();
    return outcome;
  }

  list(): JobView[] {
    return this.book.read((st) => st.allJobs.all().map(jobView));
  }

  get(jobId: string): JobView | null {
    return this.book.read((st) => {
      const row = st.getJob.get(jobId);
      return row === undefined || row.job === null ? null : jobView(row);
    });
  }

  /** May the agent holding `secret` read `packageId`? Only its active deploy's or restore's package. */
  mayRead(secret: string, packageId: string): boolean {
    const job = this.book.read((st) => activeJobBySecret(st, secret));
    return job !== null && packagesRead(job).includes(packageId);
  }

  /** The capture or backup the agent holding `secret` runs, while it is active (the upload routes ask). */
  captureOf(secret: string): { readonly package: string; readonly task: 'capture' | 'backup'; readonly keep: number | null } | null {
    const job = this.book.read((st) => activeJobBySecret(st, secret));
    const pkg = job === null ? undefined : packagesWritten(job)[0];
    if (job === null || pkg === undefined || (job.task !== 'capture' && job.task !== 'backup')) return null;
    return { package: pkg, task: job.task, keep: job.task === 'backup' ? (job.keep ?? null) : null };
  }

  /** May it write (publish a version of) `packageId`? Only its active capture's or backup's package. */
  mayWrite(secret: string, packageId: string): boolean {
    const job = this.book.read((st) => activeJobBySecret(st, secret));
    return job !== null && packagesWritten(job).includes(packageId);
  }
}
