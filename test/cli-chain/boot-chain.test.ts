// The boot chain `netboot explain` walks (boot/boot-chain.ts): a pure function of decision,
// state and a probe; here the probe is a table of which TFTP paths hold files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootChain, type ProbeResult } from '../../boot/boot-chain.ts';
import type { FeedState } from '../../boot/feed-protocol.ts';
import { codeFromArch } from '../../boot/pxe-arch.ts';
import { decide } from '../../boot/pxe-policy.ts';
import type { Action, Image, Menu } from '../../sbs/types.ts';

const MAC = '52:54:00:12:34:56';
const DIR = 'netboot/52-54-00-12-34-56';
const LNX: Image = { id: 'lnx', name: 'Linux', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img'] };
const WINPE: Image = { id: 'winpe', name: 'WinPE', arch: ['efi-x64'], type: 'winpe', wim: 'sources/boot.wim', bcd: 'Boot/BCD', package: 'win11' };
const NBP: Image = { id: 'memtest', name: 'memtest', arch: ['bios'], type: 'nbp', bootFile: 'memtest.0' };

function state(action: Action, menu?: Menu): FeedState {
  return {
    config: { respond: 'all', unknown: { type: 'local' }, responseDelayMs: 0, bootFiles: { bios: 'undionly.kpxe', 'efi-x64': 'snponly.efi' }, ...(menu === undefined ? {} : { menu }) },
    clients: [{ mac: MAC, action }], images: [LNX, WINPE, NBP], predefined: null,
  };
}

/** Files in the TFTP root and in packages (`win11:sources/boot.wim`); `ready`: Ready packages. */
function probe(files: string[], ready: string[] = [], held: string[] = []) {
  const asked: string[] = [];
  const fn = (path: string): ProbeResult => {
    asked.push(path);
    const m = /^netboot\/[^/]+\/image\/([^/]+)\/(.+)$/.exec(path);
    const w = /^netboot\/[^/]+\/wimboot$/.test(path);
    const image = m === null ? null : [LNX, WINPE, NBP].find((i) => i.id === m[1])!;
    if (image?.package !== undefined) {
      const pkg = image.package;
      if (!ready.includes(pkg)) return { exists: false, package: pkg, ready: false, held: held.includes(pkg) };
      return { exists: files.includes(`${pkg}:${m![2]}`), package: pkg, ready: true, held: true };
    }
    const rel = w ? 'wimboot' : m === null ? path : m[2]!;
    return { exists: files.includes(rel), where: `/srv/tftp/${rel}` };
  };
  return { fn, asked };
}

const chainFor = (action: Action, arch: 'bios' | 'efi-x64', isIpxe: boolean, p: (path: string) => ProbeResult, menu?: Menu) => {
  const s = state(action, menu);
  return bootChain(MAC, decide({ mac: MAC, archCode: codeFromArch(arch), isIpxe, port: 'dhcp' }, s, {}), s, p);
};

test('firmware to iPXE to script to every file of a linux image: all there, it boots', () => {
  const p = probe(['undionly.kpxe', 'vmlinuz', 'initrd.img']);
  const c = chainFor({ type: 'boot', image: 'lnx', once: false }, 'bios', false, p.fn)!;
  assert.equal(c.cannotBoot, null);
  assert.equal(c.ends, 'boots image lnx');
  assert.deepEqual(c.steps.map((s) => [s.kind, s.what, s.file, s.problem]), [
    ['offer', 'boot program for bios (an iPXE build)', 'undionly.kpxe', null],
    ['script', 'iPXE script (boot lnx)', `${DIR}/boot.ipxe`, null],
    ['file', 'kernel of image lnx', 'vmlinuz', null],
    ['file', 'initrd of image lnx', 'initrd.img', null],
  ]);
  assert.deepEqual(p.asked, ['undionly.kpxe', `${DIR}/image/lnx/vmlinuz`, `${DIR}/image/lnx/initrd.img`], 'the paths the script makes iPXE fetch');
});

test('a missing boot program, kernel or initrd in the TFTP root: cannot boot, naming it', () => {
  const noIpxe = chainFor({ type: 'boot', image: 'lnx', once: false }, 'bios', false, probe(['vmlinuz', 'initrd.img']).fn)!;
  assert.equal(noIpxe.cannotBoot, 'boot program for bios (an iPXE build) (undionly.kpxe): not in the TFTP root (/srv/tftp/undionly.kpxe)');
  assert.equal(noIpxe.steps.length, 1, 'the walk stops where the machine stops');
  const noInitrd = chainFor({ type: 'boot', image: 'lnx', once: false }, 'bios', true, probe(['vmlinuz']).fn)!;
  assert.equal(noInitrd.cannotBoot, 'initrd of image lnx (initrd.img): not in the TFTP root (/srv/tftp/initrd.img)');
  assert.equal(noInitrd.steps[0]!.kind, 'script', 'running iPXE starts at its script');
});

test('a winpe image whose package is missing, not Ready, or lacks a file', () => {
  const action: Action = { type: 'boot', image: 'winpe', once: false };
  const files = ['snponly.efi', 'wimboot'];
  const gone = chainFor(action, 'efi-x64', true, probe(files).fn)!;
  assert.equal(gone.cannotBoot, 'BCD of image winpe (Boot/BCD): package win11 is not on this server (never published, deleted, or not received yet)');
  const syncing = chainFor(action, 'efi-x64', true, probe(files, [], ['win11']).fn)!;
  assert.match(syncing.cannotBoot!, /package win11 is not Ready on this server/);
  const partial = chainFor(action, 'efi-x64', true, probe([...files, 'win11:Boot/BCD'], ['win11']).fn)!;
  assert.equal(partial.cannotBoot, 'wim of image winpe (sources/boot.wim): not in the Ready version of package win11');
  const whole = chainFor(action, 'efi-x64', false, probe([...files, 'win11:Boot/BCD', 'win11:sources/boot.wim'], ['win11']).fn)!;
  assert.equal(whole.cannotBoot, null);
  assert.deepEqual(whole.steps.map((s) => `${s.what} from ${s.from}`), [
    'boot program for efi-x64 (an iPXE build) from TFTP root', 'iPXE script (boot winpe) from generated',
    'wimboot (for winpe images) from TFTP root', 'BCD of image winpe from package win11', 'wim of image winpe from package win11',
  ]);
});

test('nbp straight to the firmware; an image that does not exist; local and wait', () => {
  const nbp = chainFor({ type: 'boot', image: 'memtest', once: false }, 'bios', false, probe([]).fn)!;
  assert.equal(nbp.cannotBoot, 'network boot program of image memtest (memtest.0): not in the TFTP root (/srv/tftp/memtest.0)');
  const ok = chainFor({ type: 'boot', image: 'memtest', once: false }, 'bios', false, probe(['memtest.0']).fn)!;
  assert.equal(ok.ends, 'the firmware runs the network boot program of image memtest');
  assert.equal(chainFor({ type: 'boot', image: 'nope', once: false }, 'bios', false, probe([]).fn), null, 'no offer: nothing to walk');
  assert.equal(chainFor({ type: 'local' }, 'bios', true, probe([]).fn), null);
  const wait = chainFor({ type: 'wait' }, 'bios', true, probe([]).fn)!;
  assert.equal(wait.cannotBoot, null);
  assert.match(wait.ends, /^waits/);
});

test('a menu: the default item breaks the chain, another broken item is a warning', () => {
  const menu: Menu = { prompt: 'Boot', timeoutSec: 5, items: [
    { label: 'Linux', action: { type: 'boot', image: 'lnx', once: false } },
    { label: 'Windows', action: { type: 'boot', image: 'winpe', once: false } },
    { label: 'Disk', action: { type: 'local' } },
  ] };
  const warn = chainFor({ type: 'menu' }, 'bios', true, probe(['vmlinuz', 'initrd.img']).fn, menu)!;
  assert.equal(warn.cannotBoot, null);
  assert.equal(warn.ends, 'shows a menu of 3 item(s)');
  assert.equal(warn.warnings.length, 1);
  assert.match(warn.warnings[0]!, /^menu item 2 "Windows": wimboot \(for winpe images\) \(wimboot\): not in the TFTP root/);
  const broken = chainFor({ type: 'menu' }, 'bios', true, probe(['initrd.img']).fn, menu)!;
  assert.match(broken.cannotBoot!, /^menu item 1 "Linux" \(the default\): kernel of image lnx \(vmlinuz\): not in the TFTP root/);
});
