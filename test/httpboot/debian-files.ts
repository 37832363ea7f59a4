// Debian's packages for the Secure Boot chain and BootWiz, kept between runs in one host folder:
// shim-signed and grub-efi-amd64-signed (`apt-get download`, unpacked there), and the .debs a
// BootWiz build fetches, copied into a fresh data folder's cache under the names BootWiz looks for
// (`<package>_<sha256 prefix>.deb`, reused only when the SHA-256 matches its lock) and copied back
// after a build that had to download. A first run fetches about 75 MB from Debian's mirror.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../../bootwiz/build.ts';

export const CACHE = '/var/cache/netboot-test/httpboot';

function download(pkg: string): string {
  mkdirSync(CACHE, { recursive: true });
  const find = (): string | undefined => readdirSync(CACHE).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (find() === undefined) execFileSync('apt-get', ['download', '-q', pkg], { cwd: CACHE, stdio: 'ignore' });
  return join(CACHE, find()!);
}

/** Debian's signed shim and network GRUB, unpacked once. */
export function signedChain(): { shim: string; grub: string } {
  const x = join(CACHE, 'x');
  mkdirSync(x, { recursive: true });
  const shim = join(x, 'usr/lib/shim/shimx64.efi.signed');
  const grub = join(x, 'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed');
  if (!existsSync(shim)) execFileSync('dpkg-deb', ['-x', download('shim-signed'), x]);
  if (!existsSync(grub)) execFileSync('dpkg-deb', ['-x', download('grub-efi-amd64-signed'), x]);
  return { shim, grub };
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const packageOf = (deb: string): string => execFileSync('dpkg-deb', ['-f', deb, 'Package']).toString().trim();

/** Puts every .deb kept here into the data folder's BootWiz cache, under BootWiz's names. */
export function seedBootwizCache(dataDir: string): void {
  const to = cacheDir(dataDir);
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(CACHE).filter((n) => n.endsWith('.deb'))) {
    const from = join(CACHE, f);
    copyFileSync(from, join(to, `${packageOf(from)}_${sha256(from).slice(0, 16)}.deb`));
  }
}

/** Keeps the .debs a build downloaded into the data folder's cache for the next run. */
export function keepBootwizCache(dataDir: string): void {
  const have = new Set(readdirSync(CACHE).filter((n) => n.endsWith('.deb')).map((n) => sha256(join(CACHE, n)).slice(0, 16)));
  for (const f of readdirSync(cacheDir(dataDir)).filter((n) => n.endsWith('.deb'))) {
    const m = /^(.+)_([0-9a-f]{16})\.deb$/.exec(f);
    if (m !== null && !have.has(m[2]!)) copyFileSync(join(cacheDir(dataDir), f), join(CACHE, `${m[1]}_bootwiz-${m[2]}.deb`));
  }
}
