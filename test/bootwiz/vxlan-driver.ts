// A driver package for the QEMU preboot tests: vxlan.ko as Debian ships it for the kernel the
// site's build of `preboot` uses (signed: it loads under Secure Boot's lockdown too), published.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootwizDir, buildDir, cacheDir } from '../../bootwiz/build.ts';
import { kernelTree } from '../../bootwiz/drivers.ts';
import { LOCK_FILE } from '../../bootwiz/recipe.ts';
import type { E2eSite } from '../e2e/harness/e2e-site.ts';

export async function publishVxlanDriver(e2e: E2eSite, preboot: string, driverId: string): Promise<void> {
  const data = e2e.site.data;
  const kver = JSON.parse(readFileSync(join(buildDir(data, preboot), 'build.json'), 'utf8')).kernelVersion as string;
  const kernel = JSON.parse(readFileSync(join(buildDir(data, preboot), LOCK_FILE), 'utf8')).packages.kernel;
  const tree = await kernelTree(bootwizDir(data), cacheDir(data), kernel);
  const dir = join(e2e.dir, 'driver-vxlan');
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(tree, 'lib', 'modules', kver, 'kernel', 'drivers', 'net', 'vxlan', 'vxlan.ko'), join(dir, 'vxlan.ko'));
  writeFileSync(join(dir, 'driver.json'), JSON.stringify({ os: 'linux', arch: 'x64', description: 'VXLAN tunnels (test)' }));
  const r = await e2e.site.cli(['package', 'publish', dir, '--kind', 'driver', '--id', driverId], 120_000);
  assert.equal(r.code, 0, `publish failed:\n${r.stdout}\n${r.stderr}`);
}
