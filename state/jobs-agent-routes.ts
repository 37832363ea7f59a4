// The imaging agent's API on the Interface's port (TCP 490), under /agent/. Every request
// carries the job's secret as `Authorization: Bearer <64 hex>`: the secret reached the agent only
// on its own machine's kernel command line, names one job, and is refused once that job ended.
//   GET  /agent/job              the job (what to do, which packages it may read or write)
//   POST /agent/job/started      {jobId?}
//   POST /agent/job/progress     {jobId?, phase, bytesDone, bytesTotal}
//   POST /agent/job/completed    {jobId?, result: {package?, version?, bytesWritten, bytesTransferred, seconds, inventory?}}
//   POST /agent/job/failed       {jobId?, reason, phase}
// Bodies are the spec's events (sbs-v1 "Imaging jobs"); `mac`, `task` and `at` are the site's own.
// Answers: 200 {job}; 400 a malformed body; 401 no bearer secret; 403 a secret of no job, of
// another job (`jobId` in the body) or of an ended job; 409 a report the job's state does not
// allow (progress before started); 410 the job was cancelled (the agent stops; the machine waits).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../platform/runtime/logger.ts';
import { BadRequest, bearerSecret, guarded, readJson, send } from './agent-http.ts';
import { normalizeGuid } from '../sbs/guid.ts';
import type { AgentReport } from './jobs-apply.ts';
import { jobView, type JobBook } from './jobs.ts';

const MAX_BODY_BYTES = 4 * 1024 * 1024;
const MAX_TEXT = 1024;

export class AgentRoutes {
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;

  constructor(private readonly jobs: JobBook, private readonly log: Logger) {
    this.handle = guarded((req, res) => this.route(req, res), log, 'agent request');
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const what = path === '/agent/job' ? 'check' : path.startsWith('/agent/job/') ? path.slice('/agent/job/'.length) : null;
    if (what === null || !['check', 'started', 'progress', 'completed', 'failed'].includes(what)) {
      send(res, 404, { error: 'no such agent path' });
      return;
    }
    const method = what === 'check' ? 'GET' : 'POST';
    if (req.method !== method) {
      res.setHeader('allow', method);
      send(res, 405, { error: `use ${method}` });
      return;
    }
    const secret = bearerSecret(req);
    if (secret === null) {
      res.setHeader('www-authenticate', 'Bearer');
      send(res, 401, { error: 'the job\'s secret is required: Authorization: Bearer <secret from the kernel command line>' });
      return;
    }
    const body = method === 'POST' ? await readJson(req, MAX_BODY_BYTES) : {};
    const claimed = body.jobId === undefined ? null : normalizeGuid(text(body, 'jobId'));
    if (body.jobId !== undefined && claimed === null) throw new BadRequest('jobId: must be a GUID');
    const report = readReport(what as AgentReport['kind'], body);
    const r = this.jobs.report(secret, claimed, report);
    const remote = req.socket.remoteAddress;
    if (!r.ok) {
      this.log.warn('agent request refused', { path, remote, status: r.status, reason: r.error, jobId: r.row?.jobId });
      send(res, r.status, { error: r.error, ...(r.row === undefined ? {} : { state: r.row.state }) });
      return;
    }
    if (report.kind !== 'check' && report.kind !== 'progress') this.log.info('agent report', { jobId: r.row.jobId, kind: report.kind, remote, state: r.row.state });
    const view = jobView(r.row);
    send(res, 200, { job: view });
  }
}

function readReport(kind: AgentReport['kind'], body: Record<string, unknown>): AgentReport {
  switch (kind) {
    case 'check':
    case 'started':
      return { kind };
    case 'progress':
      return { kind, phase: text(body, 'phase'), bytesDone: count(body, 'bytesDone'), bytesTotal: count(body, 'bytesTotal') };
    case 'failed':
      return { kind, reason: text(body, 'reason'), phase: text(body, 'phase') };
    case 'completed': {
      const result = body.result;
      if (typeof result !== 'object' || result === null || Array.isArray(result)) throw new BadRequest('result: must be an object');
      const r = result as Record<string, unknown>;
      for (const k of ['bytesWritten', 'bytesTransferred']) count(r, k, 'result.');
      if (typeof r.seconds !== 'number' || !Number.isFinite(r.seconds) || r.seconds < 0) throw new BadRequest('result.seconds: must be a number of seconds');
      if (r.package !== undefined && typeof r.package !== 'string') throw new BadRequest('result.package: must be a string');
      if (r.version !== undefined && (typeof r.version !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(r.version))) throw new BadRequest('result.version: must be "sha256:" and 64 hex digits');
      if (r.inventory !== undefined && (typeof r.inventory !== 'object' || r.inventory === null)) throw new BadRequest('result.inventory: must be an object');
      return { kind, result: r };
    }
  }
}

function text(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_TEXT) throw new BadRequest(`${key}: must be a string of 1 to ${MAX_TEXT} characters`);
  return v;
}

function count(body: Record<string, unknown>, key: string, prefix = ''): number {
  const v = body[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new BadRequest(`${prefix}${key}: must be a whole number of bytes`);
  return v;
}
