// Two builds of linuxpe-x64 from one lock, each with its own cache (so each downloads from
// Debian's archive through apt): byte-identical kernel, initrd, lock and build description. Then
// the initrd's userland, unpacked with the probe agent's overlay and run under chroot (root):
// init's `/opt/agent/run SERVER MAC IP` starts Debian's Node 18 with no file from the host, and
// the file system tools start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildAgentOverlay, bundleAgent } from '../../bootwiz/agent.ts';
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
    // Modules, busybox and Node with its libraries (libnode 45 MiB and ICU's data 30 MiB unpacked):
    // about 39 MiB compressed; more means something unneeded came in.
    assert.ok(a.info.initrd.bytes < 48 * 1024 * 1024, `initrd is ${a.info.initrd.bytes} bytes`);
    assert.ok(a.info.modules.includes('e1000') && a.info.modules.includes('virtio_net') && a.info.modules.includes('ext4'));
    assert.ok(a.info.userland.libraries.includes('libnode.so.108') && a.info.userland.libraries.includes('libicudata.so.72'), a.info.userland.libraries.join(' '));

    const root = join(dir, 'root');
    mkdirSync(root);
    const overlay = await buildAgentOverlay(await bundleAgent(join(import.meta.dirname, 'fixtures', 'agent-probe.ts')));
    for (const img of [readFileSync(join(a.dir, INITRD_FILE)), overlay.compressed]) {
      execFileSync('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], { cwd: root, input: gunzipSync(img), maxBuffer: 1 << 30 });
    }
    const run = (cmd: string[]): string => execFileSync('chroot', [root, ...cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const out = execFileSync('chroot', [root, '/opt/agent/run', '10.0.0.1', '52:54:00:00:00:01', '10.0.0.100'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(out, /^agent-probe: node v18\.20\.4 args=10\.0\.0\.1 52:54:00:00:00:01 10\.0\.0\.100$/m);
    assert.match(out, /intl=1\.234,5/, 'ICU from libicu72');
    assert.match(run(['/usr/bin/node', '-e', 'process.stderr.write("");console.log(typeof fetch, require("zlib").brotliCompressSync("x").length > 0)']), /^function true$/m);
    assert.match(run(['/bin/sh', '-c', '/sbin/debugfs -V 2>&1']), /debugfs 1\.4/);
    assert.match(run(['/sbin/ntfsresize', '--version']), /ntfsresize v/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
