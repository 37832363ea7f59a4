// What `netboot sbs send` checks before it writes: every image, package and peer an instruction
// names must be one the site has. Images and packages come from the running Interface (its
// control socket, as `netboot state` and `netboot package status` read them), plus images defined
// by instructions still waiting in the SBS folder (sent a moment ago, not applied yet); peers come
// from the config's [[peers]] (matched as the Interface matches replicateTo: id, host:port, or
// host). A problem is a warning; `--strict` refuses to write. When the Interface is not running,
// images and packages cannot be checked: that is said, as a warning, and is never a refusal.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlCall, controlSocketPath } from '../platform/local/control.ts';
import type { Config } from '../platform/runtime/config.ts';
import { NetbootError, errorMessage } from '../platform/runtime/errors.ts';
import { parseSbs } from '../sbs/parse.ts';
import type { Action, Image, PxeConfig, SbsDocument } from '../sbs/types.ts';

/** What the site has, as far as it could be learnt; null: could not be asked. */
export interface SiteHoldings {
  readonly images: ReadonlySet<string> | null;
  /** Packages with a live ref (not deleted). */
  readonly packages: ReadonlySet<string> | null;
  /** The config as applied, for its menu; undefined when unknown. */
  readonly config: PxeConfig | null | undefined;
  /** Why images or packages could not be checked. */
  readonly unchecked: readonly string[];
}

export interface InstructionCheck {
  /** Names the site does not have: a warning, or with --strict a refusal. */
  readonly problems: readonly string[];
  /** What could not be checked, and why: always only a warning. */
  readonly unchecked: readonly string[];
}

/** Checks `doc` against the site the config describes (asks its Interface). */
export async function checkInstruction(doc: SbsDocument, config: Config): Promise<InstructionCheck> {
  return namesMissing(doc, await siteHoldings(config), config);
}

export async function siteHoldings(config: Config): Promise<SiteHoldings> {
  const socket = controlSocketPath(config.paths.data, 'interface');
  const unchecked: string[] = [];
  let images: Set<string> | null = null;
  let packages: Set<string> | null = null;
  let pxe: PxeConfig | null | undefined;
  try {
    const d = await controlCall<{ state: { config: PxeConfig | null; images: readonly Image[] | null } }>(socket, 'GET', '/state');
    images = new Set((d.state.images ?? []).map((i) => i.id));
    pxe = d.state.config;
    for (const id of pendingImages(config.paths.sbs)) images.add(id);
  } catch (err) {
    unchecked.push(notRunning(err, socket, 'images'));
    return { images: null, packages: null, config: undefined, unchecked: [...unchecked, 'packages not checked either'] };
  }
  try {
    const d = await controlCall<{ packages: Array<{ ref: { package: string; digest: string | null } }> }>(socket, 'GET', '/packages');
    packages = new Set(d.packages.filter((p) => p.ref.digest !== null).map((p) => p.ref.package));
  } catch (err) {
    unchecked.push(`packages not checked: ${errorMessage(err)}`);
  }
  return { images, packages, config: pxe, unchecked };
}

function notRunning(err: unknown, socket: string, what: string): string {
  if (err instanceof NetbootError && err.code === 'CONTROL_UNREACHABLE') {
    return `${what} not checked: the Interface is not running (no answer on ${socket}); start it with \`netboot run\``;
  }
  return `${what} not checked: ${errorMessage(err)}`;
}

/** Image ids defined by instructions waiting in the SBS folder (unreadable files are skipped). */
function pendingImages(folder: string): string[] {
  const ids: string[] = [];
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return ids;
  }
  for (const name of names) {
    try {
      const doc = parseSbs(readFileSync(join(folder, name)));
      if (doc.kind === 'image') ids.push(doc.image.id);
      if (doc.kind === 'images') ids.push(...doc.images.map((i) => i.id));
    } catch {
      // not an instruction (yet): the Interface will say
    }
  }
  return ids;
}

