// WinPE preboot packages without Windows: WIMs that wimlib builds from folders (wimcapture) stand
// in for an administrator's boot.wim, and everything is read back with wimlib (wimdir,
// wimextract). Without wimboot the build refuses, saying where to put it. With it, the build
// publishes a preboot package offered as a `winpe` image; Windows driver packages (INF folders)
// Ready here are added under \Drivers\<package>\ and startnet.cmd gets one drvload per INF before
// its original lines; a driver arriving or leaving rebuilds it by itself (Linux drivers never).
// Not tested: booting it (no Windows here), and wimboot itself (a stand-in file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BootwizService, type BootwizHost } from '../../bootwiz/bootwiz-service.ts';
import { buildDir } from '../../bootwiz/build.ts';
import { buildWinpe, createWinpe, startnetWith, WIM_FILE } from '../../bootwiz/winpe.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import type { Image } from '../../sbs/types.ts';
import { waitFor } from '../helpers/env.ts';

const ID = 'winpe-x64';

test('startnet.cmd: drvload lines first, then the original lines', () => {
  assert.equal(startnetWith('wpeinit\r\n', [{ id: 'nic', infs: ['a/b.inf', 'c.INF'] }]), '@rem netboot: driver packages (bootwiz)\r\ndrvload X:\\Drivers\\nic\\a\\b.inf\r\ndrvload X:\\Drivers\\nic\\c.INF\r\nwpeinit\r\n');
  assert.equal(startnetWith('wpeinit\r\n', []), 'wpeinit\r\n');
});

function wimFiles(wim: string): string[] {
  return execFileSync('wimdir', [wim, '1'], { encoding: 'utf8' }).split('\n').filter((l) => l !== '').sort();
}

function startnet(wim: string, dir: string): string {
  rmSync(dir, { recursive: true, force: true });
  execFileSync('wimextract', [wim, '1', '/Windows/System32/startnet.cmd', `--dest-dir=${dir}`, '--no-acls'], { stdio: 'ignore' });
  return readFileSync(join(dir, 'startnet.cmd'), 'latin1');
}

