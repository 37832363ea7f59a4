// The iPXE scripts the server generates per machine (see README.md for the chain). Pure: text
// from action and state. Each script names other netboot paths relative to its own folder where
// they lie below it, else absolute (`/netboot/...`): iPXE resolves both against the URI it loaded
// the script from, and prints every path it fetches as written, so the short form is what the
// machine's console shows (see refFrom).
import type { Action, Image, Menu } from '../sbs/types.ts';
import type { FeedState } from './feed-protocol.ts';
import { findImage, type MachineAction } from './pxe-policy.ts';
import { imagePath, menuItemPath, scriptPath, wimbootPath } from './netboot-paths.ts';

/** Seconds a waiting machine sleeps before it asks again. */
export const WAIT_RECHECK_SEC = 5;

/**
 * Appended to a linux image's command line; iPXE expands the settings when it runs `kernel`.
 * Our offers are proxyDHCP offers, kept by iPXE in its `proxydhcp` block; plain `next-server`
 * is the site's DHCP server's (measured: dnsmasq puts its own address there), which is the boot
 * server only where that server points at us. Unset settings expand to nothing.
 */
export const BOOT_SETTINGS = [`netboot.server=\${proxydhcp/next-server}`, `netboot.next-server=\${next-server}`, `BOOTIF=01-\${mac:hexhyp}`] as const;

/** How a script names a netboot path (see refFrom). */
type Ref = (path: string) => string;

/**
 * References from a script served at `scriptAt`: relative to its folder for paths below it, else
 * absolute. iPXE prints each path it fetches; the relative form leaves out `/netboot/<mac>/`, 27
 * characters a machine waits for on a serial console (87 µs each at 115200 baud) or on SeaBIOS's
 * under QEMU (0.2-0.3 ms each, measured in bench/boot).
 */
function refFrom(scriptAt: string): Ref {
  const dir = scriptAt.slice(0, scriptAt.lastIndexOf('/') + 1);
  return (path) => (path.startsWith(dir) ? path.slice(dir.length) : `/${path}`);
}

/** The script at `netboot/<mac>/boot.ipxe`. */
export function machineScript(mac: string, machine: MachineAction, state: FeedState): string {
  if ('none' in machine) return exitScript(mac, machine.none);
  const job = machine.job;
  if (job !== undefined && machine.action.type === 'boot' && machine.action.image === job.preboot) {
    // The job's preboot: its id and secret go on this machine's kernel command line only.
    const image = findImage(state, job.preboot);
    if (image === null) return exitScript(mac, `image ${job.preboot} does not exist`);
    return bootScript(mac, image, refFrom(scriptPath(mac)), `netboot.job=${job.jobId} netboot.secret=${job.secret}`);
  }
  if (machine.enrol !== undefined && machine.action.type === 'boot') return enrolScript(mac, machine.action.image, machine.enrol.secret, state);
  return actionScript(mac, machine.action, state, refFrom(scriptPath(mac)));
}

/** Initial deployment's preboot, with the machine's enrolment secret on its kernel command line only. */
function enrolScript(mac: string, preboot: string, secret: string | null, state: FeedState): string {
  const image = findImage(state, preboot);
  if (image === null) return exitScript(mac, `image ${preboot} does not exist`);
  if (secret === null) return exitScript(mac, 'initial deployment: no enrolment secret was made for this machine');
  return bootScript(mac, image, refFrom(scriptPath(mac)), `netboot.enrol=${secret}`);
}

/** The script at `netboot/<mac>/menu/<index>.ipxe`. */
export function menuItemScript(mac: string, index: number, machine: MachineAction, state: FeedState): string {
  if ('none' in machine) return exitScript(mac, machine.none);
  if (machine.action.type !== 'menu') return exitScript(mac, 'the machine\'s action is no longer menu');
  const item = state.config?.menu?.items[index];
  if (item === undefined) return exitScript(mac, `menu has no item ${index}`);
  const ref = refFrom(menuItemPath(mac, index));
  // A menu item that is itself `menu` shows the menu again.
  return item.action.type === 'menu' ? chainScript(ref(scriptPath(mac))) : actionScript(mac, item.action, state, ref);
}