/** Pure: the images, packages and peers `doc` names that `site` and the config's peers lack. */
export function namesMissing(doc: SbsDocument, site: SiteHoldings, config: Pick<Config, 'peers' | 'interface'>): InstructionCheck {
  const problems: string[] = [];
  const images = new Set<string>(site.images ?? []);
  // A snapshot of images or an image defines what later names may use.
  if (doc.kind === 'images') doc.images.forEach((i) => images.add(i.id));
  const image = (id: string, where: string): void => {
    if (site.images !== null && !images.has(id)) problems.push(`${where} names image ${id}, which the site does not have${known(images)}`);
  };
  const action = (a: Action, where: string, menu: boolean): void => {
    if (a.type === 'boot') image(a.image, where);
    if (a.type === 'menu' && site.config !== undefined && !menu) problems.push(`${where} is menu, but the site's config has no menu`);
  };
  const pkg = (i: Image): void => {
    if (i.package !== undefined && site.packages !== null && !site.packages.has(i.package)) {
      problems.push(`image ${i.id} names package ${i.package}, which the site does not have${known(site.packages)} (publish it with \`netboot package publish\`)`);
    }
  };
  const hasMenu = site.config?.menu !== undefined;
  switch (doc.kind) {
    case 'client':
      action(doc.client.action, `client ${doc.client.mac}'s action`, hasMenu);
      break;
    case 'clients':
      for (const c of doc.clients) action(c.action, `client ${c.mac}'s action`, hasMenu);
      break;
    case 'config':
      action(doc.config.unknown, 'config.unknown', doc.config.menu !== undefined);
      doc.config.menu?.items.forEach((item, n) => action(item.action, `menu item ${n + 1} "${item.label}"`, true));
      if (doc.config.initialDeployment !== undefined) {
        const initial = doc.config.initialDeployment;
        image(initial.preboot, 'initialDeployment.preboot');
        initial.items.forEach((item, n) => {
          const where = `initialDeployment item ${n + 1} "${item.label}"`;
          image(item.job.preboot, `${where}'s preboot`);
          action(item.job.then, `${where}'s then`, doc.config.menu !== undefined);
          if (item.job.task === 'deploy' && item.job.package !== undefined && site.packages !== null && !site.packages.has(item.job.package)) {
            problems.push(`${where} deploys package ${item.job.package}, which the site does not have${known(site.packages)}`);
          }
        });
      }
      break;
    case 'image':
      pkg(doc.image);
      break;
    case 'images':
      doc.images.forEach(pkg);
      break;
    case 'image-remove':
      image(doc.imageId, 'image-remove');
      break;
    case 'job':
      image(doc.job.preboot, `job ${doc.job.jobId}'s preboot`);
      action(doc.job.then, `job ${doc.job.jobId}'s then`, hasMenu);
      if (doc.job.task === 'deploy' && doc.job.package !== undefined && site.packages !== null && !site.packages.has(doc.job.package)) {
        problems.push(`job ${doc.job.jobId} deploys package ${doc.job.package}, which the site does not have${known(site.packages)}`);
      }
      break;
    default:
      break;
  }
  if ((doc.kind === 'client' || doc.kind === 'client-remove') && doc.replicateTo !== undefined) {
    for (const target of doc.replicateTo) {
      if (!isPeer(target, config)) {
        const peers = config.peers.map((p) => `${p.id} (${p.address})`);
        problems.push(`replicateTo names ${target}, which is not a configured peer (${peers.length === 0 ? 'no [[peers]] in the config' : `peers: ${peers.join(', ')}`})`);
      }
    }
  }
  return { problems, unchecked: site.unchecked };
}

function known(names: ReadonlySet<string>): string {
  if (names.size === 0) return ' (it has none)';
  const list = [...names].sort();
  return ` (it has ${list.slice(0, 8).join(', ')}${list.length > 8 ? `, … ${list.length - 8} more` : ''})`;
}

/** As the Interface resolves replicateTo (services/interface/peer-hub.ts): id, address, or host. */
function isPeer(target: string, config: Pick<Config, 'peers' | 'interface'>): boolean {
  const lower = target.toLowerCase();
  const withPort = (a: string): string => (/:\d+$/.test(a) ? a : `${a}:${config.interface.port}`);
  return config.peers.some((p) => {
    const addr = p.address.toLowerCase();
    return p.id.toLowerCase() === lower || addr === lower || withPort(addr) === withPort(lower);
  });
}
