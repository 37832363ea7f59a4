// `netboot job deploy|capture|backup|restore|erase --mac MAC ...`: writes a `job` instruction
// through the same checked path as `netboot sbs send`; `netboot job cancel JOBID` a `job-cancel`;
// `netboot job list` and `netboot job status JOBID [--watch]` read the running Interface's jobs
// (its control socket, GET /jobs).
import { randomUUID } from 'node:crypto';
import { controlCall, controlSocketPath } from '../platform/local/control.ts';
import { buildDocument, type EnvelopeOptions } from '../sbs/build.ts';
import { SbsError } from '../sbs/errors.ts';
import type { SbsDocument } from '../sbs/types.ts';
import type { JobView } from '../state/jobs.ts';
import { stringFlag, type CommandSpec, type OptionSpec, type Options, type ParsedArgs } from './args.ts';
import { configFor, type CliContext, type Command } from './context.ts';
import { writeInstruction } from './sbs-command.ts';
import { renderTable } from './table.ts';

const value = (v: string, help: string): OptionSpec => ({ type: 'string', value: v, help });

const ENVELOPE: Options = {
  issued: value('RFC3339', 'the instruction\'s issued time (default: now)'),
  'instruction-id': value('GUID', 'the instruction\'s id (default: random)'),
  strict: { type: 'boolean', help: 'refuse (exit 1, nothing written) when it names an image or package this site does not have' },
};

const COMMON: Options = {
  mac: { type: 'string', value: 'MAC', required: true, help: 'the machine that runs the job' },
  preboot: { type: 'string', value: 'IMAGE', required: true, help: 'the preboot image (type linux) it boots to run the job' },
  'job-id': value('GUID', 'the job\'s id (default: random); keep it to resend the same job'),
  disk: value('DISK', '"first" (default), a device path under /dev/, or serial:SERIAL'),
  // biome-ignore lint/suspicious/noThenProperty: the option is named after the spec's `then`
  then: value('ACTION', 'the machine\'s action once the job completed: local (default), wait, menu, boot:IMAGE or boot-once:IMAGE'),
  ...ENVELOPE,
};

const PACKAGE = (help: string, required: boolean): Options => ({ package: { type: 'string', value: 'PKG', required, help } });
const VERSION: Options = { version: value('sha256:HEX', 'which version (default: the current one)') };
const PARTITIONS: Options = { partitions: value('N,...', 'which partitions (default: all, with the partition table)') };

const TASKS: Record<string, { summary: string; options: Options }> = {
  deploy: { summary: 'write a disk image package onto a machine\'s disk', options: { ...COMMON, ...PACKAGE('the disk image to write', true), ...VERSION, ...PARTITIONS } },
  capture: { summary: 'capture a machine\'s disk into a new version of a package', options: { ...COMMON, ...PACKAGE('the package that receives the new version', true), ...PARTITIONS } },
  backup: { summary: 'back up a machine\'s disk (package backup-<mac>)', options: { ...COMMON, ...PARTITIONS, keep: value('N', 'how many backups of this machine are kept, 1-100 (default 3)') } },
  restore: { summary: 'restore a machine\'s disk from one of its backups', options: { ...COMMON, ...VERSION } },
  erase: { summary: 'erase a machine\'s disk', options: { ...COMMON, method: value('zero|discard', 'how (default zero)') } },
};

const VIEW: Options = {
  json: { type: 'boolean', help: 'print as JSON' },
  wide: { type: 'boolean', help: 'show every column in full (no cutting to 80 columns)' },
};

export const jobSpec: CommandSpec = {
  name: 'job',
  summary: 'imaging jobs: send one (deploy, capture, backup, restore, erase), list, follow',
  subcommands: {
    ...Object.fromEntries(Object.entries(TASKS).map(([task, t]) => [task, {
      name: `job ${task}`, summary: t.summary, options: t.options,
      description: ['Writes a `job` instruction into the SBS folder (checked first: an invalid one is never written, exit status 1). The machine boots the preboot at its next PXE boot; follow it with `netboot job status JOBID --watch`.'],
    } satisfies CommandSpec])),
    cancel: {
      name: 'job cancel', summary: 'cancel a job (a running one stops at the agent\'s next check)', args: 'JOBID', arity: [1, 1], options: ENVELOPE,
      synopsis: ['job cancel JOBID [--issued RFC3339] [--instruction-id GUID]', '           [--strict]'],
    },
    list: { name: 'job list', summary: 'every job the site knows: state and progress', options: VIEW },
    status: {
      name: 'job status', summary: 'one job in full', args: 'JOBID', arity: [1, 1],
      options: { ...VIEW, watch: { type: 'boolean', help: 'follow it until it ends (exit 0 completed, 1 failed or cancelled)' } },
      description: ['JOBID may be shortened to its first 8 or more characters.'],
    },
  },
};

