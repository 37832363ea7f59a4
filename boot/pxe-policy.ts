// Which offer a PXE request gets: a pure function of request and state, returning the offer or the
// reason there is none. The chain (README.md): firmware gets config.bootFiles[arch] (an iPXE
// build); iPXE gets the machine's generated script; nbp images go straight to the firmware.
import type { Action, Arch, Client, Image, Predefined, PxeConfig } from '../sbs/types.ts';
import type { FeedJob, FeedState } from './feed-protocol.ts';
import { isComplete } from './feed-protocol.ts';
import { archFromCode } from './pxe-arch.ts';
import { imagePath, scriptPath } from './netboot-paths.ts';

export interface PolicyRequest {
  readonly mac: string;
  readonly archCode: number | null;
  readonly isIpxe: boolean;
  /** 'dhcp' (67) or 'proxy' (4011): a response delay applies only to offers on 67. */
  readonly port: 'dhcp' | 'proxy';
  /** UEFI HTTP Boot firmware (vendor class HTTPClient): its boot program is offered as a URL. */
  readonly httpClient?: boolean;
}

export interface PolicyOptions {
  /** MACs whose `once` boot was consumed here and not yet reflected in the feed state. */
  readonly consumed?: ReadonlySet<string>;
  /**
   * Boot HTTP's port when it is on ([http] enabled): iPXE is offered its script as an HTTP URL (so
   * the script's relative references, kernels, initrds and WIMs, come over HTTP too), and UEFI
   * HTTP Boot clients are answered. Undefined: TFTP only, HTTPClient not answered.
   */
  readonly httpPort?: number;
  /**
   * The enrolment secret of a machine with no client entry (boot/enrol-secret.ts), for the
   * scripts that boot config.initialDeployment's preboot; only where scripts are made.
   */
  readonly enrolSecret?: (mac: string) => string;
}

export type Identity = 'client' | 'predefined' | 'unknown';

export interface Offer {
  /** Boot file name for the offer (file field and option 67), relative to the TFTP root. */
  readonly file: string;
  /** firmware: a boot program for the NIC's PXE ROM; ipxe: the next stage for a running iPXE. */
  readonly stage: 'firmware' | 'ipxe';
  readonly arch: Arch;
  readonly identity: Identity;
  readonly action: Action;
  /** Wait this long before sending (config.responseDelayMs, on the DHCP port only). */
  readonly delayMs: number;
  readonly reason: string;
  /**
   * Boot HTTP: `file` is offered as `http://<our address>:<port>/<file>` (made by the answer path,
   * which knows our address toward the client): to UEFI HTTP Boot firmware (with option 60
   * `HTTPClient`) and to a running iPXE (its script).
   */
  readonly http?: { readonly port: number };
}

export type Decision = { readonly offer: Offer } | { readonly none: string };

/** A machine's effective action: its client entry's, else config.unknown when it may be answered. */
export type MachineAction =
  | { readonly action: Action; readonly identity: Identity; readonly client: Client | null; readonly predefined: Predefined | null; readonly note: string; readonly job?: FeedJob; readonly enrol?: Enrol }
  | { readonly none: string };

/** Initial deployment: the machine boots the preboot to choose a job (secret: null where not made). */
export interface Enrol {
  readonly secret: string | null;
}

export function machineAction(mac: string, state: FeedState, options: PolicyOptions = {}): MachineAction {
  if (!isComplete(state)) return { none: 'state incomplete: waiting for config, clients and images from the Interface' };
  const config = state.config!;
  if (config.respond === 'none') return { none: 'config.respond is "none": no machine gets an offer' };
  const client = byMac(state.clients!).get(mac) ?? null;
  const predefined = state.predefined === null || state.predefined.length === 0 ? null : (byMac(state.predefined).get(mac) ?? null);
  const job = activeJob(state, mac);
  if (job !== null) return jobAction(job, client, predefined, options);
  if (client === null && predefined === null && config.respond === 'known') {
    return { none: 'unknown computer and config.respond is "known"' };
  }
  const identity: Identity = client !== null ? 'client' : predefined !== null ? 'predefined' : 'unknown';
  const initial = config.initialDeployment;
  if (client === null && initial !== undefined) {
    // sbs-v1 "Initial deployment": instead of config.unknown. Not consumed: a reboot during the
    // countdown asks again; once a choice is made, the machine's job and client entry decide.
    const dflt = initial.default === undefined ? 'no default: it waits for a key' : `default "${initial.items[initial.default]!.label}" after ${initial.timeoutSec} s`;
    const note = `${identity} computer with no client entry gets config.initialDeployment: boots preboot ${initial.preboot}, whose agent shows ${initial.items.length} item(s) (${dflt}) and registers the machine`;
    return { action: { type: 'boot', image: initial.preboot, once: false }, identity, client, predefined, note, enrol: { secret: options.enrolSecret?.(mac) ?? null } };
  }
  let action = client?.action ?? config.unknown;
  let note = client !== null ? clientNote(client) : `${identity} computer gets config.unknown (${describeAction(action)})`;
  if (action.type === 'boot' && action.once && options.consumed?.has(mac) === true) {
    action = LOCAL;
    note += '; its once boot was consumed, so now local';
  }
  return { action, identity, client, predefined, note };
}

