// The quick start's boot programs: Debian's iPXE builds (package `ipxe`) put into the TFTP root
// where the configuration's boot files name them and nothing is there yet (an administrator's
// own files are never replaced). Fetched like every BootWiz input: apt, the cache, SHA-256
// checks, and a lock (`<data>/bootwiz/ipxe/lock.json`) so a later start takes the same version.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetchDeb, resolveEntry } from './apt.ts';
import { bootwizDir, cacheDir } from './build.ts';
import { extractDeb } from './extract.ts';
import { encodeLock, readLock } from './lock.ts';

/** The files Debian's `ipxe` package holds, by the name the TFTP root gets. */
export const IPXE_FILES: Readonly<Record<string, string>> = {
  'undionly.kpxe': 'usr/lib/ipxe/undionly.kpxe',
  'ipxe.efi': 'usr/lib/ipxe/ipxe.efi',
  'snponly.efi': 'usr/lib/ipxe/snponly.efi',
};

/** Copies the iPXE builds missing from `tftpRoot`; returns the names it wrote. */
export async function installIpxeFiles(dataDir: string, tftpRoot: string): Promise<string[]> {
  const missing = Object.keys(IPXE_FILES).filter((name) => !existsSync(join(tftpRoot, name)));
  if (missing.length === 0) return [];
  const lockPath = join(bootwizDir(dataDir), 'ipxe', 'lock.json');
  const entry = readLock(lockPath)?.packages.ipxe ?? (await resolveEntry('ipxe'));
  const { path } = await fetchDeb(cacheDir(dataDir), entry);
  mkdirSync(join(bootwizDir(dataDir), 'ipxe'), { recursive: true });
  writeFileSync(lockPath, encodeLock({ lock: 1, packages: { ipxe: entry } }));
  const work = mkdtempSync(join(bootwizDir(dataDir), 'ipxe', 'work-'));
  try {
    await extractDeb(path, work, missing.map((name) => `./${IPXE_FILES[name]}`));
    mkdirSync(tftpRoot, { recursive: true });
    for (const name of missing) {
      const tmp = join(tftpRoot, `.${name}.bootwiz`);
      copyFileSync(join(work, IPXE_FILES[name]!), tmp);
      renameSync(tmp, join(tftpRoot, name));
    }
    return missing;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
