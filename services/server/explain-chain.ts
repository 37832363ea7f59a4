// The boot chain for `netboot explain` (boot/boot-chain.ts), with its probe: a TFTP path is
// resolved as the TFTP service resolves it (boot/tftp-resolve.ts: the TFTP root, or the Ready
// version of the image's package on this server), then the file is looked for on disk.
// Case-insensitive matches, which the TFTP service also accepts, are not tried here: explain may
// call a file missing that a Windows-style request would still find.
import { existsSync, statSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { bootChain, type BootChain, type ChainProbe } from '../../boot/boot-chain.ts';
import type { FeedState } from '../../boot/feed-protocol.ts';
import type { Decision, PolicyOptions } from '../../boot/pxe-policy.ts';
import { tftpTarget } from '../../boot/tftp-resolve.ts';
import { packageDir, packagesRoot, readyPackagePath } from '../../packages/layout.ts';

export interface ChainPaths {
  readonly tftpRoot: string;
  /** The data folder: where the package versions are. */
  readonly data: string;
}

/** The chain a machine walks after `decision`, looked up in `paths`; null for no offer. */
export function explainChain(mac: string, decision: Decision, state: FeedState, options: PolicyOptions, paths: ChainPaths): BootChain | null {
  return bootChain(mac, decision, state, chainProbe(state, options, paths), options);
}

export function chainProbe(state: FeedState, options: PolicyOptions, paths: ChainPaths): ChainProbe {
  return (path) => {
    const plain = path.replace(/^\/+/, '');
    if (!plain.startsWith('netboot/')) {
      const root = resolve(paths.tftpRoot);
      const full = resolve(root, plain);
      if (!full.startsWith(root + sep)) return { exists: false, reason: `path leaves the TFTP root: ${path}` };
      return { exists: isFile(full), where: full };
    }
    let pkg: { package: string; ready: boolean; held: boolean } | undefined;
    const t = tftpTarget(path, state, options, paths.tftpRoot, (id) => {
      const dir = readyPackagePath(paths.data, id);
      pkg = { package: id, ready: dir !== null, held: dir !== null || existsSync(packageDir(packagesRoot(paths.data), id)) };
      return dir;
    });
    const fields = pkg ?? {};
    if (t.type === 'content') return { exists: true };
    if (t.type === 'file') return { exists: isFile(t.path), where: t.path, ...fields };
    return { exists: false, reason: t.reason, ...fields };
  };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
