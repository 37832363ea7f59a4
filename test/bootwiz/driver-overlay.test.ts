// Driver packages without Debian's archive: driver.json checks, and BootwizService's automatic
// overlay rebuild on a fabricated build (a build.json, a lock and an empty kernel module tree;
// firmware-only driver packages need no modules): a burst of driver changes makes one rebuild and
// one publish, a change during a rebuild one more, an unchanged set none, a removed driver leaves
// the overlay, windows drivers never enter a linux preboot, and the overlay's bytes depend on the
// driver versions only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { BootwizService, type BootwizHost } from '../../bootwiz/bootwiz-service.ts';
import { buildDir, bootwizDir } from '../../bootwiz/build.ts';
import { checkDriverDir, DriverPackageError, parseDriverMeta } from '../../bootwiz/drivers.ts';
import { encodeLock } from '../../bootwiz/lock.ts';
import { BUILD_INFO_FILE, LINUXPE_X64, LOCK_FILE, OVERLAY_FILE, OVERLAY_INFO_FILE } from '../../bootwiz/recipe.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';

const KVER = '6.1.0-99-amd64';
const ID = LINUXPE_X64.id;

test('driver.json: os, arch and description are required, with a clear error', () => {
  assert.deepEqual(parseDriverMeta('{"os":"linux","arch":"x64","description":" NIC "}', 'd.json'), { os: 'linux', arch: 'x64', description: 'NIC' });
  assert.throws(() => parseDriverMeta('{"os":"beos","arch":"x64"}', 'd.json'), (e: Error) => e instanceof DriverPackageError && /os: linux or windows \(got "beos"\); description/.test(e.message));
  assert.throws(() => parseDriverMeta('nope', 'd.json'), /d\.json: not JSON/);
  assert.throws(() => parseDriverMeta('{"os":"linux","arch":"mips","description":"x"}', 'd.json'), /arch: x64, x86, arm64 \(got "mips"\)/);
  const dir = mkdtempSync(join(tmpdir(), 'driver-check-'));
  try {
    assert.throws(() => checkDriverDir(dir), /a driver package needs driver\.json at its top/);
    writeFileSync(join(dir, 'driver.json'), '{"os":"linux","arch":"x64","description":"x"}');
    assert.throws(() => checkDriverDir(dir), /holds kernel modules \(\*\.ko\) or firmware files/);
    mkdirSync(join(dir, 'firmware'));
    writeFileSync(join(dir, 'firmware', 'a.bin'), 'fw');
    assert.equal(checkDriverDir(dir).os, 'linux');
    writeFileSync(join(dir, 'driver.json'), '{"os":"windows","arch":"x64","description":"x"}');
    assert.throws(() => checkDriverDir(dir), /found no \*\.inf/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Fake {
  data: string;
  host: BootwizHost;
  ready: Array<{ id: string; digest: string; dir: string }>;
  published: number;
  /** Held open to make a rebuild last until the test lets it go. */
  gate: Promise<void> | null;
}

function fakeSite(): Fake {
  const data = mkdtempSync(join(tmpdir(), 'bootwiz-overlay-'));
  const dir = buildDir(data, ID);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'initrd.img'), 'initrd');
  const sha = 'a'.repeat(64);
  writeFileSync(join(dir, LOCK_FILE), encodeLock({ lock: 1, packages: { kernel: { package: `linux-image-${KVER}`, version: '1', sha256: sha, filename: 'pool/x.deb' } } }));
  writeFileSync(join(dir, BUILD_INFO_FILE), JSON.stringify({ id: ID, kernelVersion: KVER, modules: [], initrd: { bytes: 6 } }));
  // The unpacked kernel's module tree, as kernelTree() leaves it: empty here.
  const tree = join(bootwizDir(data), 'kernel', sha.slice(0, 16));
  mkdirSync(join(tree, 'lib', 'modules', KVER), { recursive: true });
  writeFileSync(join(tree, '.complete'), '');
  const f: Fake = {
    data, ready: [], published: 0, gate: null,
    host: {
      publish: async () => {
        await f.gate;
        f.published++;
        return { seq: f.published, digest: null };
      },
      offer: () => undefined,
      readyDrivers: () => f.ready,
      owns: () => true,
    },
  };
  return f;
}

function driver(f: Fake, id: string, os: string, fw: string): { id: string; digest: string; dir: string } {
  const dir = join(f.data, 'drv', id);
  mkdirSync(join(dir, 'firmware', 'vendor'), { recursive: true });
  writeFileSync(join(dir, 'driver.json'), JSON.stringify({ os, arch: 'x64', description: `test ${id}` }));
  writeFileSync(join(dir, 'firmware', 'vendor', `${id}.bin`), fw);
  if (os === 'windows') writeFileSync(join(dir, `${id}.inf`), '[Version]\n');
  return { id, digest: `${id}-${fw}`.padEnd(64, '0').slice(0, 64), dir };
}

const status = (pkg: string): { package: string; state: string; digest: string | null } => ({ package: pkg, state: 'ready', digest: null });

function overlayFiles(f: Fake): Record<string, string> {
  const out = mkdtempSync(join(tmpdir(), 'overlay-x-'));
  try {
    execFileSync('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], { cwd: out, input: gunzipSync(readFileSync(join(buildDir(f.data, ID), OVERLAY_FILE))) });
    const files = execFileSync('find', ['.', '-type', 'f'], { cwd: out, encoding: 'utf8' }).split('\n').filter((l) => l !== '').map((l) => l.slice(2)).sort();
    return Object.fromEntries(files.map((p) => [p, readFileSync(join(out, p), 'utf8')]));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

test('driver changes rebuild the overlay by themselves: a burst makes one rebuild; unchanged sets none; removals leave', { timeout: 60_000 }, async () => {
  const f = fakeSite();
  const svc = new BootwizService({ dataDir: f.data, buildOnStart: false, installIpxe: false, tftpRoot: join(f.data, 'tftp'), driverSettleMs: 30 }, createMemoryLogger(), f.host);
  try {
    // Three drivers arrive together (one for Windows): one rebuild, one publish.
    f.ready.push(driver(f, 'nic-a', 'linux', 'A1'), driver(f, 'nic-b', 'linux', 'B1'), driver(f, 'win-c', 'windows', 'C1'));
    for (const d of f.ready) svc.onPackageStatus(status(d.id));
    await svc.idle();
    assert.equal(f.published, 1);
    const files = overlayFiles(f);
    assert.deepEqual(Object.keys(files), [
      'etc/bootwiz/drivers.d/nic-a', 'etc/bootwiz/drivers.d/nic-b', 'etc/bootwiz/modules.d/nic-a.list', 'etc/bootwiz/modules.d/nic-b.list',
      'lib/firmware/vendor/nic-a.bin', 'lib/firmware/vendor/nic-b.bin',
    ]);
    assert.match(files['etc/bootwiz/drivers.d/nic-a']!, /^test nic-a\ndigest /);
    assert.deepEqual(svc.status()[ID]?.drivers, ['nic-a', 'nic-b']);
    const first = readFileSync(join(buildDir(f.data, ID), OVERLAY_FILE));

    // Nothing changed: no rebuild, no publish.
    svc.onPackageStatus(status('something-else'));
    await svc.idle();
    assert.equal(f.published, 1);

    // A change while a rebuild is publishing: that rebuild finishes, then exactly one more.
    let release!: () => void;
    f.gate = new Promise((r) => { release = r; });
    f.ready[0] = driver(f, 'nic-a', 'linux', 'A2');
    svc.onPackageStatus(status('nic-a'));
    await new Promise((r) => setTimeout(r, 100));
    f.ready.splice(1, 1); // nic-b removed
    svc.onPackageStatus({ package: 'nic-b', state: 'absent', digest: null });
    svc.onPackageStatus({ package: 'nic-b', state: 'deleting', digest: null });
    await new Promise((r) => setTimeout(r, 100));
    release();
    await svc.idle();
    f.gate = null;
    assert.ok((f.published as number) === 2 || (f.published as number) === 3, `published ${f.published} times`);
    const after = overlayFiles(f);
    assert.equal(after['lib/firmware/vendor/nic-a.bin'], 'A2');
    assert.equal(after['etc/bootwiz/drivers.d/nic-b'], undefined, 'a removed driver leaves the overlay');
    assert.deepEqual(JSON.parse(readFileSync(join(buildDir(f.data, ID), OVERLAY_INFO_FILE), 'utf8')).drivers.map((d: { id: string }) => d.id), ['nic-a']);

    // Back to the first versions: the same bytes as the first time.
    f.ready.splice(0, f.ready.length, driver(f, 'nic-a', 'linux', 'A1'), driver(f, 'nic-b', 'linux', 'B1'), driver(f, 'win-c', 'windows', 'C1'));
    svc.onPackageStatus(status('nic-b'));
    await svc.idle();
    assert.ok(readFileSync(join(buildDir(f.data, ID), OVERLAY_FILE)).equals(first), 'same drivers, same overlay bytes');
  } finally {
    await svc.stop();
    rmSync(f.data, { recursive: true, force: true });
  }
});
