import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normalizeRequestPath, TftpRoot } from '../../services/mtftp/tftp-root.ts';

let dir = '';
let root: TftpRoot;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'netboot-mtftp-root-'));
  const r = join(dir, 'root');
  mkdirSync(join(r, 'boot', 'Fonts'), { recursive: true });
  mkdirSync(join(r, 'Sub', 'Deeper'), { recursive: true });
  writeFileSync(join(r, 'boot', 'bcd'), 'BCD');
  writeFileSync(join(r, 'boot', 'Fonts', 'wgl4_boot.ttf'), 'font');
  writeFileSync(join(r, 'Sub', 'Deeper', 'File.TXT'), 'deep');
  writeFileSync(join(r, 'pxelinux.0'), 'pxe');
  writeFileSync(join(dir, 'secret'), 'outside');
  symlinkSync(join(dir, 'secret'), join(r, 'escape'));
  symlinkSync('../secret', join(r, 'escape-relative'));
  symlinkSync(dir, join(r, 'escape-dir'));
  symlinkSync('pxelinux.0', join(r, 'inside-link'));
  symlinkSync('/dev/zero', join(r, 'zero-link'));
  execFileSync('mkfifo', [join(r, 'fifo')]);
  execFileSync('mknod', [join(r, 'zero'), 'c', '1', '5']);
  root = new TftpRoot(r);
});

after(() => rmSync(dir, { recursive: true, force: true }));

async function content(requested: string): Promise<string> {
  const r = root.open(requested);
  assert.ok(r.ok, `${requested}: ${r.ok ? '' : r.reason}`);
  try {
    return readFileSync(r.fd).toString();
  } finally {
    closeSync(r.fd);
  }
}

async function refusal(requested: string): Promise<{ code: number; reason: string }> {
  const r = root.open(requested);
  if (r.ok) {
    closeSync(r.fd);
    assert.fail(`${JSON.stringify(requested)} was served (${r.realPath})`);
  }
  return { code: r.code, reason: r.reason };
}

test('plain, leading-separator and Windows paths resolve inside the root', async () => {
  assert.equal(await content('pxelinux.0'), 'pxe');
  assert.equal(await content('/pxelinux.0'), 'pxe');
  assert.equal(await content('\\Boot\\BCD'), 'BCD');
  assert.equal(await content('/boot\\fonts/WGL4_BOOT.TTF'), 'font');
  assert.equal(await content('sub/deeper/file.txt'), 'deep');
  assert.equal(await content('./boot//bcd'), 'BCD');
  assert.equal(await content('inside-link'), 'pxe');
});

test('string-level refusals never touch the file system, and say why', () => {
  const table: [string, string][] = [
    ['../secret', 'parent directory (..) in path'],
    ['boot/../../secret', 'parent directory (..) in path'],
    ['..\\secret', 'parent directory (..) in path'],
    ['\\\\server\\share\\x', 'UNC path'],
    ['//etc/passwd', 'UNC path'],
    ['C:\\Windows\\win.ini', 'drive-letter path'],
    ['c:/x', 'drive-letter path'],
    ['a\0b', 'NUL byte in path'],
    ['/', 'empty path'],
    ['.', 'empty path'],
    ['x'.repeat(256), 'path segment longer than 255 bytes'],
    ['a/'.repeat(600), 'path longer than 1024 bytes'],
  ];
  for (const [requested, reason] of table) {
    const r = normalizeRequestPath(requested);
    assert.deepEqual(r, { ok: false, code: 2, reason }, JSON.stringify(requested));
  }
});

test('traversal corpus: nothing outside the root is ever opened', async () => {
  const outside = [
    '../secret',
    '/../secret',
    'boot/../../secret',
    '..%2fsecret',
    '%2e%2e/secret',
    '..%5csecret',
    '....//secret',
    `${dir}/secret`,
    '/etc/passwd',
    '/etc/shadow',
    'escape',
    'escape-relative',
    'escape-dir/secret',
    'ESCAPE-DIR/SECRET',
    'zero',
    'zero-link',
    'fifo',
    'boot',
    'boot/',
    'missing',
    'boot/missing/x',
    'pxelinux.0/x',
  ];
  for (const requested of outside) {
    const r = await refusal(requested);
    assert.ok(r.code === 1 || r.code === 2, `${requested}: code ${r.code}`);
    assert.ok(r.reason.length > 0);
  }
  assert.match((await refusal('escape')).reason, /resolves outside the TFTP root/);
  assert.match((await refusal('escape-dir/secret')).reason, /resolves outside the TFTP root/);
  assert.match((await refusal('zero')).reason, /is a character device/);
  assert.match((await refusal('zero-link')).reason, /is a character device/);
  assert.match((await refusal('fifo')).reason, /is a FIFO/);
  assert.match((await refusal('boot')).reason, /is a directory/);
  assert.match((await refusal('missing')).reason, /no such file/);
});

test('a missing root is a refusal, not a crash', async () => {
  const r = new TftpRoot(join(dir, 'nope')).open('x');
  assert.equal(r.ok, false);
});
