// Job (spec "Imaging jobs"): imaging work for one machine, and the `job-cancel` payload. Members
// are checked in the spec's order; a member another task uses is refused with the task named
// (`not allowed for task erase`), so a mistyped `task` cannot silently drop a package or a version.
import { readAction } from './action.ts';
import { SbsError } from './errors.ts';
import { Fields } from './fields.ts';
import type { JsonValue } from './json.ts';
import { indexPath } from './path.ts';
import { guid, identifier, mac } from './primitives.ts';
import { JOB_TASKS, type Job, type JobTask, type JobTemplate } from './types.ts';

const TEMPLATE_FIELDS = ['task', 'preboot', 'package', 'version', 'disk', 'partitions', 'keep', 'method', 'then'];
const FIELDS = ['jobId', 'mac', ...TEMPLATE_FIELDS];

/** Which optional members each task takes. */
const ALLOWED: Readonly<Record<string, readonly JobTask[]>> = {
  package: ['deploy', 'capture'],
  version: ['deploy', 'restore'],
  partitions: ['capture', 'backup', 'deploy'],
  keep: ['backup'],
  method: ['erase'],
};

const VERSION = /^sha256:[0-9a-fA-F]{64}$/;
const DEVICE = /^\/dev\/[A-Za-z0-9._+:/-]+$/;
// Printable ASCII except space: what kernels report as a disk serial (/dev/disk/by-id uses it).
const SERIAL = /^serial:[\x21-\x7e]{1,128}$/;
export const DEFAULT_KEEP = 3;

export function readJob(value: JsonValue | undefined, path: string): Job {
  const f = Fields.of(value, path).only(FIELDS);
  const jobId = guid(f.string('jobId'), f.at('jobId'));
  const machine = mac(f.string('mac'), f.at('mac'));
  return { jobId, mac: machine, ...readJobBody(f) };
}

/**
 * A JobTemplate (spec "Initial deployment"): a Job without `jobId` and `mac`, which the site
 * fills in for the machine that chose it. Defaults are filled in as for a Job.
 */
export function readJobTemplate(value: JsonValue | undefined, path: string): JobTemplate {
  const f = Fields.of(value, path).only(TEMPLATE_FIELDS, (k) => (k === 'jobId' || k === 'mac' ? 'not allowed in a job template (the site makes it for the machine that chooses the item)' : undefined));
  return readJobBody(f);
}

function readJobBody(f: Fields): JobTemplate {
  const taskText = f.string('task');
  if (!(JOB_TASKS as readonly string[]).includes(taskText)) {
    throw new SbsError(f.at('task'), 'must be "deploy", "capture", "backup", "restore" or "erase"');
  }
  const task = taskText as JobTask;
  const preboot = identifier(f.string('preboot'), f.at('preboot'));
  const allowedHere = (key: string): boolean => {
    const tasks = ALLOWED[key];
    if (tasks === undefined || !f.has(key)) return f.has(key);
    if (!tasks.includes(task)) throw new SbsError(f.at(key), `not allowed for task ${task}`);
    return true;
  };
  const job: Record<string, unknown> = { task, preboot };
  if (allowedHere('package')) job.package = identifier(f.string('package'), f.at('package'));
  else if (task === 'deploy' || task === 'capture') throw new SbsError(f.at('package'), `required for task ${task}`);
  if (allowedHere('version')) {
    const v = f.string('version');
    if (!VERSION.test(v)) throw new SbsError(f.at('version'), 'must be "sha256:" and 64 hex digits');
    job.version = v.toLowerCase();
  }
  job.disk = f.has('disk') ? readDisk(f.string('disk'), f.at('disk')) : 'first';
  if (allowedHere('partitions')) job.partitions = readPartitions(f);
  if (allowedHere('keep') || task === 'backup') job.keep = f.integer('keep', 1, 100, DEFAULT_KEEP);
  if (allowedHere('method')) {
    const m = f.string('method');
    if (m !== 'zero' && m !== 'discard') throw new SbsError(f.at('method'), 'must be "zero" or "discard"');
    job.method = m;
  } else if (task === 'erase') {
    job.method = 'zero';
  }
  // biome-ignore lint/suspicious/noThenProperty: the spec names this member `then`
  job.then = f.has('then') ? readAction(f.raw('then'), f.at('then')) : { type: 'local' };
  return job as unknown as JobTemplate;
}

function readDisk(value: string, path: string): string {
  if (value === 'first') return value;
  if (value.startsWith('/dev/')) {
    if (!DEVICE.test(value) || value.split('/').some((s) => s === '..' || s === '.') || value.length > 256) {
      throw new SbsError(path, 'must be a device path under /dev/ (letters, digits and ._+:-/, no . or .. segments)');
    }
    return value;
  }
  if (value.startsWith('serial:')) {
    if (!SERIAL.test(value)) throw new SbsError(path, 'must be "serial:" and 1 to 128 printable characters without spaces');
    return value;
  }
  throw new SbsError(path, 'must be "first", a device path under /dev/, or "serial:<serial>"');
}

function readPartitions(f: Fields): number[] {
  const path = f.at('partitions');
  const list = f.array('partitions', (v, p) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw new SbsError(p, 'must be a partition number from 1 to 65535');
    return v;
  });
  if (list.length === 0) throw new SbsError(path, 'must name at least one partition (leave it out for all)');
  list.forEach((n, i) => {
    const first = list.indexOf(n);
    if (first !== i) throw new SbsError(indexPath(path, i), `duplicate of ${indexPath(path, first)}`);
  });
  return list;
}

/** `job-cancel`'s payload: the job to cancel. */
export function readJobId(f: Fields): string {
  return guid(f.string('jobId'), 'jobId');
}