const LOCAL: Action = Object.freeze({ type: 'local' });
const WAIT: Action = Object.freeze({ type: 'wait' });

/**
 * The machine's active imaging job (sbs-v1 "Imaging jobs"): a running one first (a newer job
 * waits behind it until its cancel takes effect), else the pending one.
 */
export function activeJob(state: FeedState, mac: string): FeedJob | null {
  const jobs = state.jobs;
  if (jobs === undefined || jobs.length === 0) return null;
  let found: FeedJob | null = null;
  for (const j of jobs) {
    if (j.mac !== mac) continue;
    if (j.state === 'running') return j;
    found = j;
  }
  return found;
}

/**
 * While a job is pending or running the machine boots its preboot, whatever its client action
 * (and with no client entry). That boot is consumed like `once`: once the machine fetched the
 * preboot's boot program for this job it waits, checking back, until the job ends; it never
 * loops back into imaging on its own.
 */
function jobAction(job: FeedJob, client: Client | null, predefined: Predefined | null, options: PolicyOptions): MachineAction {
  const identity: Identity = client !== null ? 'client' : predefined !== null ? 'predefined' : 'unknown';
  const head = `job ${job.jobId} (${job.task})`;
  if (job.booted || options.consumed?.has(job.mac) === true) {
    return { action: WAIT, identity, client, predefined, job, note: `${head}: preboot ${job.preboot} already booted for it, so the machine waits until the job ends` };
  }
  return { action: { type: 'boot', image: job.preboot, once: true }, identity, client, predefined, job, note: `${head}: boots preboot ${job.preboot}` };
}

// A client's note, made once per client value (feed state values are immutable): it is read
// for every packet from that machine, and a name costs a JSON.stringify.
const NOTES = new WeakMap<Client, string>();

function clientNote(client: Client): string {
  let note = NOTES.get(client);
  if (note === undefined) {
    note = `client ${describe(client.name)}action ${describeAction(client.action)}`;
    NOTES.set(client, note);
  }
  return note;
}

export function decide(request: PolicyRequest, state: FeedState, options: PolicyOptions = {}): Decision {
  const machine = machineAction(request.mac, state, options);
  if ('none' in machine) return machine;
  const config = state.config!;
  if (request.archCode === null) return { none: 'client names no architecture (no option 93, no Arch: in option 60)' };
  const arch = archFromCode(request.archCode);
  if (arch === null) return { none: `unknown client architecture ${request.archCode} (option 93)` };
  // One context object, and helpers at module level: this runs for every PXE packet, and
  // closures made per call cost more than the decision itself.
  if (request.httpClient === true && options.httpPort === undefined) return { none: `${machine.note}; UEFI HTTP Boot client, but Boot HTTP is off ([http] enabled = false)` };
  const c: Context = { request, config, arch, machine, httpPort: request.httpClient === true ? options.httpPort : undefined, scriptHttpPort: options.httpPort };
  const action = machine.action;
  switch (action.type) {
    case 'local':
      return { none: `${machine.note}: no offer, the machine boots from its next device` };
    case 'menu':
      if (config.menu === undefined) return { none: `${machine.note}, but config has no menu` };
      return request.isIpxe ? script(c, ' (menu)') : firmware(c, '');
    case 'wait':
      return request.isIpxe ? script(c, ' (wait and check back)') : firmware(c, '');
    case 'boot': {
      const image = findImage(state, action.image);
      if (image === null) return { none: `${machine.note}, but image ${JSON.stringify(action.image)} does not exist` };
      if (!image.arch.includes(arch)) return { none: `${machine.note}, but image ${image.id} is not for ${arch} (it is for ${image.arch.join(', ')})` };
      // The job's secret reaches the agent only on a kernel command line (sbs-v1: preboot is linux).
      if (machine.job !== undefined && image.type !== 'linux') return { none: `${machine.note}, but image ${image.id} is of type ${image.type}, not linux: its agent could not be given the job's secret` };
      if (machine.enrol !== undefined && image.type !== 'linux') return { none: `${machine.note}, but image ${image.id} is of type ${image.type}, not linux: its agent could not be given the enrolment secret` };
      if (image.type === 'nbp' && !request.isIpxe) {
        return offer(c, imagePath(request.mac, image.id, image.bootFile!), 'firmware', `firmware gets the image's network boot program ${image.bootFile}`);
      }
      return request.isIpxe ? script(c, ` (boot ${image.id})`) : firmware(c, '');
    }
  }
}

