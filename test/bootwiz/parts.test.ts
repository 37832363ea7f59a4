// BootWiz's pure parts: the lock's text, apt's stanzas, modprobe's load order, the initrd's
// entries and the init script (checked by a shell's parser).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseStanzas } from '../../bootwiz/apt.ts';
import { writeCpio } from '../../bootwiz/cpio.ts';
import { initrdEntries } from '../../bootwiz/initrd.ts';
import { initScript, udhcpcScript } from '../../bootwiz/init-script.ts';
import { decodeLock, encodeLock, LockError, type Lock } from '../../bootwiz/lock.ts';
import { mergeLoadOrder, parseShowDepends } from '../../bootwiz/module-order.ts';

const LOCK: Lock = { lock: 1, packages: {
  kernel: { package: 'linux-image-6.1.0-57-amd64', version: '6.1.192-3', sha256: 'a'.repeat(64), filename: 'pool/k.deb' },
  busybox: { package: 'busybox-static', version: '1:1.35.0-4+deb12u1+b1', sha256: 'b'.repeat(64), filename: 'pool/b.deb' },
} };

test('a lock round-trips, and its text does not depend on key order', () => {
  const text = encodeLock(LOCK);
  assert.deepEqual(decodeLock(text, 'x'), LOCK);
  const reordered: Lock = { lock: 1, packages: { busybox: LOCK.packages.busybox!, kernel: LOCK.packages.kernel! } };
  assert.equal(encodeLock(reordered), text);
});

test('a lock with a bad entry is refused with the entry named', () => {
  const bad = JSON.stringify({ lock: 1, packages: { kernel: { ...LOCK.packages.kernel, sha256: 'nothex' } } });
  assert.throws(() => decodeLock(bad, 'lock.json'), (err: unknown) => err instanceof LockError && /lock\.json: packages\.kernel: needs/.test(err.message));
  assert.throws(() => decodeLock('{', 'lock.json'), /not JSON/);
});

test('apt-cache show stanzas: fields and continuation lines', () => {
  const s = parseStanzas('Package: a\nVersion: 1\nDescription: x\n more\nSHA256: ff\n\nPackage: b\nVersion: 2\n');
  assert.deepEqual(s, [{ Package: 'a', Version: '1', Description: 'x\nmore', SHA256: 'ff' }, { Package: 'b', Version: '2' }]);
});

test('modprobe --show-depends: paths below the root, names as the kernel spells them, builtins skipped', () => {
  const text = 'builtin crc32c\ninsmod /r/lib/modules/6.1/kernel/arch/x86/crypto/crc32c-intel.ko \ninsmod /r/lib/modules/6.1/kernel/fs/ext4/ext4.ko \n';
  assert.deepEqual(parseShowDepends(text, '/r'), [
    { name: 'crc32c_intel', path: 'lib/modules/6.1/kernel/arch/x86/crypto/crc32c-intel.ko' },
    { name: 'ext4', path: 'lib/modules/6.1/kernel/fs/ext4/ext4.ko' },
  ]);
  assert.throws(() => parseShowDepends('insmod /elsewhere/x.ko\n', '/r'), /outside \/r/);
});

test('load lists merge with each module at its first place', () => {
  const m = (n: string) => ({ name: n, path: `${n}.ko` });
  assert.deepEqual(mergeLoadOrder([[m('scsi_mod'), m('libata'), m('ata_piix')], [m('scsi_mod'), m('sd_mod')]]).map((x) => x.name), ['scsi_mod', 'libata', 'ata_piix', 'sd_mod']);
});

test('the initrd is the same bytes whatever order applets and modules come in', () => {
  const input = {
    busybox: Buffer.from('BB'),
    applets: ['bin/sh', 'sbin/ifconfig', 'usr/bin/wget', 'linuxrc', 'bin/busybox'],
    modules: [{ name: 'a', path: 'lib/modules/k/a.ko', data: Buffer.from('A') }, { name: 'b', path: 'lib/modules/k/b.ko', data: Buffer.from('B') }],
  };
  const one = writeCpio(initrdEntries(input));
  const two = writeCpio(initrdEntries({ ...input, applets: [...input.applets].reverse() }));
  assert.deepEqual(one, two);
  const entries = initrdEntries(input);
  const byPath = new Map(entries.map((e) => [e.path, e]));
  assert.deepEqual(byPath.get('bin/sh'), { path: 'bin/sh', type: 'symlink', target: '/bin/busybox' });
  assert.equal(byPath.get('bin/busybox')?.type, 'file', 'busybox itself is not replaced by a link');
  assert.equal(byPath.has('linuxrc'), false);
  assert.equal(byPath.get('dev/console')?.type, 'chardev');
  assert.equal(byPath.get('opt/agent')?.type, 'dir');
  // Load order is the list's order, not the archive's.
  const list = byPath.get('etc/bootwiz/modules.list');
  assert.equal(list?.type === 'file' && Buffer.from(list.data).toString(), 'lib/modules/k/a.ko\nlib/modules/k/b.ko\n');
});

test('init and the udhcpc script parse as shell scripts and read the command line iPXE writes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootwiz-init-'));
  try {
    for (const [name, text] of [['init', initScript()], ['udhcpc', udhcpcScript()]] as const) {
      writeFileSync(join(dir, name), text);
      execFileSync('sh', ['-n', join(dir, name)]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(initScript(), /netboot\.server=\*\)/);
  assert.match(initScript(), /BOOTIF=\*\)/);
  assert.match(initScript(), /==== netboot LinuxPE ====/);
});
