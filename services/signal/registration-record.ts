// Remembers, durably, that this server registered with a management server, so registration is
// never repeated after it succeeded. Keyed by server id and URL: a site moved to another
// management server (or renamed) registers again.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../platform/runtime/atomic-file.ts';

export interface RegistrationRecord {
  readonly serverId: string;
  readonly url: string;
  /** RFC 3339 time the management server accepted the registration. */
  readonly at: string;
}

export function registrationRecordPath(dataDir: string): string {
  return join(dataDir, 'signal', 'registration.json');
}

export class RegistrationRecordFile {
  constructor(private readonly path: string) {}

  /** The record, or null if there is none; a file that cannot be read counts as none. */
  read(): RegistrationRecord | null {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      return null;
    }
    try {
      const v = JSON.parse(text) as Partial<RegistrationRecord>;
      return typeof v.serverId === 'string' && typeof v.url === 'string' && typeof v.at === 'string' ? { serverId: v.serverId, url: v.url, at: v.at } : null;
    } catch {
      return null;
    }
  }

  isRegistered(serverId: string, url: string): boolean {
    const r = this.read();
    return r !== null && r.serverId === serverId && r.url === url;
  }

  remember(record: RegistrationRecord): void {
    mkdirSync(dirname(this.path), { recursive: true });
    writeFileAtomic(this.path, JSON.stringify(record, null, 2) + '\n');
  }
}
