// Initial deployment on the site's side (sbs-v1 "Initial deployment"): the agent of a machine with
// no client entry asks for config.initialDeployment's items and posts its choice with its
// inventory; in ONE transaction the site then makes a Job for that MAC from the item's template
// (a new jobId, applied as a `job` instruction with source `initial-deployment`, kept with every
// other job), records the machine as a client (a `client` instruction, action `wait`, so a job
// cancelled before it ran never loops back into the list), keeps the registration, and puts
// `machine-registered` in the outbox: before the job's `job-started`, which only the agent's next
// report can make. The agent gets the job and its secret and runs it at once, without a reboot.
//
// Exactly one job and one event per machine: a second post from the same MAC while its job is
// pending or running gets that same job back (transactions are serialised; SQLite holds the
// state, so this holds across restarts too). The enrolment secret (boot/enrol-secret.ts) is
// checked here: it names one MAC, and it is accepted only while that machine has no client entry
// (or, for the repeat, while its registration's job is active). The management server's next
// `clients` snapshot decides the client entry afterwards, as the spec's ordering rules say.
import { randomUUID } from 'node:crypto';
import type { FeedChange } from '../boot/feed-protocol.ts';
import { isEnrolSecret } from '../boot/enrol-secret.ts';
import { buildDocument } from '../sbs/build.ts';
import type { InitialDeployment, JobTemplate, MachineRegisteredEvent, PxeConfig } from '../sbs/types.ts';
import { applyInstruction } from './apply.ts';
import { isActive } from './jobs-lifecycle.ts';
import type { JobRow } from './jobs-store.ts';
import { jobView, type JobView } from './jobs.ts';
import type { StateBook } from './state-book.ts';
import type { Db, Statements } from './store.ts';

/** The instruction source of what a registration applies (`netboot state` shows it). */
export const ENROL_SOURCE = 'initial-deployment';

export const ENROL_SCHEMA = `
CREATE TABLE IF NOT EXISTS registrations (
  job_id TEXT PRIMARY KEY, mac TEXT NOT NULL, uuid TEXT, label TEXT NOT NULL, item INTEGER NOT NULL,
  inventory TEXT, created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS registrations_mac ON registrations (mac, created_ms);
`;

interface RegistrationRow {
  readonly jobId: string;
  readonly mac: string;
  readonly label: string;
  readonly createdMs: number;
}

/** Creates the table (if needed) and prepares the statements; made once, by the composition root. */
export function enrolmentStatements(db: Db) {
  db.exec(ENROL_SCHEMA);
  return {
    insert: db.prepare('INSERT INTO registrations (job_id, mac, uuid, label, item, inventory, created_ms) VALUES (@jobId, @mac, @uuid, @label, @item, @inventory, @createdMs)'),
    latestOf: db.prepare<[string], RegistrationRow>('SELECT job_id AS jobId, mac, label, created_ms AS createdMs FROM registrations WHERE mac = ? ORDER BY created_ms DESC, rowid DESC LIMIT 1'),
    all: db.prepare<[], RegistrationRow>('SELECT job_id AS jobId, mac, label, created_ms AS createdMs FROM registrations'),
  };
}

export type EnrolmentStatements = ReturnType<typeof enrolmentStatements>;

/** What the agent shows: the items (label and task), the default and the countdown. */
export interface EnrolItems {
  readonly preboot: string;
  readonly items: readonly { readonly label: string; readonly task: string }[];
  readonly default?: number;
  readonly timeoutSec: number;
  /** Set when this machine has already chosen and its job is pending or running: post again to get it. */
  readonly registered?: { readonly jobId: string; readonly label: string };
}

export interface Choice {
  /** Index into the items the agent was shown. */
  readonly item: number;
  /** That item's label, as shown: a config changed in between is noticed, not guessed. */
  readonly label: string;
  /** SMBIOS UUID (normalised GUID), or null. */
  readonly uuid: string | null;
  /** The spec's inventory (disk and os), as the agent read it; null when it could read none. */
  readonly inventory: unknown;
}

export type Refusal = { readonly ok: false; readonly status: 403 | 409; readonly error: string };

export type Registered = {
  readonly ok: true;
  readonly jobId: string;
  /** The job's secret: the agent runs the job with it (Authorization on /agent/job). */
  readonly secret: string;
  readonly job: JobView;
  /** false: this machine had already registered; this is its job again. */
  readonly created: boolean;
};

