// The initrd's archive writer: GNU cpio reads back exactly what we wrote, and the bytes do not
// depend on the order entries come in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpioError, writeCpio, type CpioEntry } from '../../bootwiz/cpio.ts';

const ENTRIES: CpioEntry[] = [
  { path: 'bin/busybox', type: 'file', data: Buffer.from('#!fake busybox\n'), mode: 0o755 },
  { path: 'bin/sh', type: 'symlink', target: 'busybox' },
  { path: 'init', type: 'file', data: Buffer.from('#!/bin/sh\necho hello\n'), mode: 0o755 },
  { path: 'etc/banner', type: 'file', data: Buffer.alloc(5001, 0x41) },
  { path: 'empty', type: 'file', data: Buffer.alloc(0) },
  { path: 'lib/modules/6.1/kernel/x.ko', type: 'file', data: Buffer.from([0, 1, 2, 3, 4, 5, 6]) },
  { path: 'dev', type: 'dir' },
  { path: 'dev/console', type: 'chardev', major: 5, minor: 1, mode: 0o600 },
];

test('GNU cpio extracts every file, link, folder and mode we wrote', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cpio-'));
  try {
    execFileSync('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], { cwd: dir, input: writeCpio(ENTRIES) });
    for (const e of ENTRIES) {
      const path = join(dir, e.path);
      const st = lstatSync(path);
      if (e.type === 'file') {
        assert.ok(st.isFile(), e.path);
        assert.deepEqual(readFileSync(path), Buffer.from(e.data), e.path);
        assert.equal(st.mode & 0o7777, e.mode ?? 0o644, e.path);
      } else if (e.type === 'symlink') {
        assert.equal(readlinkSync(path), e.target);
      } else if (e.type === 'chardev') {
        assert.ok(st.isCharacterDevice(), e.path);
        assert.equal(st.rdev, (e.major << 8) | e.minor);
      } else {
        assert.ok(st.isDirectory(), e.path);
      }
    }
    // Parents nobody listed are made as folders.
    assert.ok(lstatSync(join(dir, 'lib/modules/6.1/kernel')).isDirectory());
    const listing = execFileSync('cpio', ['-itv', '--quiet'], { input: writeCpio(ENTRIES) }).toString();
    for (const line of listing.trim().split('\n')) assert.match(line, /^\S+\s+\d+\s+root\s+root\s.*\s1970\s/, 'owner, group and time are 0');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the same entries in any order give the same bytes, with times 0 and inodes in order', () => {
  const a = writeCpio(ENTRIES);
  const b = writeCpio([...ENTRIES].reverse());
  assert.deepEqual(a, b);
  // The first record's mtime field (the 7th 8-digit field after the magic) is 0.
  assert.equal(a.toString('ascii', 6 + 6 * 8, 6 + 7 * 8), '00000000');
  assert.equal(a.length % 4, 0);
});

test('bad paths and duplicates are refused', () => {
  for (const path of ['/abs', '../up', 'a//b', 'a/./b', '']) {
    assert.throws(() => writeCpio([{ path, type: 'dir' }]), CpioError, path);
  }
  assert.throws(() => writeCpio([{ path: 'x', type: 'dir' }, { path: 'x', type: 'dir' }]), /listed twice/);
  assert.throws(() => writeCpio([{ path: 'x', type: 'file', data: Buffer.alloc(1) }, { path: 'x/y', type: 'dir' }]), /not a folder/);
});