const WATCH_MS = 1000;

export const jobCommand: Command = async (ctx) => {
  const [sub, arg] = ctx.args.positionals;
  if (sub === 'list') return list(ctx);
  if (sub === 'status') return status(ctx, arg!);
  if (sub === 'cancel') return send(ctx, () => buildDocument('job-cancel', { jobId: arg }, envelope(ctx.args)), 'netboot job cancel');
  if (sub !== undefined && Object.hasOwn(TASKS, sub)) return send(ctx, () => buildDocument('job', { job: jobFromFlags(ctx.args, sub) }, envelope(ctx.args)), `netboot job ${sub}`);
  ctx.err(`netboot job: ${sub === undefined ? 'missing subcommand' : `unknown subcommand: ${sub}`} (deploy, capture, backup, restore, erase, cancel, list, status)`);
  return 2;
};

async function send(ctx: CliContext, build: () => SbsDocument, who: string): Promise<number> {
  let doc: SbsDocument;
  try {
    doc = build();
  } catch (err) {
    if (!(err instanceof SbsError)) throw err;
    ctx.err(`${who}: invalid instruction, nothing written: ${err.message}`);
    return 1;
  }
  const code = await writeInstruction(ctx, doc, who);
  if (code === 0 && doc.kind === 'job') ctx.out(`job ${doc.job.jobId}: follow it with \`netboot job status ${doc.job.jobId.slice(0, 8)} --watch\``);
  return code;
}

function envelope(args: ParsedArgs): EnvelopeOptions {
  const id = stringFlag(args, 'instruction-id');
  const issued = stringFlag(args, 'issued');
  return { ...(id === undefined ? {} : { id }), ...(issued === undefined ? {} : { issued }) };
}

/** The job's raw JSON from flags; the parser checks it (so the CLI's errors are the spec's). */
export function jobFromFlags(args: ParsedArgs, task: string): Record<string, unknown> {
  const job: Record<string, unknown> = { jobId: stringFlag(args, 'job-id') ?? randomUUID(), mac: stringFlag(args, 'mac'), task, preboot: stringFlag(args, 'preboot') };
  for (const key of ['package', 'version', 'disk', 'method']) {
    const v = stringFlag(args, key);
    if (v !== undefined) job[key] = v;
  }
  const partitions = stringFlag(args, 'partitions');
  if (partitions !== undefined) job.partitions = partitions.split(',').map((s) => (/^\d+$/.test(s.trim()) ? Number(s.trim()) : s.trim()));
  const keep = stringFlag(args, 'keep');
  if (keep !== undefined) job.keep = /^\d+$/.test(keep) ? Number(keep) : keep;
  const then = stringFlag(args, 'then');
  // biome-ignore lint/suspicious/noThenProperty: the spec names this member `then`
  if (then !== undefined) job.then = thenAction(then);
  return job;
}

function thenAction(s: string): Record<string, unknown> {
  if (s.startsWith('boot:')) return { type: 'boot', image: s.slice(5), once: false };
  if (s.startsWith('boot-once:')) return { type: 'boot', image: s.slice(10), once: true };
  return { type: s };
}

async function fetchJobs(ctx: CliContext): Promise<JobView[]> {
  const config = configFor(ctx);
  const r = await controlCall<{ jobs: JobView[] }>(controlSocketPath(config.paths.data, 'interface'), 'GET', '/jobs');
  return r.jobs;
}

async function list(ctx: CliContext): Promise<number> {
  const jobs = await fetchJobs(ctx);
  if (ctx.args.flags.has('json')) {
    ctx.out(JSON.stringify(jobs, null, 2));
    return 0;
  }
  if (jobs.length === 0) {
    ctx.out('no jobs');
    return 0;
  }
  for (const line of formatJobTable(jobs, ctx.args.flags.has('wide'))) ctx.out(line);
  return 0;
}