interface Context {
  readonly request: PolicyRequest;
  readonly config: PxeConfig;
  readonly arch: Arch;
  readonly machine: Exclude<MachineAction, { none: string }>;
  /** Set for a UEFI HTTP Boot client: the offer is a URL on this port. */
  readonly httpPort: number | undefined;
  /** Boot HTTP's port for a running iPXE's script, when Boot HTTP is on. */
  readonly scriptHttpPort: number | undefined;
}

function offer(c: Context, file: string, stage: Offer['stage'], why: string): Decision {
  const { machine } = c;
  const delayMs = c.request.port === 'dhcp' ? c.config.responseDelayMs : 0;
  // Two literals rather than a spread of an optional part: this runs for every offer, and a
  // spread into a literal is a runtime call.
  if (c.httpPort === undefined) {
    // `+`, not a template: the parts are strings, and a template calls ToString on each.
    return { offer: { file, stage, arch: c.arch, identity: machine.identity, action: machine.action, delayMs, reason: machine.note + '; ' + c.arch + ': ' + why } };
  }
  return {
    offer: {
      file, stage, arch: c.arch, identity: machine.identity, action: machine.action,
      delayMs, reason: `${machine.note}; ${c.arch}: ${why} (UEFI HTTP Boot: a URL on Boot HTTP, no TFTP)`, http: { port: c.httpPort },
    },
  };
}

/**
 * Whether a boot file's name (after its last `/`) begins with `shim`, in any case. Runs for every
 * offer: no regular expression, and no lastIndexOf (a call into the runtime).
 */
function isShim(file: string): boolean {
  let i = file.length;
  while (i > 0 && file.charCodeAt(i - 1) !== 0x2f) i--;
  return file.length >= i + 4 && (file.charCodeAt(i) | 0x20) === 0x73 && (file.charCodeAt(i + 1) | 0x20) === 0x68
    && (file.charCodeAt(i + 2) | 0x20) === 0x69 && (file.charCodeAt(i + 3) | 0x20) === 0x6d;
}

function firmware(c: Context, why: string): Decision {
  const file = c.config.bootFiles[c.arch];
  if (file === undefined) return { none: `${c.machine.note}; no config.bootFiles entry for ${c.arch}` };
  // The Secure Boot chain is chosen per architecture by naming shim as its boot file.
  if (isShim(file)) {
    return offer(c, file, 'firmware', `firmware gets shim ${file}${why}: the Secure Boot chain (shim, grubx64.efi beside it, grub/grub.cfg, then netboot/<mac>/grub.cfg for this machine's action)`);
  }
  return offer(c, file, 'firmware', `firmware gets the iPXE build ${file}${why}`);
}

function script(c: Context, why: string): Decision {
  const file = scriptPath(c.request.mac);
  const port = c.scriptHttpPort;
  if (port === undefined) return offer(c, file, 'ipxe', `iPXE gets its script${why}`);
  // Boot HTTP: the script's URL; what it fetches is named relative to it, so over HTTP too.
  const o = offer({ ...c, httpPort: undefined }, file, 'ipxe', `iPXE gets its script over Boot HTTP${why}: its kernel, initrds and WIMs follow over HTTP`);
  return 'offer' in o ? { offer: { ...o.offer, http: { port } } } : o;
}

// Lookups by MAC, built once per table value (feed state values are immutable): the answer is the
// same as a linear find, without its cost for thousands of clients on every packet.
const INDEX = new WeakMap<readonly { mac: string }[], Map<string, unknown>>();

function byMac<T extends { mac: string }>(list: readonly T[]): ReadonlyMap<string, T> {
  let index = INDEX.get(list);
  if (index === undefined) {
    index = new Map();
    for (const item of list) if (!index.has(item.mac)) index.set(item.mac, item);
    INDEX.set(list, index);
  }
  return index as Map<string, T>;
}

export function findImage(state: FeedState, id: string): Image | null {
  return (state.images ?? []).find((i) => i.id === id) ?? null;
}

function describe(name: string | undefined): string {
  return name === undefined ? '' : `${JSON.stringify(name)} `;
}

export function describeAction(action: Action): string {
  switch (action.type) {
    case 'boot':
      return `boot ${action.image}${action.once ? ' once' : ''}`;
    default:
      return action.type;
  }
}
