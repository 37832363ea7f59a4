// The systemd units as installed by systemd/install.sh (staged with --root, since the test
// machine need not run systemd), checked by systemd itself: `systemd-analyze verify` must pass
// without a single complaint, and `systemd-analyze security` must rate each service's exposure
// low. Deliberately broken and loosened copies prove that both checks can fail.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const INSTALL = join(ROOT, 'systemd/install.sh');
const SERVICES = ['interface', 'signal', 'server', 'mtftp'];
const UNITS = [...SERVICES.map((s) => `netboot-${s}.service`), 'netboot.target'];
/** systemd-analyze security's overall exposure, times ten; ours is 1.7 (a bare unit is ~9.6). */
const EXPOSURE_THRESHOLD = 25;

let stage = '';

function run(cmd: string, args: readonly string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, [...args], { timeout: 60000, maxBuffer: 1 << 22 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, out: (stdout + stderr).trim() });
    });
  });
}

const unitPath = (name: string): string => join(stage, 'etc/systemd/system', name);

function verify(...names: string[]): Promise<{ code: number; out: string }> {
  return run('systemd-analyze', ['verify', `--root=${stage}`, ...names.map(unitPath)]);
}

function security(name: string): Promise<{ code: number; out: string }> {
  return run('systemd-analyze', ['security', '--offline=true', `--root=${stage}`, `--threshold=${EXPOSURE_THRESHOLD}`, '--no-pager', unitPath(name)]);
}

/** A copy of an installed unit with one edit, installed beside it under another name. */
function brokenCopy(of: string, edit: (text: string) => string): string {
  const name = `broken-${of}`;
  const text = readFileSync(unitPath(of), 'utf8');
  const changed = edit(text);
  assert.notEqual(changed, text, 'the edit must change the unit');
  writeFileSync(unitPath(name), changed);
  return name;
}