export class Enrolment {
  constructor(
    private readonly book: StateBook,
    private readonly st: EnrolmentStatements,
    /** The local key the enrolment secrets are derived from (read on first use). */
    private readonly key: () => Buffer,
    private readonly onEvents: () => void,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** GET /agent/enrol: the items for this machine, or why it may not enrol. */
  items(mac: string, secret: string): ({ ok: true } & EnrolItems) | Refusal {
    if (!isEnrolSecret(this.key(), mac, secret)) return refuse(403, 'the enrolment secret is not this machine\'s (it is made for one MAC, by this site server)');
    return this.book.read((st) => {
      const active = this.activeRegistration(st, mac);
      const initial = initialOf(st);
      if (active === null) {
        const why = this.mayNotEnrol(st, mac, initial);
        if (why !== null) return why;
      }
      if (initial === null) return refuse(409, 'config has no initialDeployment');
      return {
        ok: true as const, preboot: initial.preboot, items: initial.items.map((i) => ({ label: i.label, task: i.job.task })),
        ...(initial.default === undefined ? {} : { default: initial.default }), timeoutSec: initial.timeoutSec,
        ...(active === null ? {} : { registered: { jobId: active.jobId, label: active.label } }),
      };
    });
  }

  /** POST /agent/enrol: the choice becomes this machine's job (once), reported before it starts. */
  register(mac: string, secret: string, choice: Choice): Registered | Refusal {
    if (!isEnrolSecret(this.key(), mac, secret)) return refuse(403, 'the enrolment secret is not this machine\'s (it is made for one MAC, by this site server)');
    const now = this.now();
    let events = 0;
    const r = this.book.transact<Registered | Refusal>((st) => {
      const active = this.activeRegistration(st, mac);
      if (active !== null) return { value: registered(st, active.jobId, false), changes: [] };
      const initial = initialOf(st);
      const why = this.mayNotEnrol(st, mac, initial);
      if (why !== null) return { value: why, changes: [] };
      const item = initial!.items[choice.item];
      if (item === undefined || item.label !== choice.label) {
        return { value: refuse(409, `initialDeployment has no item ${choice.item} labelled ${JSON.stringify(choice.label)} (the list changed): ask for the items again`), changes: [] };
      }
      const jobId = randomUUID();
      const issued = now.toISOString();
      const src = { file: null, source: ENROL_SOURCE, now };
      const changes: FeedChange[] = [];
      // The client entry first: from here on the machine is a client (spec: "the site keeps the
      // machine as a client from then on"); `wait` until its job sets `then`.
      const client = buildDocument('client', { client: { mac, ...(choice.uuid === null ? {} : { uuid: choice.uuid }), action: { type: 'wait' } } }, { issued });
      changes.push(...applyInstruction(st, client, src).changes);
      const job = buildDocument('job', { job: jobOf(item.job, jobId, mac) }, { issued });
      changes.push(...applyInstruction(st, job, src).changes);
      this.st.insert.run({ jobId, mac, uuid: choice.uuid, label: item.label, item: choice.item, inventory: choice.inventory === null ? null : JSON.stringify(choice.inventory), createdMs: now.getTime() });
      const event: MachineRegisteredEvent = { kind: 'machine-registered', mac, uuid: choice.uuid, inventory: choice.inventory, label: item.label, jobId, at: issued };
      st.insertEvent.run(randomUUID(), JSON.stringify(event), issued);
      events++;
      return { value: registered(st, jobId, true), changes };
    });
    if (events > 0) this.onEvents();
    return r;
  }

  /** Job views with where each came from: `origin` on the jobs made by initial deployment. */
  annotate(jobs: readonly JobView[]): JobView[] {
    const byJob = new Map(this.st.all.all().map((r) => [r.jobId, r]));
    return jobs.map((j) => {
      const r = byJob.get(j.jobId);
      return r === undefined ? j : { ...j, origin: { kind: 'initial-deployment', label: r.label } };
    });
  }

  /** This machine's registration whose job is still pending or running. */
  private activeRegistration(st: Statements, mac: string): RegistrationRow | null {
    const r = this.st.latestOf.get(mac);
    if (r === undefined) return null;
    const row = st.getJob.get(r.jobId);
    return row !== undefined && row.job !== null && isActive(row.state) ? r : null;
  }

  /** Why this machine may not enrol now (it has a client entry, or a job), or null. */
  private mayNotEnrol(st: Statements, mac: string, initial: InitialDeployment | null): Refusal | null {
    if (initial === null) return refuse(409, 'config has no initialDeployment: this site does not register machines now');
    const client = st.getObject.get('clients', mac);
    if (client !== undefined && client.value !== null) return refuse(403, 'the machine is a client of this site now: the enrolment secret is valid only while it has no client entry (reboot: it boots by its action)');
    const job = st.activeJobsOf.all(mac)[0];
    if (job !== undefined) return refuse(409, `the machine has job ${job.jobId} now: reboot to run it`);
    return null;
  }
}

function refuse(status: 403 | 409, error: string): Refusal {
  return { ok: false, status, error };
}

function initialOf(st: Statements): InitialDeployment | null {
  const row = st.getObject.get('config', '');
  if (row === undefined || row.value === null) return null;
  return (JSON.parse(row.value) as PxeConfig).initialDeployment ?? null;
}

function jobOf(template: JobTemplate, jobId: string, mac: string): Record<string, unknown> {
  return { jobId, mac, ...template };
}

function registered(st: Statements, jobId: string, created: boolean): Registered {
  const row: JobRow = st.getJob.get(jobId)!;
  return { ok: true, jobId, secret: row.secret, job: jobView(row), created };
}