function actionScript(mac: string, action: Action, state: FeedState, ref: Ref): string {
  switch (action.type) {
    case 'local':
      return exitScript(mac, 'action local: boot from the next device');
    case 'wait':
      return lines(
        `echo netboot: ${mac} is waiting for instructions; checking again in ${WAIT_RECHECK_SEC} s`,
        `sleep ${WAIT_RECHECK_SEC}`,
        `chain --replace ${ref(scriptPath(mac))}`,
      );
    case 'menu': {
      const menu = state.config?.menu;
      return menu === undefined ? exitScript(mac, 'action menu, but config has no menu') : menuScript(mac, menu, ref);
    }
    case 'boot': {
      const image = findImage(state, action.image);
      return image === null ? exitScript(mac, `image ${action.image} does not exist`) : bootScript(mac, image, ref);
    }
  }
}

function bootScript(mac: string, image: Image, ref: Ref, jobArgs = ''): string {
  const file = (rel: string): string => ref(imagePath(mac, image.id, rel));
  const head = `echo netboot: ${mac} boots ${quoteless(image.name)}`;
  switch (image.type) {
    case 'linux': {
      const initrds = image.initrd ?? [];
      // initrd=NAME lets an EFI-stub kernel find iPXE's initrds; a BIOS kernel ignores it.
      const names = initrds.map((path, i) => `i${i}-${basename(path)}`);
      // iPXE expands these: the site server and the booting NIC's MAC, for the preboot's init
      // (bootwiz/init-script.ts); BOOTIF is PXELINUX's convention, which other initrds read too.
      const cmdline = [image.cmdline ?? '', ...BOOT_SETTINGS, ...names.map((n) => `initrd=${n}`), jobArgs].filter((s) => s !== '').join(' ');
      return lines(
        head,
        `kernel ${file(image.kernel!)}${cmdline === '' ? '' : ` ${cmdline}`}`,
        ...initrds.map((path, i) => `initrd --name ${names[i]} ${file(path)}`),
        'boot',
      );
    }
    case 'nbp':
      return lines(head, `chain ${file(image.bootFile!)}`);
    case 'winpe':
      // wimboot (https://ipxe.org/wimboot) must be in the TFTP root; it is not packaged by Debian.
      return lines(
        head,
        `kernel ${ref(wimbootPath(mac))}`,
        ...(image.bcd === undefined ? [] : [`initrd --name BCD ${file(image.bcd)}`]),
        ...(image.sdi === undefined ? [] : [`initrd --name boot.sdi ${file(image.sdi)}`]),
        `initrd --name boot.wim ${file(image.wim!)}`,
        'boot',
      );
  }
}

function menuScript(mac: string, menu: Menu, ref: Ref): string {
  if (menu.items.length === 0) return exitScript(mac, 'the menu has no items');
  const items = menu.items.map((item, i) => `item m${i} ${quoteless(item.label)}`);
  const targets = menu.items.flatMap((_, i) => [`:m${i}`, `chain --replace ${ref(menuItemPath(mac, i))}`]);
  const timeout = menu.timeoutSec > 0 ? ` --timeout ${menu.timeoutSec * 1000}` : '';
  return lines(
    `menu ${quoteless(menu.prompt)}`,
    ...items,
    `choose${timeout} --default m0 target && goto \${target} || exit`,
    ...targets,
  );
}

function chainScript(reference: string): string {
  return lines(`chain --replace ${reference}`);
}

function exitScript(mac: string, reason: string): string {
  return lines(`echo netboot: ${mac}: ${quoteless(reason)}`, 'exit');
}

function lines(...body: string[]): string {
  return ['#!ipxe', ...body, ''].join('\n');
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Text shown by iPXE: one line, no characters iPXE would expand or split on. */
function quoteless(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/[${}]/g, '_');
}
