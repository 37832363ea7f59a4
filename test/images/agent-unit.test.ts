// The imaging agent's parts without a site: its command line and the kernel's, which disk a job
// means in a /sys tree of our own, its console lines, GPT's CRC-32 without node:zlib's crc32, and
// its bundle: esbuild for Node 18 (as LinuxPE carries it) with node: modules only, nothing of
// state/, services/ or a native addon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as zlib from 'node:zlib';
import { build } from 'esbuild';
import { AgentConsole, progressText } from '../../images/agent/console.ts';
import { findDisk, partitionPath } from '../../images/agent/find-disk.ts';
import { kernelSettings, parseOptions, serverAddress, UsageError } from '../../images/agent/options.ts';
import { crc32Table } from '../../protocols/disk/crc32.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const JOB = 'a1b2c3d4-0000-4000-8000-00000000c0de';
const SECRET = 'ab'.repeat(32);

test('the job, its secret and the server come from the kernel command line; arguments and options override', () => {
  const line = `BOOT_IMAGE=vmlinuz console=ttyS0 netboot.server=10.0.0.5 netboot.next-server=10.0.0.1 BOOTIF=01-52-54-00-12-34-56 netboot.job=${JOB} netboot.secret=${SECRET}`;
  assert.equal(kernelSettings(line).get('netboot.job'), JOB);
  const o = parseOptions(['--cmdline', '/x', '--no-reboot'], {}, () => line);
  assert.deepEqual([o.jobId, o.secret, o.server, o.reboot, o.sysDir, o.devDir, o.checkMs], [JOB, SECRET, '10.0.0.5:490', false, '/sys', '/dev', 5000]);
  const p = parseOptions(['10.0.0.9', '52:54:00:12:34:56', '10.0.0.77', '--server', '127.0.0.1:4900', '--sys', '/tmp/sys'], {}, () => line);
  assert.deepEqual([p.server, p.mac, p.ip, p.sysDir, p.reboot], ['127.0.0.1:4900', '52:54:00:12:34:56', '10.0.0.77', '/tmp/sys', true]);
  assert.equal(parseOptions(['10.0.0.9'], {}, () => line).server, '10.0.0.9:490', 'the SERVER argument before the kernel line');
  const none = parseOptions([], {}, () => 'console=ttyS0');
  assert.deepEqual([none.jobId, none.secret, none.server], [null, null, null]);
  assert.equal(parseOptions([], {}, () => { throw new Error('ENOENT'); }).jobId, null, 'no /proc/cmdline: no job');
  assert.equal(serverAddress('${proxydhcp/next-server}'), null, 'a template iPXE did not expand');
  assert.equal(serverAddress('fe80::1'), '[fe80::1]:490');
  assert.throws(() => parseOptions([], {}, () => `netboot.job=${JOB}`), /come together/);
  assert.throws(() => parseOptions([], {}, () => `netboot.job=nope netboot.secret=${SECRET}`), UsageError);
  assert.throws(() => parseOptions(['--bogus'], {}, () => ''), /unknown option --bogus/);
  assert.throws(() => parseOptions(['--cmdline', '/nonexistent'], {}, () => { throw new Error('ENOENT'); }), /--cmdline \/nonexistent: ENOENT/);
});

