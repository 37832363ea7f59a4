// Two builds of linuxpe-x64 from one lock, each with its own cache (so each downloads from
// Debian's archive through apt): byte-identical kernel, initrd, lock and build description.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../bootwiz/build.ts';
import { BUILD_INFO_FILE, INITRD_FILE, KERNEL_FILE, LINUXPE_X64, LOCK_FILE } from '../../bootwiz/recipe.ts';

test('two builds from the same lock give the same bytes', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootwiz-determinism-'));
  try {
    const a = await build({ dataDir: join(dir, 'a'), recipe: LINUXPE_X64 });
    assert.equal(a.resolved, true, 'the first build resolves apt\'s candidates');
    const b = await build({ dataDir: join(dir, 'b'), recipe: LINUXPE_X64, lockPath: join(a.dir, LOCK_FILE) });
    assert.equal(b.resolved, false, 'the second build takes the lock as it is');
    for (const f of [KERNEL_FILE, INITRD_FILE, LOCK_FILE, BUILD_INFO_FILE]) {
      assert.ok(readFileSync(join(a.dir, f)).equals(readFileSync(join(b.dir, f))), `${f} differs between the two builds`);
    }
    assert.deepEqual(a.info, b.info);
    // A lean image: modules and busybox, a few MiB compressed.
    assert.ok(a.info.initrd.bytes < 16 * 1024 * 1024, `initrd is ${a.info.initrd.bytes} bytes`);
    assert.ok(a.info.modules.includes('e1000') && a.info.modules.includes('virtio_net') && a.info.modules.includes('ext4'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
