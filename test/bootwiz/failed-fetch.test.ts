// A build whose lock names a version apt does not have fails before anything is unpacked, with
// the package, the version and apt's own words, and leaves the previous build as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AptError } from '../../bootwiz/apt.ts';
import { build, buildDir } from '../../bootwiz/build.ts';
import { encodeLock } from '../../bootwiz/lock.ts';
import { LINUXPE_X64 } from '../../bootwiz/recipe.ts';

test('a lock naming a version apt lacks: a clear error, the previous build untouched', { timeout: 120_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'bootwiz-failed-fetch-'));
  try {
    const previous = buildDir(data, LINUXPE_X64.id);
    mkdirSync(previous, { recursive: true });
    writeFileSync(join(previous, 'vmlinuz'), 'previous kernel');
    writeFileSync(join(previous, 'initrd.img'), 'previous initrd');
    const lock = join(data, 'bad-lock.json');
    writeFileSync(lock, encodeLock({ lock: 1, packages: {
      kernel: { package: 'linux-image-6.1.0-57-amd64', version: '0.0.1-no-such-version', sha256: 'e'.repeat(64), filename: 'pool/x.deb' },
      busybox: { package: 'busybox-static', version: '0.0.1-no-such-version', sha256: 'f'.repeat(64), filename: 'pool/y.deb' },
    } }));
    await assert.rejects(build({ dataDir: data, recipe: LINUXPE_X64, lockPath: lock }), (err: unknown) => {
      assert.ok(err instanceof AptError, String(err));
      assert.equal(err.code, 'BOOTWIZ_APT_FAILED');
      assert.equal(err.pkg, 'linux-image-6.1.0-57-amd64');
      assert.match(err.message, /linux-image-6\.1\.0-57-amd64 version 0\.0\.1-no-such-version: E: Version '0\.0\.1-no-such-version' for 'linux-image-6\.1\.0-57-amd64' was not found/);
      return true;
    });
    assert.equal(readFileSync(join(previous, 'vmlinuz'), 'utf8'), 'previous kernel');
    assert.equal(readFileSync(join(previous, 'initrd.img'), 'utf8'), 'previous initrd');
    // No staging or work folders left behind.
    assert.deepEqual(readdirSync(join(data, 'bootwiz', 'builds')), [LINUXPE_X64.id]);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
