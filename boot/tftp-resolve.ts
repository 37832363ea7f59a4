// What a TFTP path under netboot/ stands for (asked by the MTFTP service over the control socket),
// and which fetch consumes a `once` boot. Pure: decides from state and paths, touches no files.
// Containment is lexical: the result is always inside the TFTP root (or a Ready package
// version); symbolic links the administrator placed inside the root are trusted.
import { resolve, sep } from 'node:path';
import type { Image } from '../sbs/types.ts';
import type { FeedState } from './feed-protocol.ts';
import { machineGrubConfig } from './http-grub-config.ts';
import { machineScript, menuItemScript } from './ipxe-script.ts';
import { parseNetbootPath } from './netboot-paths.ts';
import { findImage, machineAction, type PolicyOptions } from './pxe-policy.ts';

/** The wire form (tftp.resolve's reply): generated content as base64. */
export type TftpResolution =
  | { readonly type: 'file'; readonly path: string }
  | { readonly type: 'content'; readonly dataBase64: string }
  | { readonly type: 'none'; readonly reason: string };

/** The same answer in process (MTFTP's copy of the view): generated content as text. */
export type TftpTarget = Exclude<TftpResolution, { type: 'content' }> | { readonly type: 'content'; readonly text: string };

/**
 * `packageRoot` gives the folder of a package's Ready version on this server, or null when it has
 * none: files of an image with `package` are served only from a Ready, verified version.
 */
export function resolveTftpPath(requested: string, state: FeedState, options: PolicyOptions, tftpRoot: string, packageRoot: (id: string) => string | null = () => null): TftpResolution {
  const t = tftpTarget(requested, state, options, tftpRoot, packageRoot);
  return t.type === 'content' ? { type: 'content', dataBase64: Buffer.from(t.text, 'utf8').toString('base64') } : t;
}

/** resolveTftpPath without the wire encoding. */
export function tftpTarget(requested: string, state: FeedState, options: PolicyOptions, tftpRoot: string, packageRoot: (id: string) => string | null = () => null): TftpTarget {
  const parsed = parseNetbootPath(requested);
  if (typeof parsed === 'string') return { type: 'none', reason: parsed };
  const machine = machineAction(parsed.mac, state, options);
  const content = (text: string): TftpTarget => ({ type: 'content', text });
  switch (parsed.kind) {
    case 'script':
      return content(machineScript(parsed.mac, machine, state));
    case 'menu-item':
      return content(menuItemScript(parsed.mac, parsed.index, machine, state));
    case 'wimboot':
      return inRoot(tftpRoot, 'wimboot');
    case 'grub':
      return content(machineGrubConfig(parsed.mac, machine, state));
    case 'image': {
      const image = findImage(state, parsed.imageId);
      if (image === null) return { type: 'none', reason: `image ${parsed.imageId} does not exist` };
      if (image.package === undefined) return inRoot(tftpRoot, parsed.relative);
      const root = packageRoot(image.package);
      if (root === null) return { type: 'none', reason: `package ${image.package} of image ${image.id} is not Ready on this server` };
      return inRoot(root, parsed.relative);
    }
  }
}

function inRoot(root: string, relative: string): TftpTarget {
  const base = resolve(root);
  const full = resolve(base, relative);
  if (!full.startsWith(base + sep)) return { type: 'none', reason: `path leaves the TFTP root: ${relative}` };
  return { type: 'file', path: full };
}

/** The file whose completed fetch means the machine is really booting the image. */
export function bootProgramOf(image: Image): string {
  switch (image.type) {
    case 'linux':
      return image.kernel!;
    case 'nbp':
      return image.bootFile!;
    case 'winpe':
      return image.wim!;
  }
}

/**
 * The once-boot a completed fetch consumes, if any: the machine's action is `boot` with `once`,
 * and the path is that image's boot program.
 */
export function consumedBy(requested: string, state: FeedState, options: PolicyOptions): { mac: string; image: string; jobId?: string } | null {
  const parsed = parseNetbootPath(requested);
  if (typeof parsed === 'string' || parsed.kind !== 'image') return null;
  const machine = machineAction(parsed.mac, state, options);
  if ('none' in machine || machine.action.type !== 'boot' || !machine.action.once) return null;
  if (machine.action.image !== parsed.imageId) return null;
  const image = findImage(state, parsed.imageId);
  if (image === null || bootProgramOf(image) !== parsed.relative) return null;
  // An imaging job's preboot: the job's boot is consumed, not the client's.
  if (machine.job !== undefined) return { mac: parsed.mac, image: image.id, jobId: machine.job.jobId };
  return { mac: parsed.mac, image: image.id };
}
