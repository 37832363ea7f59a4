// The Secure Boot chain's generated GRUB configurations (boot/http-grub-config.ts): the same
// actions as the iPXE scripts, served at netboot/<mac>/grub.cfg (GRUB's `:` MAC form too), the
// kernel's complete fetch consuming `once` as with iPXE; shim as the boot file says so in the offer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FeedState } from '../../boot/feed-protocol.ts';
import { GRUB_ROOT_CONFIG } from '../../boot/http-grub-config.ts';
import { parseNetbootPath } from '../../boot/netboot-paths.ts';
import { decide } from '../../boot/pxe-policy.ts';
import { consumedBy, tftpTarget } from '../../boot/tftp-resolve.ts';
import type { Action } from '../../sbs/types.ts';

const MAC = '52:54:00:5b:00:01';
const state = (action: Action): FeedState => ({
  config: {
    respond: 'all', unknown: { type: 'local' }, responseDelayMs: 0, bootFiles: { 'efi-x64': 'shimx64.efi' },
    menu: { prompt: 'Pick one', timeoutSec: 10, items: [{ label: 'Linux PE', action: { type: 'boot', image: 'pe', once: false } }, { label: 'Disk', action: { type: 'local' } }] },
  },
  clients: [{ mac: MAC, action }],
  images: [
    { id: 'pe', name: 'Linux PE', arch: ['efi-x64'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img', 'drivers.img'], cmdline: 'console=ttyS0' },
    { id: 'win', name: 'WinPE', arch: ['efi-x64'], type: 'winpe', wim: 'boot.wim' },
  ],
  predefined: null,
});

function grub(action: Action, path = 'netboot/52-54-00-5b-00-01/grub.cfg', httpPort?: number): string {
  const t = tftpTarget(path, state(action), httpPort === undefined ? {} : { httpPort }, '/srv/tftp');
  assert.equal(t.type, 'content', JSON.stringify(t));
  return t.type === 'content' ? t.text : '';
}

test('boot: the signed kernel and the initrds over TFTP from GRUB\'s server, whatever Boot HTTP\'s port (Debian 12\'s signed GRUB has no http), then boot', () => {
  const text = grub({ type: 'boot', image: 'pe', once: true });
  assert.deepEqual(text.split('\n').slice(1), [
    "echo 'netboot: 52:54:00:5b:00:01 boots Linux PE'",
    'linux /netboot/52-54-00-5b-00-01/image/pe/vmlinuz console=ttyS0 netboot.server=${net_default_server} netboot.next-server=${net_default_server} BOOTIF=01-52-54-00-5b-00-01',
    'initrd /netboot/52-54-00-5b-00-01/image/pe/initrd.img /netboot/52-54-00-5b-00-01/image/pe/drivers.img',
    'boot',
    '',
  ]);
  // No address in it: GRUB fetches from the server it read this from ($net_default_server), so a
  // machine behind a relay uses the same server as for its configuration.
  assert.doesNotMatch(text, /\d+\.\d+\.\d+\.\d+/);
  // Boot HTTP on port 80 changes nothing: `(http,...)` made GRUB stop with "disk `http,SERVER' not found".
  assert.equal(grub({ type: 'boot', image: 'pe', once: true }, undefined, 80), text);
  assert.doesNotMatch(grub({ type: 'menu' }, undefined, 80), /\(http,/);
  // GRUB names the machine with colons ($net_default_mac): the same file.
  assert.equal(grub({ type: 'boot', image: 'pe', once: true }, 'netboot/52:54:00:5b:00:01/grub.cfg'), text);
  assert.deepEqual(parseNetbootPath('netboot/52:54-00:5b:00:01/grub.cfg'), 'not a MAC: "52:54-00:5b:00:01"');
  // The kernel GRUB fetches is the boot program: its complete fetch consumes the once.
  assert.deepEqual(consumedBy('netboot/52-54-00-5b-00-01/image/pe/vmlinuz', state({ type: 'boot', image: 'pe', once: true }), {}), { mac: MAC, image: 'pe' });
  assert.ok(GRUB_ROOT_CONFIG.includes('source /netboot/${net_default_mac}/grub.cfg'));
});

test('local, wait, menu, and images GRUB cannot boot', () => {
  assert.match(grub({ type: 'local' }), /^echo 'netboot: 52:54:00:5b:00:01: action local: boot from the next device'\nexit$/m);
  const wait = grub({ type: 'wait' });
  assert.match(wait, /^sleep 5$/m);
  assert.match(wait, /^configfile \/netboot\/52-54-00-5b-00-01\/grub\.cfg$/m);
  const menu = grub({ type: 'menu' });
  assert.match(menu, /^set timeout=10$/m);
  assert.match(menu, /^menuentry 'Linux PE' --id m0 \{\n {2}echo .*\n {2}linux \/netboot\//m);
  assert.match(menu, /^menuentry 'Disk' --id m1 \{\n {2}echo .*\n {2}exit\n\}$/m);
  assert.match(grub({ type: 'boot', image: 'win', once: false }), /only linux images boot through shim and GRUB'\nexit/);
  assert.match(grub({ type: 'boot', image: 'gone', once: false }), /image gone does not exist/);
});

test('shim as an architecture\'s boot file is the Secure Boot chain, and the offer says so', () => {
  const d = decide({ mac: MAC, archCode: 7, isIpxe: false, port: 'dhcp' }, state({ type: 'boot', image: 'pe', once: false }));
  assert.ok('offer' in d);
  assert.equal(d.offer.file, 'shimx64.efi');
  assert.match(d.offer.reason, /Secure Boot chain/);
});
