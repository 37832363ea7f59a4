// The userland's pure parts: the ELF reader against binutils' readelf on the host's own files, the
// DT_NEEDED walk on a folder laid out like unpacked packages (symlinks, the loader, a missing
// library), Debian's version order against dpkg, and the initrd taking the userland entries
// over busybox's applet links. No network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { compareDebVersions } from '../../bootwiz/apt.ts';
import { ElfError, isElf, readElfDynamic } from '../../bootwiz/elf.ts';
import { GZIP_LEVEL, gzipParts, initrdEntries } from '../../bootwiz/initrd.ts';
import { collectUserland, LIB_DIR, TRIPLET } from '../../bootwiz/userland.ts';

const HOST_FILES = ['/bin/ls', '/usr/bin/tar', `/lib/${TRIPLET}/libc.so.6`, `/usr/lib/${TRIPLET}/libstdc++.so.6`, '/usr/bin/qemu-system-x86_64'];

function readelf(path: string): { needed: string[]; soname: string | null; interp: string | null } {
  const d = execFileSync('readelf', ['-dW', path], { encoding: 'utf8' });
  const l = execFileSync('readelf', ['-lW', path], { encoding: 'utf8' });
  return {
    needed: [...d.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!),
    soname: /\(SONAME\)\s+Library soname: \[([^\]]+)\]/.exec(d)?.[1] ?? null,
    interp: /Requesting program interpreter: ([^\]]+)\]/.exec(l)?.[1] ?? null,
  };
}

test('the ELF reader finds what readelf finds: NEEDED in order, SONAME, the interpreter', () => {
  let checked = 0;
  for (const f of HOST_FILES) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(f);
    } catch {
      continue;
    }
    const got = readElfDynamic(bytes, f);
    assert.deepEqual({ needed: [...got.needed], soname: got.soname, interp: got.interp }, readelf(f), f);
    checked++;
  }
  assert.ok(checked >= 3, `only ${checked} host files to compare`);
});

test('the ELF reader refuses what it cannot read, by name', () => {
  assert.equal(isElf(Buffer.from('#!/bin/sh\n')), false);
  assert.throws(() => readElfDynamic(Buffer.from('#!/bin/sh\n'), 'run'), (e: unknown) => e instanceof ElfError && /run: not an ELF file/.test(e.message));
  const elf32 = Buffer.alloc(64);
  elf32.set([0x7f, 0x45, 0x4c, 0x46, 1, 1]);
  assert.throws(() => readElfDynamic(elf32, 'x86'), /only 64-bit little-endian/);
  const truncated = readFileSync('/bin/ls').subarray(0, 200);
  assert.throws(() => readElfDynamic(truncated, 'ls'), ElfError);
  // No program headers (as a static program without a dynamic segment): nothing needed.
  const bare = Buffer.alloc(64);
  bare.set([0x7f, 0x45, 0x4c, 0x46, 2, 1]);
  assert.deepEqual(readElfDynamic(bare, 'bare'), { interp: null, soname: null, needed: [] });
});

