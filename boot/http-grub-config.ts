// The Secure Boot chain's per-machine GRUB configuration, `netboot/<mac>/grub.cfg`: the same
// actions as the iPXE scripts (boot, menu, wait, local) for machines that boot Debian's signed
// shim and GRUB (`grubnetx64.efi.signed`) instead of iPXE. Pure: text from action and state.
//
// The chain: config.bootFiles[efi-x64] = `shimx64.efi` (shim-signed's shimx64.efi.signed), shim
// loads `grubx64.efi` beside it (grub-efi-amd64-signed's grubnetx64.efi.signed), GRUB reads
// `$prefix/grub.cfg` = `(tftp,SERVER)/grub/grub.cfg` (GRUB_ROOT_CONFIG, in the TFTP root), which
// hands over to this file by GRUB's own `$net_default_mac`. Kernels and initrds come over TFTP
// from GRUB's server (see bootBody: no HTTP in Debian 12's signed GRUB); only the Debian-signed
// kernel must pass Secure Boot (shim_lock), initrds are not checked.
import type { Action, Image, Menu } from '../sbs/types.ts';
import type { FeedState } from './feed-protocol.ts';
import { WAIT_RECHECK_SEC } from './ipxe-script.ts';
import { imagePath } from './netboot-paths.ts';
import { findImage, type MachineAction } from './pxe-policy.ts';

/**
 * `grub/grub.cfg` in the TFTP root: GRUB asks for it first (its prefix is `(tftp,SERVER)/grub`),
 * whatever the machine. GRUB's `$net_default_mac` has `:` separators; netboot paths accept them.
 */
export const GRUB_ROOT_CONFIG = [
  '# netboot: every machine reads its own configuration, generated for its current action',
  'echo "netboot: reading the configuration of ${net_default_mac} from ${net_default_server}"',
  'source /netboot/${net_default_mac}/grub.cfg',
  '',
].join('\n');

/** GRUB's file name: shim loads it from its own folder. */
export const GRUB_FILE = 'grubx64.efi';
/** GRUB's first configuration, in the TFTP root (GRUB_ROOT_CONFIG). */
export const GRUB_ROOT_PATH = 'grub/grub.cfg';

/** A boot file named shim (`shimx64.efi`, `boot/shimx64.efi`...): the Secure Boot chain. */
export function isShim(file: string): boolean {
  return /^shim[^/]*$/i.test(file.slice(file.lastIndexOf('/') + 1));
}

/** Where GRUB looks for grubx64.efi's sibling: the folder of the shim it was offered. */
export function grubPathBeside(shim: string): string {
  return `${shim.slice(0, shim.lastIndexOf('/') + 1)}${GRUB_FILE}`.replace(/^\/+/, '');
}

/** `netboot explain`'s `transfer:` line for a machine offered shim (PXE) or its URL (UEFI HTTP Boot). */
export function secureBootTransfer(httpBoot: boolean): string {
  if (httpBoot) {
    return 'Secure Boot chain by UEFI HTTP Boot: the firmware fetches shim over HTTP, but Debian\'s GRUB 2.06 started this way stops at its prompt (no configuration path): offer this machine PXE for shim and GRUB';
  }
  return `Secure Boot chain, all over TFTP: shim (the firmware), ${GRUB_FILE} (shim), GRUB's configurations, the kernel and initrds (GRUB: Debian 12's signed GRUB has no http module and loads none under Secure Boot)`;
}

/** The configuration at `netboot/<mac>/grub.cfg`. */
export function machineGrubConfig(mac: string, machine: MachineAction, state: FeedState): string {
  if ('none' in machine) return exitConfig(mac, machine.none);
  const job = machine.job;
  let jobArgs = job !== undefined && machine.action.type === 'boot' && machine.action.image === job.preboot ? `netboot.job=${job.jobId} netboot.secret=${job.secret}` : '';
  if (machine.enrol !== undefined) {
    // Initial deployment's preboot: the machine's enrolment secret on its kernel command line only.
    if (machine.enrol.secret === null) return exitConfig(mac, 'initial deployment: no enrolment secret was made for this machine');
    jobArgs = `netboot.enrol=${machine.enrol.secret}`;
  }
  const action = machine.action;
  if (action.type === 'menu') {
    const menu = state.config?.menu;
    return menu === undefined ? exitConfig(mac, 'action menu, but config has no menu') : menuConfig(mac, menu, state);
  }
  return lines(...actionBody(mac, action, state, jobArgs));
}

