// `netboot explain` for a machine on the Secure Boot chain: the walk is shim → grubx64.efi beside
// it → grub/grub.cfg → the machine's generated GRUB configuration → the kernel and initrds it
// names (no iPXE, no iPXE script), and the `transfer:` line says all of it comes over TFTP,
// whatever Boot HTTP's port (Debian 12's signed GRUB has no http module). Pure walks here, then
// the command against a running PXE server and Interface in this process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { bootChain, type ProbeResult } from '../../boot/boot-chain.ts';
import type { FeedState } from '../../boot/feed-protocol.ts';
import { decide } from '../../boot/pxe-policy.ts';
import { parseArgs } from '../../cli/args.ts';
import { explainCommand } from '../../cli/explain-command.ts';
import type { Action, Menu } from '../../sbs/types.ts';
import { serving, startSite } from '../server/service-site.ts';

const MAC = '52:54:00:5b:00:01';
const DIR = 'netboot/52-54-00-5b-00-01';
const PE = { id: 'pe', name: 'Linux PE', arch: ['efi-x64'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img', 'drivers.img'], cmdline: 'console=ttyS0' } as const;
const MENU: Menu = { prompt: 'Pick one', timeoutSec: 10, items: [{ label: 'Linux PE', action: { type: 'boot', image: 'pe', once: false } }, { label: 'Gone', action: { type: 'boot', image: 'gone', once: false } }, { label: 'Disk', action: { type: 'local' } }] };

function state(action: Action, shim = 'shimx64.efi'): FeedState {
  return {
    config: { respond: 'all', unknown: { type: 'local' }, responseDelayMs: 0, bootFiles: { 'efi-x64': shim }, menu: MENU },
    clients: [{ mac: MAC, action }], images: [PE], predefined: null,
  };
}

function walk(action: Action, files: readonly string[], shim = 'shimx64.efi') {
  const asked: string[] = [];
  const probe = (path: string): ProbeResult => {
    asked.push(path);
    const rel = path.replace(/^netboot\/[^/]+\/image\/pe\//, '');
    return { exists: files.includes(rel), where: `/srv/tftp/${rel}` };
  };
  const s = state(action, shim);
  const chain = bootChain(MAC, decide({ mac: MAC, archCode: 7, isIpxe: false, port: 'dhcp' }, s, { httpPort: 8490 }), s, probe, { httpPort: 8490 })!;
  return { chain, asked };
}

const ALL = ['shimx64.efi', 'grubx64.efi', 'grub/grub.cfg', 'vmlinuz', 'initrd.img', 'drivers.img'];

test('the Secure Boot chain: shim, GRUB beside it, its configurations, then the kernel and both initrds: no iPXE', () => {
  const { chain, asked } = walk({ type: 'boot', image: 'pe', once: false }, ALL);
  assert.equal(chain.cannotBoot, null);
  assert.equal(chain.ends, 'boots image pe');
  assert.deepEqual(chain.steps.map((s) => [s.kind, s.what, s.file]), [
    ['offer', 'boot program for efi-x64 (shim, the Secure Boot chain)', 'shimx64.efi'],
    ['file', 'GRUB (signed, loaded by shim from its folder)', 'grubx64.efi'],
    ['file', 'GRUB\'s first configuration', 'grub/grub.cfg'],
    ['script', 'GRUB configuration (boot pe)', `${DIR}/grub.cfg`],
    ['file', 'kernel of image pe', 'vmlinuz'],
    ['file', 'initrd of image pe', 'initrd.img'],
    ['file', 'initrd of image pe', 'drivers.img'],
  ]);
  assert.ok(!asked.some((p) => p.endsWith('.ipxe')), 'no iPXE script on this chain');
  // shim in a folder: GRUB is looked for beside it.
  assert.equal(walk({ type: 'boot', image: 'pe', once: false }, ['boot/grubx64.efi', ...ALL], 'boot/shimx64.efi').chain.steps[1]!.path, 'boot/grubx64.efi');
});

test('a missing link of the Secure Boot chain: cannot boot, naming it', () => {
  assert.match(walk({ type: 'boot', image: 'pe', once: false }, ALL.filter((f) => f !== 'grubx64.efi')).chain.cannotBoot ?? '', /^GRUB \(signed, loaded by shim from its folder\) \(grubx64\.efi\): not in the TFTP root/);
  assert.match(walk({ type: 'boot', image: 'pe', once: false }, ALL.filter((f) => f !== 'grub/grub.cfg')).chain.cannotBoot ?? '', /GRUB's first configuration \(grub\/grub\.cfg\)/);
  assert.match(walk({ type: 'boot', image: 'pe', once: false }, ALL.filter((f) => f !== 'drivers.img')).chain.cannotBoot ?? '', /^initrd of image pe \(drivers\.img\)/);
});

test('wait and menu through GRUB (local gets no offer at all)', () => {
  assert.equal(walk({ type: 'wait' }, ALL).chain.ends, 'waits, reading its GRUB configuration again every few seconds');
  const menu = walk({ type: 'menu' }, ALL).chain;
  assert.equal(menu.cannotBoot, null);
  assert.equal(menu.ends, 'shows a GRUB menu of 3 item(s)');
  assert.deepEqual(menu.steps.filter((s) => s.item === 0).map((s) => s.file), ['vmlinuz', 'initrd.img', 'drivers.img']);
  assert.deepEqual(menu.warnings, ['menu item 2: the GRUB configuration exits instead of booting: image gone does not exist']);
});

test('netboot explain names the Secure Boot chain and says everything comes over TFTP, whatever Boot HTTP\'s port', async () => {
  const s = await startSite((drop) => {
    drop('1-config.sbs', { kind: 'config', config: { respond: 'all', unknown: { type: 'local' }, bootFiles: { 'efi-x64': 'shimx64.efi' } } });
    drop('2-clients.sbs', { kind: 'clients', clients: [{ mac: MAC, name: 'SB-PC', action: { type: 'boot', image: 'pe', once: false } }] });
    drop('3-images.sbs', { kind: 'images', images: [{ ...PE, kernel: 'pe/vmlinuz', initrd: ['pe/initrd.img', 'pe/drivers.img'] }] });
  }, '[http]\nport = 8490\n');
  try {
    await serving(s);
    const tftp = s.site.config.paths.tftpRoot;
    mkdirSync(join(tftp, 'grub'), { recursive: true });
    mkdirSync(join(tftp, 'pe'), { recursive: true });
    for (const f of ['shimx64.efi', 'grubx64.efi', 'grub/grub.cfg', 'pe/vmlinuz', 'pe/initrd.img', 'pe/drivers.img']) writeFileSync(join(tftp, f), f);
    const out: string[] = [];
    const code = await explainCommand({ args: parseArgs([MAC, '--arch', 'efi-x64'], ['ipxe', 'json']), out: (l) => out.push(l), err: (l) => out.push(`ERR ${l}`), env: { NETBOOT_CONFIG: s.site.configPath } });
    const text = out.join('\n');
    assert.equal(code, 0, text);
    assert.match(text, /offered shimx64\.efi/);
    assert.match(text, /why: .*the Secure Boot chain/);
    assert.match(text, /transfer: Secure Boot chain, all over TFTP: shim \(the firmware\), grubx64\.efi \(shim\), GRUB's configurations, the kernel and initrds/);
    assert.doesNotMatch(text, /iPXE/, 'nothing of iPXE on this chain');
    assert.match(text, /ok +GRUB configuration \(boot pe\): netboot\/52-54-00-5b-00-01\/grub\.cfg \(generated\)/);
    assert.match(text, /ok +initrd of image pe: pe\/drivers\.img from the TFTP root/);
    assert.match(text, /then: boots image pe/);
  } finally {
    await s.stop();
  }
});