before(async () => {
  stage = mkdtempSync(join(tmpdir(), 'netboot-systemd-'));
  const r = await run(INSTALL, ['--root', stage]);
  assert.equal(r.code, 0, r.out);
  // The units this host's systemd ships (sysinit.target, network-online.target, ...), which
  // verify resolves our dependencies against, inside the staged root.
  cpSync('/usr/lib/systemd/system', join(stage, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
});

after(() => {
  if (stage !== '') rmSync(stage, { recursive: true, force: true });
});

test('install.sh stages the program, the command, a valid default config, the data folder and the units', async () => {
  const program = join(stage, 'opt/netboot/bin/netboot');
  assert.ok(statSync(program).mode & 0o111, 'bin/netboot is executable');
  assert.ok(existsSync(join(stage, 'opt/netboot/node_modules/tsx/dist/loader.mjs')));
  assert.ok(!existsSync(join(stage, 'opt/netboot/.git')) && !existsSync(join(stage, 'opt/netboot/test')));
  assert.equal(readlinkSync(join(stage, 'usr/local/bin/netboot')), '/opt/netboot/bin/netboot');
  assert.ok(statSync(join(stage, 'var/lib/netboot')).isDirectory());
  const conf = join(stage, 'etc/netboot/netboot.toml');
  assert.equal(statSync(conf).mode & 0o777, 0o640);
  const check = await run(program, ['config', 'check', conf]);
  assert.equal(check.code, 0, check.out);
  assert.equal(JSON.parse(check.out.slice(0, check.out.lastIndexOf('}') + 1)).paths.data, '/var/lib/netboot');
  for (const u of UNITS) assert.ok(existsSync(unitPath(u)), u);
});

test('systemd-analyze verify accepts every unit without a single complaint', async () => {
  const r = await verify(...UNITS);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.out, '');
});

test('each unit runs its own service, as netboot, ready by notification', () => {
  for (const s of SERVICES) {
    const text = readFileSync(unitPath(`netboot-${s}.service`), 'utf8');
    assert.match(text, new RegExp(`^ExecStart=/opt/netboot/bin/netboot run ${s} --config /etc/netboot/netboot.toml$`, 'm'));
    assert.match(text, /^Type=notify$/m);
    assert.match(text, /^NotifyAccess=all$/m);
    assert.match(text, /^User=netboot$/m);
    assert.match(text, /^ReadWritePaths=\/var\/lib\/netboot$/m);
  }
  const mtftp = readFileSync(unitPath('netboot-mtftp.service'), 'utf8');
  for (const key of ['BindsTo', 'After', 'PartOf']) assert.match(mtftp, new RegExp(`^${key}=.*\\bnetboot-server\\.service\\b`, 'm'), key);
});

test('verify fails on broken units (so a passing verify means something)', async () => {
  const cases: [string, (t: string) => string, RegExp][] = [
    ['netboot-mtftp.service', (t) => t.replace('BindsTo=netboot-server.service', 'BindsTo=netboot-sever.service'), /netboot-sever\.service not found/],
    ['netboot-server.service', (t) => t.replace(/^ExecStart=.*$/m, ''), /has no ExecStart=/],
    ['netboot-signal.service', (t) => t.replace('/opt/netboot/bin/netboot', '/opt/netboot/bin/netbot'), /not executable/],
    ['netboot-interface.service', (t) => t.replace('Type=notify', 'Type=notfy'), /Failed to parse service type/],
    ['netboot-interface.service', (t) => t.replace('ProtectSystem=strict', 'ProtectSytem=strict'), /Unknown key/],
  ];
  for (const [of, edit, complaint] of cases) {
    const name = brokenCopy(of, edit);
    try {
      const r = await verify(name);
      assert.ok(r.code !== 0 || r.out !== '', `verify accepted ${name}`);
      assert.match(r.out, complaint);
    } finally {
      rmSync(unitPath(name));
    }
  }
});

test('systemd-analyze security rates every service as low exposure; a loosened copy fails', async () => {
  for (const s of SERVICES) {
    const r = await security(`netboot-${s}.service`);
    assert.equal(r.code, 0, r.out.split('\n').slice(-3).join('\n'));
    assert.match(r.out, /Overall exposure level for netboot-\w+\.service: [0-2]\.\d OK/);
  }
  const loose = brokenCopy('netboot-server.service', (t) =>
    t.replace(/^(User|Group|CapabilityBoundingSet|NoNewPrivileges|ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|SystemCallFilter|RestrictNamespaces)=.*$/gm, ''),
  );
  try {
    const r = await security(loose);
    assert.notEqual(r.code, 0, r.out.split('\n').slice(-2).join('\n'));
  } finally {
    rmSync(unitPath(loose));
  }
});

test('install.sh again with another prefix: units follow the prefix, the edited config is kept', async () => {
  const conf = join(stage, 'etc/netboot/netboot.toml');
  const edited = readFileSync(conf, 'utf8').replace('level = "info"', 'level = "debug"');
  writeFileSync(conf, edited);
  const r = await run(INSTALL, ['--root', stage, '--prefix', '/srv/netboot']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /kept the existing/);
  assert.equal(readFileSync(conf, 'utf8'), edited);
  assert.match(readFileSync(unitPath('netboot-server.service'), 'utf8'), /^ExecStart=\/srv\/netboot\/bin\/netboot run server /m);
  assert.equal(readlinkSync(join(stage, 'usr/local/bin/netboot')), '/srv/netboot/bin/netboot');
  const v = await verify(...UNITS);
  assert.equal(v.code, 0, v.out);
  assert.equal(v.out, '');
});

test('install.sh refuses what it cannot do well', async () => {
  const relative = await run(INSTALL, ['--root', stage, '--prefix', 'opt/netboot']);
  assert.equal(relative.code, 1);
  assert.match(relative.out, /--prefix must be an absolute path/);
  const unknown = await run(INSTALL, ['--frobnicate']);
  assert.equal(unknown.code, 2);
});
