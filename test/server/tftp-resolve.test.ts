// netboot/ paths: the generated iPXE scripts, safe resolution into the TFTP root, and which
// completed fetch consumes a once boot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Action, Image } from '../../sbs/types.ts';
import type { FeedState } from '../../boot/feed-protocol.ts';
import { consumedBy, resolveTftpPath, type TftpResolution } from '../../boot/tftp-resolve.ts';

const MAC = '52:54:00:12:34:56';
const DIR = 'netboot/52-54-00-12-34-56';
const ROOT = '/srv/tftp';
const IMAGES: Image[] = [
  { id: 'lnx', name: 'Linux PE', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'lnx/vmlinuz', initrd: ['lnx/initrd.img', 'lnx/extra.cpio'], cmdline: 'console=ttyS0 quiet' },
  { id: 'pkg', name: 'Packaged', arch: ['bios'], type: 'nbp', bootFile: 'pxelinux.0', package: 'pkg-v1' },
  { id: 'win', name: 'WinPE', arch: ['efi-x64'], type: 'winpe', wim: 'sources/boot.wim', bcd: 'boot/bcd', sdi: 'boot/boot.sdi' },
];

function state(action: Action): FeedState {
  return {
    config: { respond: 'all', unknown: { type: 'local' }, responseDelayMs: 0, bootFiles: { bios: 'undionly.kpxe' }, menu: { prompt: 'Pick one', timeoutSec: 10, items: [{ label: 'Linux', action: { type: 'boot', image: 'lnx', once: false } }, { label: 'Disk', action: { type: 'local' } }] } },
    clients: [{ mac: MAC, action }], images: IMAGES, predefined: [],
  };
}

function text(r: TftpResolution): string {
  assert.equal(r.type, 'content');
  return Buffer.from((r as { dataBase64: string }).dataBase64, 'base64').toString('utf8');
}

test('boot of a linux image: kernel with command line, named initrds, boot', () => {
  assert.equal(text(resolveTftpPath(`${DIR}/boot.ipxe`, state({ type: 'boot', image: 'lnx', once: true }), {}, ROOT)), [
    '#!ipxe',
    'echo netboot: 52:54:00:12:34:56 boots Linux PE',
    'kernel image/lnx/lnx/vmlinuz console=ttyS0 quiet netboot.server=${proxydhcp/next-server} netboot.next-server=${next-server} BOOTIF=01-${mac:hexhyp} initrd=i0-initrd.img initrd=i1-extra.cpio',
    'initrd --name i0-initrd.img image/lnx/lnx/initrd.img',
    'initrd --name i1-extra.cpio image/lnx/lnx/extra.cpio',
    'boot', '',
  ].join('\n'));
});

test('winpe goes through wimboot; nbp is chained', () => {
  const win = text(resolveTftpPath(`/${DIR}/boot.ipxe`, state({ type: 'boot', image: 'win', once: true }), {}, ROOT));
  assert.match(win, /^kernel wimboot$/m);
  assert.match(win, /^initrd --name boot.wim image\/win\/sources\/boot.wim$/m);
  assert.match(win, /^initrd --name BCD .*boot\/bcd$/m);
  assert.match(text(resolveTftpPath(`${DIR}/boot.ipxe`, state({ type: 'boot', image: 'pkg', once: true }), {}, ROOT)), /^chain image\/pkg\/pxelinux.0$/m);
});

test('wait re-chains its own script; local and a consumed once exit to the next boot device', () => {
  const wait = text(resolveTftpPath(`${DIR}/boot.ipxe`, state({ type: 'wait' }), {}, ROOT));
  assert.match(wait, /^sleep \d+$/m);
  assert.match(wait, /^chain --replace boot.ipxe$/m);
  assert.match(text(resolveTftpPath(`${DIR}/boot.ipxe`, state({ type: 'local' }), {}, ROOT)), /^exit$/m);
  assert.match(text(resolveTftpPath(`${DIR}/boot.ipxe`, state({ type: 'boot', image: 'lnx', once: true }), { consumed: new Set([MAC]) }, ROOT)), /^exit$/m);
});

test('menu: one item per config.menu entry, each chaining its own script', () => {
  const menu = text(resolveTftpPath(`${DIR}/boot.ipxe`, state({ type: 'menu' }), {}, ROOT));
  assert.match(menu, /^menu Pick one$/m);
  assert.match(menu, /^item m0 Linux$/m);
  assert.match(menu, /^item m1 Disk$/m);
  assert.match(menu, /^choose --timeout 10000 --default m0 target/m);
  assert.match(menu, /^chain --replace menu\/1.ipxe$/m);
  // A menu item's script lives in menu/: what it names outside that folder is absolute.
  assert.match(text(resolveTftpPath(`${DIR}/menu/0.ipxe`, state({ type: 'menu' }), {}, ROOT)), new RegExp(`^kernel /${DIR}/image/lnx/lnx/vmlinuz `, 'm'));
  assert.match(text(resolveTftpPath(`${DIR}/menu/1.ipxe`, state({ type: 'menu' }), {}, ROOT)), /^exit$/m);
  assert.match(text(resolveTftpPath(`${DIR}/menu/7.ipxe`, state({ type: 'menu' }), {}, ROOT)), /menu has no item 7/);
});