test('the NEEDED walk takes every library ls needs, through symlinks, and links the loader', async () => {
  const root = mkdtempSync(join(tmpdir(), 'bootwiz-userland-'));
  try {
    // Laid out like unpacked packages: the program, libraries under lib/ and usr/lib/ with
    // versioned names behind soname links, the loader behind lib64's absolute link.
    mkdirSync(join(root, 'bin'), { recursive: true });
    copyFileSync('/bin/ls', join(root, 'bin', 'ls'));
    mkdirSync(join(root, 'lib', TRIPLET), { recursive: true });
    mkdirSync(join(root, 'usr', 'lib', TRIPLET), { recursive: true });
    mkdirSync(join(root, 'lib64'), { recursive: true });
    const walk = (f: string, seen: Set<string>): void => {
      for (const n of readElfDynamic(readFileSync(f), f).needed) {
        if (seen.has(n)) continue;
        seen.add(n);
        const real = execFileSync('readlink', ['-f', `/lib/${TRIPLET}/${n}`], { encoding: 'utf8' }).trim();
        const i = seen.size;
        const dir = i % 2 === 0 ? join(root, 'lib', TRIPLET) : join(root, 'usr', 'lib', TRIPLET);
        copyFileSync(real, join(dir, `${n}.0.${i}`));
        symlinkSync(`${n}.0.${i}`, join(dir, n));
        walk(real, seen);
      }
    };
    const needed = new Set<string>();
    walk('/bin/ls', needed);
    const interp = readElfDynamic(readFileSync('/bin/ls')).interp!;
    const loaderName = interp.slice(interp.lastIndexOf('/') + 1);
    if (!needed.has(loaderName)) copyFileSync(execFileSync('readlink', ['-f', interp], { encoding: 'utf8' }).trim(), join(root, 'lib', TRIPLET, loaderName));
    symlinkSync(`/lib/${TRIPLET}/${loaderName}`, join(root, 'lib64', loaderName));

    const u = await collectUserland(root, ['bin/ls']);
    assert.deepEqual([...u.libraries], [...new Set([...needed, loaderName])].sort());
    const byPath = new Map(u.entries.map((e) => [e.path, e]));
    assert.equal(byPath.get('bin/ls')?.type, 'file');
    assert.equal((byPath.get('bin/ls') as { mode: number }).mode, 0o755);
    for (const lib of u.libraries) assert.equal(byPath.get(`${LIB_DIR}/${lib}`)?.type, 'file', lib);
    assert.deepEqual(byPath.get(interp.slice(1)), { path: interp.slice(1), type: 'symlink', target: `/${LIB_DIR}/${loaderName}` });
    // Libraries are the real bytes, not the links.
    const libc = byPath.get(`${LIB_DIR}/libc.so.6`) as { data: Uint8Array };
    assert.ok(Buffer.from(libc.data).equals(readFileSync(`/lib/${TRIPLET}/libc.so.6`)));
    // The same folder, the same entries.
    assert.deepEqual((await collectUserland(root, ['bin/ls'])).entries, u.entries);

    // A file no package has, and a library no package has: named, with who needs it.
    await assert.rejects(collectUserland(root, ['usr/bin/node']), /usr\/bin\/node is in none of the unpacked packages/);
    rmSync(join(root, 'lib', TRIPLET, 'libc.so.6'), { force: true });
    rmSync(join(root, 'usr', 'lib', TRIPLET, 'libc.so.6'), { force: true });
    await assert.rejects(collectUserland(root, ['bin/ls']), /libc\.so\.6, needed by \S+, is in none of the unpacked packages/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('Debian version order is dpkg\'s', () => {
  const pairs: Array<[string, string]> = [
    ['18.20.4+dfsg-1~deb12u3', '18.20.4+dfsg-1~deb12u2'], ['20.20.2-1nodesource1+repack1', '18.20.4+dfsg-1~deb12u3'],
    ['1:1.2.13.dfsg-1', '1.2.14-1'], ['1.0~rc1-1', '1.0-1'], ['1.0-1', '1.0-1'], ['2.38.1-5+deb12u3', '2.38.1-5+b1'],
    ['1.47.0-2+b2', '1.47.0-2'], ['1.0a', '1.0'], ['1.0', '1.0+'], ['9', '10'],
  ];
  for (const [a, b] of pairs) {
    for (const [x, y] of [[a, b], [b, a]] as const) {
      const dpkg = ['lt', 'eq', 'gt'].find((op) => {
        try {
          execFileSync('dpkg', ['--compare-versions', x, op, y]);
          return true;
        } catch {
          return false;
        }
      });
      const ours = Math.sign(compareDebVersions(x, y));
      assert.equal(ours, { lt: -1, eq: 0, gt: 1 }[dpkg!], `${x} vs ${y}: dpkg says ${dpkg}`);
    }
  }
});

test('the initrd takes the userland\'s programs over busybox\'s applet links of the same name', () => {
  const entries = initrdEntries({
    busybox: Buffer.from('BB'), applets: ['sbin/resize2fs', 'bin/sh'], modules: [],
    userland: [{ path: 'sbin/resize2fs', type: 'file', data: Buffer.from('ELF'), mode: 0o755 }, { path: 'lib64/ld-linux-x86-64.so.2', type: 'symlink', target: `/${LIB_DIR}/ld-linux-x86-64.so.2` }],
  });
  const byPath = new Map(entries.map((e) => [e.path, e]));
  assert.equal(byPath.get('sbin/resize2fs')?.type, 'file');
  assert.equal(byPath.get('bin/sh')?.type, 'symlink');
  assert.equal(byPath.get('lib64/ld-linux-x86-64.so.2')?.type, 'symlink');
});

test('the initrd streamed into gzip piece by piece is the same bytes as gzip of the whole archive', async () => {
  const parts = [readFileSync('/bin/ls'), Buffer.alloc(3), readFileSync(`/lib/${TRIPLET}/libc.so.6`), Buffer.from('TRAILER!!!'), Buffer.alloc(70_000, 7)];
  assert.ok((await gzipParts(parts)).equals(gzipSync(Buffer.concat(parts), { level: GZIP_LEVEL })));
});
