// Initial deployment's part of the agent API on the Interface's port (TCP 490), beside /agent/job
// (state/jobs-agent-routes.ts). The agent of a machine with no client entry proves itself with
// the enrolment secret from its kernel command line (`netboot.enrol=`, boot/enrol-secret.ts):
//   GET  /agent/enrol?mac=MAC   {preboot, items: [{label, task}], default?, timeoutSec, registered?}
//   POST /agent/enrol           {mac, item, label, uuid?, inventory?} -> {jobId, secret, job, created}
// both with `Authorization: Bearer <enrolment secret>`. The answer to the POST is the job and its
// secret: the agent runs it at once, with /agent/job and that secret, without a reboot. Answers:
// 200; 400 a malformed request; 401 no bearer secret; 403 a secret not of this MAC, or a machine
// that is a client now; 409 no initialDeployment, a job of its own, or a list that changed.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../platform/runtime/logger.ts';
import { BadRequest, bearerSecret, guarded, readJson, send } from './agent-http.ts';
import { normalizeGuid } from '../sbs/guid.ts';
import { normalizeMac } from '../sbs/mac.ts';
import type { Enrolment } from './enrolment.ts';

/** An inventory is a disk's description, a few KiB; the bound keeps a post from filling the store. */
const MAX_BODY_BYTES = 1024 * 1024;

export class EnrolRoutes {
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;

  constructor(private readonly enrolment: Enrolment, private readonly log: Logger) {
    this.handle = guarded((req, res) => this.route(req, res), log, 'enrolment request');
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const [path, query] = (req.url ?? '/').split('?') as [string, string | undefined];
    if (path !== '/agent/enrol') {
      send(res, 404, { error: 'no such agent path' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'POST') {
      res.setHeader('allow', 'GET, POST');
      send(res, 405, { error: 'use GET or POST' });
      return;
    }
    const secret = bearerSecret(req);
    if (secret === null) {
      res.setHeader('www-authenticate', 'Bearer');
      send(res, 401, { error: 'the enrolment secret is required: Authorization: Bearer <netboot.enrol from the kernel command line>' });
      return;
    }
    const remote = req.socket.remoteAddress;
    if (req.method === 'GET') {
      const mac = macOf(new URLSearchParams(query ?? '').get('mac'));
      const r = this.enrolment.items(mac, secret);
      if (!r.ok) this.log.warn('enrolment refused', { mac, remote, status: r.status, reason: r.error });
      send(res, r.ok ? 200 : r.status, r.ok ? { ...r, ok: undefined } : { error: r.error });
      return;
    }
    const body = await readJson(req, MAX_BODY_BYTES);
    const mac = macOf(body.mac);
    if (typeof body.item !== 'number' || !Number.isInteger(body.item) || body.item < 0) throw new BadRequest('item: must be an index into the items');
    if (typeof body.label !== 'string') throw new BadRequest('label: must be the chosen item\'s label');
    let uuid: string | null = null;
    if (body.uuid !== undefined && body.uuid !== null) {
      uuid = typeof body.uuid === 'string' ? normalizeGuid(body.uuid) : null;
      if (uuid === null) throw new BadRequest('uuid: must be a GUID (the SMBIOS UUID), or null');
    }
    const inventory = body.inventory ?? null;
    if (typeof inventory !== 'object' || Array.isArray(inventory)) throw new BadRequest('inventory: must be an object, or null');
    const r = this.enrolment.register(mac, secret, { item: body.item, label: body.label, uuid, inventory });
    if (!r.ok) {
      this.log.warn('enrolment refused', { mac, remote, status: r.status, reason: r.error });
      send(res, r.status, { error: r.error });
      return;
    }
    this.log.info(r.created ? 'machine registered by initial deployment' : 'machine asked again: its registration\'s job', { mac, remote, jobId: r.jobId, label: body.label, task: r.job.task });
    send(res, 200, { jobId: r.jobId, secret: r.secret, job: r.job, created: r.created });
  }
}

function macOf(value: unknown): string {
  const mac = typeof value === 'string' ? normalizeMac(value) : null;
  if (mac === null) throw new BadRequest('mac: must be the machine\'s MAC address (the one it booted from)');
  return mac;
}
