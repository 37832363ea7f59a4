// Publishing as a job the CLI can follow: started by one control request, its progress and
// outcome read by later ones (`GET /packages/jobs?id=`), so a long publish needs no open socket.
import { randomUUID } from 'node:crypto';
import { errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import type { PackageKind } from './manifest.ts';
import type { PackageRef } from './model.ts';
import type { PublishProgress } from './publish.ts';

export interface PublishJob {
  readonly id: string;
  readonly package: string;
  readonly dir: string;
  state: 'running' | 'done' | 'failed';
  readonly progress: PublishProgress;
  readonly startedAt: string;
  ref?: PackageRef;
  /** The content was the current version's: no new version, nothing written. */
  unchanged?: boolean;
  hashMs?: number;
  error?: string;
}

export type RunPublish = (dir: string, pkg: string, kind: PackageKind, progress: PublishProgress) => Promise<{ ref: PackageRef; hashMs: number; unchanged?: boolean }>;

export class PublishJobs {
  private readonly jobs = new Map<string, PublishJob>();

  constructor(
    private readonly run: RunPublish,
    private readonly log: Logger,
  ) {}

  /** Starts a publish; `settled` resolves (never rejects) once the job is done or failed. */
  start(dir: string, pkg: string, kind: PackageKind): { job: PublishJob; settled: Promise<void> } {
    const job: PublishJob = { id: randomUUID(), package: pkg, dir, state: 'running', progress: { filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 }, startedAt: new Date().toISOString() };
    this.jobs.set(job.id, job);
    const settled = this.run(dir, pkg, kind, job.progress).then((r) => {
      job.state = 'done';
      job.ref = r.ref;
      job.unchanged = r.unchanged === true;
      job.hashMs = Math.round(r.hashMs);
    }, (err) => {
      job.state = 'failed';
      job.error = errorMessage(err);
      this.log.warn('publish failed', { package: pkg, dir, err: job.error });
    });
    return { job, settled };
  }

  get(id: string): PublishJob | undefined {
    return this.jobs.get(id);
  }
}
