// Which operating system a captured disk holds, read without mounting: /etc/os-release from an
// ext file system through debugfs (e2fsprogs; "device?offset=N" opens a partition inside a whole
// disk or image file), and for NTFS whether Windows\System32 exists (ntfs-3g's ntfsls, which
// needs the partition's own device). The Windows edition would need the SOFTWARE registry hive
// parsed: not done, so `edition` is null.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { DiskInventory } from './disk-image.ts';

const run = promisify(execFile);

export function parseOsRelease(text: string): { name: string | null; version: string | null } {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m !== null) fields.set(m[1]!, m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1'));
  }
  return { name: fields.get('NAME') ?? fields.get('ID') ?? null, version: fields.get('VERSION_ID') ?? fields.get('VERSION') ?? null };
}

export interface ProbePartition {
  readonly fs: string | null;
  readonly startBytes: number;
  /** The partition's own device node when there is one (needed for NTFS). */
  readonly device: string | null;
}

export async function probeOs(diskPath: string, partitions: readonly ProbePartition[]): Promise<DiskInventory['os']> {
  for (const p of partitions) {
    if (p.fs === 'ext2' || p.fs === 'ext3' || p.fs === 'ext4') {
      for (const file of ['/etc/os-release', '/usr/lib/os-release']) {
        try {
          const { stdout } = await run('debugfs', ['-R', `cat ${file}`, `${diskPath}?offset=${p.startBytes}`], { timeout: 20_000 });
          const r = parseOsRelease(stdout);
          if (r.name !== null) return { family: 'linux', name: r.name, version: r.version, edition: null };
        } catch {
          // not there, or no debugfs: try the next
        }
      }
    }
  }
  for (const p of partitions) {
    if (p.fs === 'ntfs' && p.device !== null) {
      try {
        const { stdout } = await run('ntfsls', ['-f', '-p', '/Windows', p.device], { timeout: 20_000 });
        if (/^System32$/im.test(stdout)) return { family: 'windows', name: 'Windows', version: null, edition: null };
      } catch {
        // not Windows, or no ntfsls
      }
    }
  }
  return null;
}
