// SBS files dropped into a test site's Interface as the task server writes them, each waited for
// until applied; jobs for one machine. Shared by the agent tests that run a real Interface.
import { join } from 'node:path';
import { writeFileAtomic } from '../../platform/runtime/atomic-file.ts';
import type { InterfaceService } from '../../services/interface/interface-service.ts';
import { waitFor, type TestSite } from '../helpers/env.ts';

export interface SiteJobs {
  drop(kind: string, payload: object): Promise<void>;
  /** A job for the machine (preboot linuxpe-x64, then local, unless `job` says otherwise); its jobId. */
  addJob(job: Record<string, unknown>): Promise<string>;
}

export function siteJobs(site: TestSite, svc: InterfaceService, mac: string, newId: () => string, jobId: () => string): SiteJobs {
  const drop = async (kind: string, payload: object): Promise<void> => {
    const id = newId();
    writeFileAtomic(join(site.config.paths.sbs, `${id}.sbs`), JSON.stringify({ sbs: 1, id, kind, issued: new Date().toISOString(), ...payload }));
    await waitFor(`instruction ${kind} applied`, () => (svc.state.hasApplied(id) ? true : undefined), 15_000);
  };
  const addJob = async (job: Record<string, unknown>): Promise<string> => {
    const id = jobId();
    // biome-ignore lint/suspicious/noThenProperty: the spec names this member `then`
    await drop('job', { job: { jobId: id, mac, preboot: 'linuxpe-x64', then: { type: 'local' }, ...job } });
    return id;
  };
  return { drop, addJob };
}