test('the disk: the first fixed one by name, a path as given, or the one with the serial or WWID', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-sys-'));
  try {
    const disk = (name: string, attrs: Record<string, string>): void => {
      mkdirSync(join(dir, 'block', name, 'device'), { recursive: true });
      for (const [k, v] of Object.entries({ removable: '0', size: '2048', ...attrs })) writeFileSync(join(dir, 'block', name, k), `${v}\n`);
    };
    disk('loop0', {});
    disk('ram0', {});
    disk('zram0', {});
    disk('sr0', { removable: '1' });
    disk('nbd0', { size: '0' });
    disk('sdaa', { removable: '1' });
    disk('sdb', { 'device/serial': 'S2' });
    disk('sdc', { removable: '1' });
    disk('vda', { serial: 'VIRTIO-7', 'device/wwid': 't10.ATA QEMU HARDDISK QM00005' });
    assert.deepEqual(await findDisk('first', dir, '/dev'), { path: '/dev/sdb', name: 'sdb', why: 'the first fixed disk' });
    assert.equal((await findDisk('serial:S2', dir, '/dev')).path, '/dev/sdb');
    assert.equal((await findDisk('serial:VIRTIO-7', dir, '/dev')).path, '/dev/vda');
    assert.equal((await findDisk('serial:QM00005', dir, '/dev')).path, '/dev/vda', 'the end of a WWID');
    assert.equal((await findDisk('/dev/nvme0n1', dir, '/dev')).path, '/dev/nvme0n1');
    await assert.rejects(findDisk('serial:NOPE', dir, '/dev'), /no disk with serial NOPE \(seen sdb: S2; vda: /);
    rmSync(join(dir, 'block'), { recursive: true });
    disk('loop0', {});
    disk('sdc', { removable: '1' });
    await assert.rejects(findDisk('first', dir, '/dev'), /no fixed disk found .*skipped loop0 \(not a disk\), sdc \(removable\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual([partitionPath('/dev/sda', 2), partitionPath('/dev/nvme0n1', 1), partitionPath('/dev/loop7', 3)], ['/dev/sda2', '/dev/nvme0n1p1', '/dev/loop7p3']);
});

test('the console: a progress line per phase with percentage and MB/s; redrawn in place on a terminal', () => {
  assert.equal(progressText('deploy', 50_000_000, 200_000_000, 2), 'deploy          25%  50.0/200.0 MB  25.0 MB/s');
  let t = 0;
  const out: string[] = [];
  const c = new AgentConsole({ write: (s) => void out.push(s), isTTY: false }, () => t);
  c.progress('deploy', 0, 100_000_000);
  t = 1000;
  c.progress('deploy', 10_000_000, 100_000_000); // within 5 s: not shown
  t = 6000;
  c.progress('deploy', 60_000_000, 100_000_000);
  c.say('done');
  assert.deepEqual(out, ['deploy           0%  0.0/100.0 MB  0.0 MB/s\n', 'deploy          60%  60.0/100.0 MB  10.0 MB/s\n', 'done\n']);
  const tty: string[] = [];
  const d = new AgentConsole({ write: (s) => void tty.push(s), isTTY: true }, () => 0);
  d.progress('capture', 1, 2);
  d.say('x');
  assert.deepEqual(tty, ['\rcapture         50%  0.0/0.0 MB  0.0 MB/s\x1b[K', '\n', 'x\n']);
});

test('GPT CRC-32 without node:zlib (Node 18) equals zlib\'s', () => {
  for (const n of [0, 1, 92, 16384, 100_001]) {
    const b = randomBytes(n);
    assert.equal(crc32Table(b), (zlib as unknown as { crc32(b: Uint8Array): number }).crc32(b));
  }
});

test('the agent bundles for Node 18 with node: modules only, and without state/, services/ or native code', async () => {
  const r = await build({
    entryPoints: [join(ROOT, 'images/agent/main.ts')], bundle: true, platform: 'node', target: 'node18', format: 'esm',
    write: false, metafile: true, logLevel: 'silent', outfile: 'agent.mjs',
  });
  const inputs = Object.keys(r.metafile.inputs);
  assert.ok(inputs.includes('images/agent/main.ts') && inputs.includes('images/deploy.ts'), inputs.join(' '));
  assert.deepEqual(inputs.filter((p) => !/^(images\/|protocols\/(disk|registry)\/|platform\/runtime\/|packages\/(digest|manifest|chunk-frames|chunk-deflate)\.ts$)/.test(p)), [], 'only the engine and pure codecs');
  const externals = Object.values(r.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
  assert.deepEqual([...new Set(externals.filter((p) => !p.startsWith('node:')))], []);
  assert.ok(!inputs.some((p) => p.startsWith('images/package-image') || p.startsWith('images/capture-uploads')), 'nothing of the site side');
});
