// One run of the start-up sequence with a management server: register once, fetch the start-up
// state, validate all of it, then write the four start-up SBS files, each atomically. Nothing is
// written unless the whole answer is valid.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../platform/runtime/atomic-file.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import type { ManagementClient, Registration } from './management-client.ts';
import type { RegistrationRecordFile } from './registration-record.ts';
import { buildStartupFiles, type StartupFile } from './startup-documents.ts';

export interface StartupSequenceDeps {
  readonly managementUrl: string;
  readonly serverId: string;
  readonly sbsDir: string;
  readonly client: ManagementClient;
  readonly record: RegistrationRecordFile;
  readonly registration: () => Registration;
  readonly newId: () => string;
  readonly now?: () => Date;
  readonly log: Logger;
}

export class StartupSequence {
  constructor(private readonly deps: StartupSequenceDeps) {}

  async run(abort?: AbortSignal): Promise<readonly StartupFile[]> {
    const d = this.deps;
    await this.registerOnce(abort);
    const answer = await d.client.startup(d.serverId, abort);
    const issued = (d.now?.() ?? new Date()).toISOString();
    const files = buildStartupFiles(answer, { issued, newId: d.newId });
    mkdirSync(d.sbsDir, { recursive: true });
    for (const file of files) writeFileAtomic(join(d.sbsDir, file.name), file.text);
    d.log.info('start-up state written', { files: files.map((f) => f.name), issued });
    return files;
  }

  private async registerOnce(abort?: AbortSignal): Promise<void> {
    const d = this.deps;
    if (d.record.isRegistered(d.serverId, d.managementUrl)) return;
    const registration = d.registration();
    await d.client.register(registration, abort);
    d.record.remember({ serverId: d.serverId, url: d.managementUrl, at: (d.now?.() ?? new Date()).toISOString() });
    d.log.info('registered with the management server', { url: d.managementUrl, ...registration });
  }
}
