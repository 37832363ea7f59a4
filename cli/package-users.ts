// `netboot package rm` names the images that still use the package (the Interface's state, as
// `netboot state` reads it) and the machines set to boot them, and refuses unless --force: an
// image whose package is gone cannot boot, and a removal replicates to every server at once.
import { controlCall } from '../platform/local/control.ts';
import type { FeedState } from '../boot/feed-protocol.ts';
import type { Image } from '../sbs/types.ts';
import type { CliContext } from './context.ts';

export interface PackageUsers {
  readonly images: readonly Image[];
  /** Clients whose action boots one of those images: "NAME (MAC)" or "MAC". */
  readonly clients: readonly string[];
}

/** Pure: which images name `pkg`, and which clients boot them. */
export function usersOf(pkg: string, state: Pick<FeedState, 'images' | 'clients'>): PackageUsers {
  const images = (state.images ?? []).filter((i) => i.package === pkg);
  const ids = new Set(images.map((i) => i.id));
  const clients = (state.clients ?? [])
    .filter((c) => c.action.type === 'boot' && ids.has(c.action.image))
    .map((c) => (c.name === undefined ? c.mac : `${c.name} (${c.mac})`));
  return { images, clients };
}

/**
 * Before `package rm ID`: null to go ahead (no image uses it, or --force, with a warning), else
 * the exit code after saying which images use it.
 */
export async function guardRemoval(ctx: CliContext, socket: string, pkg: string): Promise<number | null> {
  const d = await controlCall<{ state: FeedState }>(socket, 'GET', '/state');
  const users = usersOf(pkg, d.state);
  if (users.images.length === 0) return null;
  const names = users.images.map((i) => `${i.id} (${JSON.stringify(i.name)})`).join(', ');
  const clients = users.clients.length === 0 ? '' : `; ${users.clients.length} client(s) boot them: ${users.clients.slice(0, 5).join(', ')}${users.clients.length > 5 ? ', …' : ''}`;
  if (ctx.args.flags.has('force')) {
    ctx.err(`netboot package rm: warning: removing ${pkg} although image(s) ${names} use it${clients}; they cannot boot until it is published again`);
    return null;
  }
  ctx.err(`netboot package rm: package ${pkg} is used by image(s) ${names}${clients}`);
  ctx.err('  without it they cannot boot, on every server; change or remove those images first');
  ctx.err(`  (netboot sbs send image-remove --id ${users.images[0]!.id}), or pass --force to remove it anyway; nothing removed`);
  return 1;
}
