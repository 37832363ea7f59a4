// Where packages live under the data folder:
//   packages/.state/packages.sqlite        refs, manifests, chunk index, statuses
//   packages/<id>/versions/<digest>/...    each materialised version (the current one and, for a
//                                          grace period, older ones)
//   packages/<id>/staging/<name>/...       a version being assembled (publish or sync)
//   packages/<id>/segments/<name>          runs of chunks of large image files, shared by versions
//   packages/<id>/current -> versions/<digest>   present only while the package is Ready here
// Package ids never start with '.', so they never collide with .state.
import { readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isDigest, isPackageId } from './digest.ts';

export const packagesRoot = (dataDir: string): string => join(dataDir, 'packages');
export const stateDir = (root: string): string => join(root, '.state');
export const packageDir = (root: string, id: string): string => join(root, id);
export const versionsDir = (root: string, id: string): string => join(root, id, 'versions');
export const versionDir = (root: string, id: string, digest: string): string => join(root, id, 'versions', digest);
export const stagingRoot = (root: string, id: string): string => join(root, id, 'staging');
export const stagingDir = (root: string, id: string, name: string): string => join(root, id, 'staging', name);
export const segmentsDir = (root: string, id: string): string => join(root, id, 'segments');
export const currentLink = (root: string, id: string): string => join(root, id, 'current');

/**
 * The folder of a package's Ready version on this server, or null when it has none (absent,
 * syncing for the first time, invalid while being repaired, or deleted). Resolved once, so a
 * reader that opens files under it keeps reading one version even if `current` switches.
 */
export function readyPackagePath(dataDir: string, packageId: string): string | null {
  if (!isPackageId(packageId)) return null;
  const root = packagesRoot(dataDir);
  let target: string;
  try {
    target = readlinkSync(currentLink(root, packageId));
  } catch {
    return null;
  }
  const m = /^versions\/([0-9a-f]{64})$/.exec(target);
  if (m === null || !isDigest(m[1])) return null;
  const dir = versionDir(root, packageId, m[1]);
  try {
    return statSync(dir).isDirectory() ? dir : null;
  } catch {
    return null;
  }
}
