// A real Interface with config.initialDeployment, a management-server stand-in that records the
// outbox's events, and the agent's two APIs over real HTTP: for test/jobs/interface-initial.test.ts
// and test/images/enrol.test.ts.
import { join } from 'node:path';
import { enrolSecret } from '../../boot/enrol-secret.ts';
import { writeFileAtomic } from '../../platform/runtime/atomic-file.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { LocalKey } from '../../platform/trust/local-key.ts';
import type { InterfaceService } from '../../services/interface/interface-service.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';
import { management, type Mgmt } from '../helpers/event-recorder.ts';

export { management, type Mgmt } from '../helpers/event-recorder.ts';

export const ISSUED = '2026-12-05T09:00:00Z';
export const KNOWN_MAC = '52:54:00:00:00:01';

export const INITIAL = {
  preboot: 'linuxpe-x64',
  items: [
    // biome-ignore lint/suspicious/noThenProperty: the spec names this member `then`
    { label: 'Windows 11 lab image', job: { task: 'deploy', preboot: 'linuxpe-x64', package: 'win11-gold', then: { type: 'local' } } },
    // biome-ignore lint/suspicious/noThenProperty: the spec names this member `then`
    { label: 'Erase and hand back', job: { task: 'erase', preboot: 'linuxpe-x64', then: { type: 'wait' } } },
  ],
  default: 0,
  timeoutSec: 30,
};



export interface InitialSite {
  readonly site: TestSite;
  readonly svc: InterfaceService;
  readonly mgmt: Mgmt;
  /** http://127.0.0.1:<port> of the Interface. */
  readonly server: string;
  drop(kind: string, payload: object, issued?: string): Promise<string>;
  /** The enrolment secret the PXE server would put on this MAC's kernel command line. */
  secretOf(mac: string): string;
  /** One call to /agent/enrol. */
  enrol(secret: string | null, mac: string, body?: object): Promise<{ status: number; body: Record<string, unknown> }>;
  /** One call to /agent/job[/what] with a job's secret. */
  agent(secret: string, what: string, body?: object): Promise<{ status: number; body: Record<string, unknown> }>;
}

let n = 0;
const newId = (): string => `22222222-2222-4333-8444-${String(++n).padStart(12, '0')}`;

export async function withInitialSite(fn: (env: InitialSite) => Promise<void>, initial: object | null = INITIAL): Promise<void> {
  const mgmt = await management();
  const site = await makeTestSite(`[management]\nurl = "${mgmt.url}"\n[interface]\nsettle_ms = 10\n`);
  const svc = buildInterface(site.config, createMemoryLogger());
  await svc.start();
  const server = `http://127.0.0.1:${svc.boundPort}`;
  const drop = async (kind: string, payload: object, issued = new Date().toISOString()): Promise<string> => {
    const id = newId();
    writeFileAtomic(join(site.config.paths.sbs, `${id}.sbs`), JSON.stringify({ sbs: 1, id, kind, issued, ...payload }));
    await waitFor(`instruction ${kind} applied`, () => (svc.state.hasApplied(id) ? true : undefined));
    return id;
  };
  const key = LocalKey.of(site.config.paths.data);
  const call = async (url: string, secret: string | null, body?: object) => {
    const res = await fetch(url, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...(secret === null ? {} : { authorization: `Bearer ${secret}` }), 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  try {
    await drop('config', { config: { respond: 'all', bootFiles: { bios: 'undionly.kpxe' }, ...(initial === null ? {} : { initialDeployment: initial }) } }, ISSUED);
    await drop('clients', { clients: [{ mac: KNOWN_MAC, action: { type: 'local' } }] }, ISSUED);
    await drop('images', { images: [{ id: 'linuxpe-x64', name: 'Linux PE', arch: ['bios'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img'] }] }, ISSUED);
    await fn({
      site, svc, mgmt, server, drop,
      secretOf: (mac) => enrolSecret(key.get(), mac),
      enrol: (secret, mac, body) => call(body === undefined ? `${server}/agent/enrol?mac=${encodeURIComponent(mac)}` : `${server}/agent/enrol`, secret, body === undefined ? undefined : { mac, ...body }),
      agent: (secret, what, body) => call(`${server}/agent/job${what === '' ? '' : `/${what}`}`, secret, what === '' ? undefined : (body ?? {})),
    });
  } finally {
    await svc.stop();
    site.cleanup();
    mgmt.close();
  }
}