export function formatJobTable(jobs: readonly JobView[], wide = false): string[] {
  // `deploy*`: a job made by initial deployment (the machine chose it at its console), said below.
  const rows = jobs.map((j) => [j.jobId.slice(0, 8), j.mac, j.origin === undefined ? j.task : `${j.task}*`, stateText(j), progressText(j)]);
  const table = renderTable([
    { header: 'JOB', keep: true }, { header: 'MAC', keep: true }, { header: 'TASK', keep: true }, { header: 'STATE', keep: true }, { header: 'PROGRESS', min: 10 },
  ], rows, { wide });
  return jobs.some((j) => j.origin !== undefined) ? [...table, '* made by initial deployment: the machine chose it at its console (`netboot job status JOBID` says which item)'] : table;
}

function stateText(j: JobView): string {
  return j.cancelRequested ? `${j.state} (cancelling)` : j.state;
}

/** `[#####-----]  50% write 5.0 GiB/10.0 GiB`, or what is known. */
export function progressText(j: JobView): string {
  if (j.state === 'failed') return `failed${j.phase === null ? '' : ` in ${j.phase}`}: ${j.reason ?? ''}`;
  if (j.state === 'cancelled') return j.reason ?? 'cancelled';
  if (j.state === 'completed') return 'done';
  if (j.bytesDone === null || j.bytesTotal === null || j.bytesTotal === 0) return j.state === 'pending' ? (j.booted ? 'preboot fetched' : 'waiting for the machine to boot') : (j.phase ?? 'started');
  const ratio = Math.min(1, j.bytesDone / j.bytesTotal);
  const filled = Math.round(ratio * 20);
  return `[${'#'.repeat(filled)}${'-'.repeat(20 - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}% ${j.phase ?? ''} ${bytes(j.bytesDone)}/${bytes(j.bytesTotal)}`;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

function find(jobs: readonly JobView[], id: string): JobView | string {
  const lower = id.toLowerCase();
  const hits = jobs.filter((j) => j.jobId === lower || (lower.length >= 8 && j.jobId.startsWith(lower)));
  if (hits.length === 1) return hits[0]!;
  return hits.length === 0 ? `no job ${id}${lower.length < 8 ? ' (give at least 8 characters)' : ''}` : `${id} names ${hits.length} jobs; give more of it`;
}

export function formatJob(j: JobView): string[] {
  const lines = [
    `job ${j.jobId}: ${j.task} on ${j.mac}, ${stateText(j)}`,
    ...(j.origin === undefined ? [] : [`  from initial deployment: the machine chose "${j.origin.label}"`]),
    `  preboot ${j.job.preboot}${j.job.package === undefined ? '' : `, package ${j.job.package}`}${j.job.version === undefined ? '' : ` @ ${j.job.version}`}, disk ${j.job.disk}`,
    `  issued ${j.issued}; started ${j.startedAt ?? '-'}; ended ${j.endedAt ?? '-'}`,
    `  progress ${progressText(j)}`,
  ];
  if (j.result !== null) lines.push(`  result ${JSON.stringify(j.result)}`);
  return lines;
}

async function status(ctx: CliContext, id: string): Promise<number> {
  const watch = ctx.args.flags.has('watch');
  let last = '';
  for (;;) {
    const found = find(await fetchJobs(ctx), id);
    if (typeof found === 'string') {
      ctx.err(`netboot job status: ${found}`);
      return 1;
    }
    const ended = found.state !== 'pending' && found.state !== 'running';
    if (ctx.args.flags.has('json')) {
      const text = JSON.stringify(found, null, 2);
      if (text !== last) ctx.out(text);
      last = text;
    } else if (!watch || last === '') {
      for (const line of formatJob(found)) ctx.out(line);
      last = progressText(found) + stateText(found);
    } else {
      const now = progressText(found) + stateText(found);
      if (now !== last) ctx.out(`  ${stateText(found)}: ${progressText(found)}`);
      last = now;
    }
    if (!watch) return 0;
    if (ended) return found.state === 'completed' ? 0 : 1;
    await new Promise((r) => setTimeout(r, WATCH_MS));
  }
}