function actionBody(mac: string, action: Action, state: FeedState, jobArgs = ''): string[] {
  switch (action.type) {
    case 'local':
      return exitBody(mac, 'action local: boot from the next device');
    case 'wait':
      return [
        `echo ${quote(`netboot: ${mac} is waiting for instructions; checking again in ${WAIT_RECHECK_SEC} s`)}`,
        `sleep ${WAIT_RECHECK_SEC}`,
        `configfile /${configPath(mac)}`,
      ];
    case 'menu':
      // A menu item that is itself `menu`: the menu again.
      return [`configfile /${configPath(mac)}`];
    case 'boot': {
      const image = findImage(state, action.image);
      return image === null ? exitBody(mac, `image ${action.image} does not exist`) : bootBody(mac, image, jobArgs);
    }
  }
}

function bootBody(mac: string, image: Image, jobArgs: string): string[] {
  if (image.type !== 'linux') return exitBody(mac, `image ${image.id} is of type ${image.type}: only linux images boot through shim and GRUB`);
  // Over TFTP from GRUB's $root. Not `(http,${net_default_server}:PORT)`: Debian 12's signed
  // grubnetx64 parses ports but has no http module ("disk `http,...' not found", then a TFTP
  // request for /grub/x86_64-efi/http.mod), and under Secure Boot it loads no module.
  const file = (rel: string): string => `/${imagePath(mac, image.id, rel)}`;
  // The same settings the iPXE scripts pass (BOOT_SETTINGS), from GRUB's variables.
  const settings = ['netboot.server=${net_default_server}', 'netboot.next-server=${net_default_server}', `BOOTIF=01-${mac.replace(/:/g, '-')}`];
  const cmdline = [image.cmdline ?? '', ...settings, jobArgs].filter((s) => s !== '').join(' ');
  return [
    `echo ${quote(`netboot: ${mac} boots ${image.name}`)}`,
    `linux ${file(image.kernel!)} ${cmdline}`,
    ...((image.initrd ?? []).length === 0 ? [] : [`initrd ${(image.initrd ?? []).map(file).join(' ')}`]),
    'boot',
  ];
}

function menuConfig(mac: string, menu: Menu, state: FeedState): string {
  if (menu.items.length === 0) return exitConfig(mac, 'the menu has no items');
  const entries = menu.items.flatMap((item, i) => [
    `menuentry ${quote(item.label)} --id m${i} {`,
    ...actionBody(mac, item.action, state).map((l) => `  ${l}`),
    '}',
  ]);
  return lines(`set default=m0`, `set timeout=${menu.timeoutSec > 0 ? menu.timeoutSec : -1}`, `echo ${quote(menu.prompt)}`, ...entries);
}

export function configPath(mac: string): string {
  return `netboot/${mac.replace(/:/g, '-')}/grub.cfg`;
}

function exitBody(mac: string, reason: string): string[] {
  // `exit` returns to the firmware, which tries its next boot device.
  return [`echo ${quote(`netboot: ${mac}: ${reason}`)}`, 'exit'];
}

function exitConfig(mac: string, reason: string): string {
  return lines(...exitBody(mac, reason));
}

function lines(...body: string[]): string {
  // No quote characters in comments: GRUB 2.06's lexer reads a quote inside a comment as opening a string.
  return ['# netboot: generated for this machine from its current action', ...body, ''].join('\n');
}

/** A GRUB single-quoted word: no expansion; `'` itself written as '\''; one line. */
function quote(text: string): string {
  return `'${text.replace(/[\r\n]+/g, ' ').replace(/'/g, '\'\\\'\'')}'`;
}