test('bootwiz build --winpe: refuses without wimboot; adds Windows drivers to the WIM and rebuilds when they change', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootwiz-winpe-'));
  try {
    const data = join(dir, 'data');
    // An administrator's boot.wim, as wimlib builds one from a folder.
    const src = join(dir, 'pe');
    mkdirSync(join(src, 'Windows', 'System32'), { recursive: true });
    writeFileSync(join(src, 'Windows', 'System32', 'startnet.cmd'), 'wpeinit\r\necho original\r\n');
    writeFileSync(join(src, 'Windows', 'System32', 'winpeshl.ini'), '[LaunchApps]\r\n');
    const wim = join(dir, 'boot.wim');
    execFileSync('wimcapture', [src, wim, 'Microsoft Windows PE (x64)', '--boot'], { stdio: 'ignore' });
    const wimboot = join(dir, 'wimboot');
    writeFileSync(wimboot, 'stand-in for wimboot');

    const ready: Array<{ id: string; digest: string; dir: string }> = [];
    const offered: Image[] = [];
    let published = 0;
    const host: BootwizHost = {
      publish: async () => ({ seq: ++published, digest: null }), offer: (i) => void offered.push(i),
      readyDrivers: () => ready, owns: () => true,
    };
    const svc = new BootwizService({ dataDir: data, buildOnStart: false, installIpxe: false, tftpRoot: join(dir, 'tftp'), driverSettleMs: 30 }, createMemoryLogger(), host);
    const route = svc.controlRoutes()['POST /bootwiz/build']!;
    const run = async (body: unknown): Promise<{ state: string; error?: string }> => {
      const { job } = await route({ body, query: new URLSearchParams() } as never) as { job: string };
      return waitFor('the WinPE job', () => { const j = svc.job(job)!; return j.state === 'running' ? undefined : j; }, 60_000, 20);
    };
    try {
      const refused = await run({ id: ID, winpe: wim });
      assert.equal(refused.state, 'failed');
      assert.match(refused.error!, /WinPE needs wimboot \(https:\/\/ipxe\.org\/wimboot\), which Debian does not package: pass --wimboot FILE, or put it at /);
      assert.equal(published, 0);

      const drv = (id: string, os: string, files: Record<string, string>): { id: string; digest: string; dir: string } => {
        const d = join(dir, 'drivers', id);
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, 'driver.json'), JSON.stringify({ os, arch: 'x64', description: id }));
        for (const [p, text] of Object.entries(files)) {
          mkdirSync(join(d, p, '..'), { recursive: true });
          writeFileSync(join(d, p), text);
        }
        return { id, digest: id.padEnd(64, '0'), dir: d };
      };
      ready.push(drv('nic-intel', 'windows', { 'e1d/e1d.inf': '[Version]\r\n', 'e1d/e1d.sys': 'sys', 'e1d/e1d.cat': 'cat' }));
      ready.push(drv('linux-thing', 'linux', { 'firmware/x.bin': 'fw' }));
      const done = await run({ id: ID, winpe: wim, wimboot });
      assert.equal(done.state, 'done', done.error);
      assert.equal(published, 1);
      assert.deepEqual(offered.at(-1), { id: ID, name: `WinPE ${ID}`, arch: ['bios', 'efi-x64'], type: 'winpe', wim: WIM_FILE, package: ID });
      assert.ok(existsSync(join(dir, 'tftp', 'wimboot')), 'wimboot is put into the TFTP root');
      const built = join(buildDir(data, ID), WIM_FILE);
      const files = wimFiles(built);
      for (const f of ['/Drivers/nic-intel/e1d/e1d.inf', '/Drivers/nic-intel/e1d/e1d.sys', '/Drivers/nic-intel/e1d/e1d.cat', '/Windows/System32/winpeshl.ini']) assert.ok(files.includes(f), `${f} in ${files.join(' ')}`);
      assert.ok(!files.some((f) => f.includes('linux-thing')), 'a Linux driver stays out of WinPE');
      assert.equal(startnet(built, join(dir, 'x')), '@rem netboot: driver packages (bootwiz)\r\ndrvload X:\\Drivers\\nic-intel\\e1d\\e1d.inf\r\nwpeinit\r\necho original\r\n');
      // The administrator's WIM is untouched.
      assert.equal(startnet(wim, join(dir, 'y')), 'wpeinit\r\necho original\r\n');

      // A second Windows driver arrives, the first leaves: rebuilt and published by itself.
      ready.splice(0, 1, drv('storage-nvme', 'windows', { 'stornvme.inf': '[Version]\r\n' }));
      svc.onPackageStatus({ package: 'storage-nvme', state: 'ready', digest: null });
      svc.onPackageStatus({ package: 'nic-intel', state: 'absent', digest: null });
      await svc.idle();
      assert.equal(published, 2);
      const after = wimFiles(built);
      assert.ok(after.includes('/Drivers/storage-nvme/stornvme.inf') && !after.some((f) => f.startsWith('/Drivers/nic-intel')), after.join(' '));
      assert.equal(startnet(built, join(dir, 'z')), '@rem netboot: driver packages (bootwiz)\r\ndrvload X:\\Drivers\\storage-nvme\\stornvme.inf\r\nwpeinit\r\necho original\r\n');

      // Nothing changed: nothing rebuilt.
      svc.onPackageStatus({ package: 'other', state: 'ready', digest: null });
      await svc.idle();
      assert.equal(published, 2);
    } finally {
      await svc.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two WinPE builds with the same drivers differ only in the WIM\'s last-modification time', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootwiz-winpe-det-'));
  try {
    const src = join(dir, 'pe');
    mkdirSync(join(src, 'Windows', 'System32'), { recursive: true });
    writeFileSync(join(src, 'Windows', 'System32', 'startnet.cmd'), 'wpeinit\r\n');
    execFileSync('wimcapture', [src, join(dir, 'boot.wim'), 'PE', '--boot'], { stdio: 'ignore' });
    writeFileSync(join(dir, 'wimboot'), 'stand-in');
    const d = join(dir, 'drv');
    mkdirSync(d);
    writeFileSync(join(d, 'a.inf'), '[Version]\r\n');
    const wims: Buffer[] = [];
    const xml: string[] = [];
    for (const n of ['a', 'b']) {
      const data = join(dir, n);
      const recipe = await createWinpe({ dataDir: data, id: ID, wim: join(dir, 'boot.wim'), wimboot: join(dir, 'wimboot') });
      await buildWinpe(data, recipe, [{ id: 'nic', digest: '0'.repeat(64), dir: d, meta: { os: 'windows', arch: 'x64', description: 'x' } }]);
      const wim = join(buildDir(data, ID), WIM_FILE);
      wims.push(readFileSync(wim));
      xml.push(execFileSync('wiminfo', [wim, '--xml']).toString('utf16le').replace(/<LASTMODIFICATIONTIME>.*?<\/LASTMODIFICATIONTIME>/g, ''));
    }
    assert.equal(wims[0]!.length, wims[1]!.length);
    assert.equal(xml[0], xml[1]);
    let differ = 0;
    for (let i = 0; i < wims[0]!.length; i++) if (wims[0]![i] !== wims[1]![i]) differ++;
    assert.ok(differ <= 16, `${differ} bytes differ (the XML's LASTMODIFICATIONTIME is 16 hex digits)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
