// Which operating system a captured disk holds, read without mounting: /etc/os-release from an
// ext file system through debugfs (e2fsprogs; "device?offset=N" opens a partition inside a whole
// disk or image file), and for NTFS whether Windows\System32 exists (ntfs-3g's ntfsls, which
// needs the partition's own device), then its name, version and edition from the SOFTWARE
// registry hive (ntfscat, at most MAX_SOFTWARE_HIVE_BYTES; read by windows-version.ts). A hive
// that is missing, too large or malformed leaves name "Windows" and version and edition null.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import type { DiskInventory } from './disk-image.ts';
import { windowsVersion } from './windows-version.ts';

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
        if (/^System32$/im.test(stdout)) return { family: 'windows', ...(await windowsOf(p.device)) };
      } catch {
        // not Windows, or no ntfsls
      }
    }
  }
  return null;
}

export const SOFTWARE_HIVE = '/Windows/System32/config/SOFTWARE';
/** SOFTWARE hives are tens of MiB, rarely past 150; past this one is not read. */
export const MAX_SOFTWARE_HIVE_BYTES = 256 * 1024 * 1024;

/** A command's standard output, or null when it fails, times out or writes more than `capBytes`. */
export function outputCapped(cmd: string, args: readonly string[], capBytes: number, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], timeout: timeoutMs });
    } catch {
      resolve(null);
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    let over = false;
    child.stdout.on('data', (b: Buffer) => {
      size += b.length;
      if (size > capBytes) {
        over = true;
        child.kill('SIGKILL');
      } else parts.push(b);
    });
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve(code === 0 && !over ? Buffer.concat(parts) : null));
  });
}

async function windowsOf(device: string): Promise<{ name: string; version: string | null; edition: string | null }> {
  const unknown = { name: 'Windows', version: null, edition: null };
  const hive = await outputCapped('ntfscat', ['-f', device, SOFTWARE_HIVE], MAX_SOFTWARE_HIVE_BYTES, 120_000);
  if (hive === null) return unknown;
  const w = windowsVersion(hive);
  return 'reason' in w ? unknown : { name: w.name ?? 'Windows', version: w.version, edition: w.edition };
}