test('every path a script names, resolved against the script\'s own URI as iPXE does, is one the resolver serves', () => {
  const ready = (id: string) => (id === 'pkg-v1' ? '/var/lib/netboot/packages/pkg-v1/versions/abc' : null);
  const scripts: [string, Action][] = [
    [`${DIR}/boot.ipxe`, { type: 'boot', image: 'lnx', once: false }],
    [`${DIR}/boot.ipxe`, { type: 'boot', image: 'win', once: false }],
    [`${DIR}/boot.ipxe`, { type: 'boot', image: 'pkg', once: false }],
    [`${DIR}/boot.ipxe`, { type: 'wait' }],
    [`${DIR}/boot.ipxe`, { type: 'menu' }],
    [`${DIR}/menu/0.ipxe`, { type: 'menu' }],
  ];
  let named = 0;
  for (const [at, action] of scripts) {
    const s = state(action);
    for (const line of text(resolveTftpPath(at, s, {}, ROOT, ready)).split('\n')) {
      const m = /^(?:kernel|chain(?: --replace)?|initrd(?: --name \S+)?) (\S+)/.exec(line);
      if (m === null) continue;
      const path = decodeURIComponent(new URL(m[1]!, `tftp://10.0.0.1/${at}`).pathname.slice(1));
      assert.notEqual(resolveTftpPath(path, s, {}, ROOT, ready).type, 'none', `${at} (${action.type}): ${line} -> ${path}`);
      named++;
    }
  }
  assert.ok(named >= 12, `${named} references checked`);
});

test('image files resolve inside the TFTP root (or the Ready package version), never outside', () => {
  const s = state({ type: 'wait' });
  const ready = (id: string) => (id === 'pkg-v1' ? '/var/lib/netboot/packages/pkg-v1/versions/abc' : null);
  assert.deepEqual(resolveTftpPath(`${DIR}/image/lnx/lnx/vmlinuz`, s, {}, ROOT, ready), { type: 'file', path: '/srv/tftp/lnx/vmlinuz' });
  assert.deepEqual(resolveTftpPath(`${DIR}/image/pkg/pxelinux.cfg/default`, s, {}, ROOT, ready), { type: 'file', path: '/var/lib/netboot/packages/pkg-v1/versions/abc/pxelinux.cfg/default' });
  assert.deepEqual(resolveTftpPath(`${DIR}/image/pkg/pxelinux.cfg/default`, s, {}, ROOT, () => null), { type: 'none', reason: 'package pkg-v1 of image pkg is not Ready on this server' });
  assert.equal(resolveTftpPath(`${DIR}/image/pkg/../../x`, s, {}, ROOT, ready).type, 'none');
  assert.deepEqual(resolveTftpPath(`${DIR}/wimboot`, s, {}, ROOT), { type: 'file', path: '/srv/tftp/wimboot' });
  for (const bad of [`${DIR}/image/lnx/../../../etc/passwd`, `${DIR}/image/lnx/a/./b`, `${DIR}/image/lnx//etc/passwd`, `${DIR}/image/../x/y`, `${DIR}/image/lnx/a\\..\\b`, 'netboot/52-54-00-12-34/boot.ipxe', 'netboot/../etc/passwd', 'etc/passwd']) {
    const r = resolveTftpPath(bad, s, {}, ROOT);
    assert.equal(r.type, 'none', bad);
  }
  assert.deepEqual(resolveTftpPath(`${DIR}/image/nope/x`, s, {}, ROOT), { type: 'none', reason: 'image nope does not exist' });
});

test('only a completed fetch of the image boot program under boot-once consumes it', () => {
  const once = state({ type: 'boot', image: 'lnx', once: true });
  assert.deepEqual(consumedBy(`${DIR}/image/lnx/lnx/vmlinuz`, once, {}), { mac: MAC, image: 'lnx' });
  assert.deepEqual(consumedBy(`/${DIR}/image/lnx/lnx/vmlinuz`, once, {}), { mac: MAC, image: 'lnx' });
  assert.equal(consumedBy(`${DIR}/image/lnx/lnx/initrd.img`, once, {}), null, 'initrd is not the boot program');
  assert.equal(consumedBy(`${DIR}/boot.ipxe`, once, {}), null, 'the script is not');
  assert.equal(consumedBy(`${DIR}/image/lnx/lnx/vmlinuz`, once, { consumed: new Set([MAC]) }), null, 'not twice');
  assert.equal(consumedBy(`${DIR}/image/lnx/lnx/vmlinuz`, state({ type: 'boot', image: 'lnx', once: false }), {}), null, 'not without once');
  assert.equal(consumedBy(`${DIR}/image/lnx/lnx/vmlinuz`, state({ type: 'menu' }), {}), null, 'not from a menu');
  assert.deepEqual(consumedBy(`${DIR}/image/win/sources/boot.wim`, state({ type: 'boot', image: 'win', once: true }), {}), { mac: MAC, image: 'win' });
  assert.deepEqual(consumedBy(`${DIR}/image/pkg/pxelinux.0`, state({ type: 'boot', image: 'pkg', once: true }), {}), { mac: MAC, image: 'pkg' });
});
