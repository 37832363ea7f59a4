// Real clients against the service on 127.0.0.1: tftp-hpa `tftp` (lock-step, 512), `atftp`
// (blksize, windowsize, tsize) and `curl` (blksize). Every download is compared by md5.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logged, md5, md5File, putFile, rrq, run, ScriptedClient, startService, type RunningService } from './helpers.ts';

let svc: RunningService;
let out = '';
const files = new Map<string, Buffer>();
let seq = 0;

// 0 and 1 byte, exact multiples of 512, 1468 and 8192, odd sizes, and > 65,535 blocks of 512.
const SIZES: Record<string, number> = {
  'zero.bin': 0,
  'one.bin': 1,
  'b512.bin': 512,
  'b1024.bin': 1024,
  'b1468x3.bin': 1468 * 3,
  'b8192x2.bin': 8192 * 2,
  'odd.bin': 100_003,
  'dir/nested.bin': 2000,
};
const BIG = 'big.bin';
const BIG_SIZE = 65_536 * 512 + 100;

before(async () => {
  svc = await startService();
  out = mkdtempSync(join(tmpdir(), 'netboot-mtftp-out-'));
  for (const [name, size] of Object.entries(SIZES)) files.set(name, putFile(svc.root, name, size));
  files.set(BIG, putFile(svc.root, BIG, BIG_SIZE));
  files.set('boot/bcd', putFile(svc.root, 'boot/bcd', 3000));
  writeFileSync(join(out, '..', `netboot-mtftp-secret-${process.pid}`), 'outside the root');
});

after(async () => {
  await svc.stop();
  rmSync(out, { recursive: true, force: true });
  rmSync(join(out, '..', `netboot-mtftp-secret-${process.pid}`), { force: true });
});

function target(): string {
  return join(out, `dl-${++seq}`);
}

function assertSame(name: string, path: string, how: string): void {
  assert.ok(existsSync(path), `${how}: ${name} was not written`);
  assert.equal(md5File(path), md5(files.get(name) as Buffer), `${how}: ${name} differs`);
}

async function hpa(name: string, mode = 'binary'): Promise<string> {
  const dest = target();
  const r = await run('tftp', ['-m', mode, '127.0.0.1', String(svc.port), '-c', 'get', name, dest], { timeoutMs: 30000 });
  assert.equal(r.code, 0, r.stderr);
  return dest;
}

async function atftp(name: string, options: string[]): Promise<string> {
  const dest = target();
  const args = ['--get', '-r', name, '-l', dest, ...options.flatMap((o) => ['--option', o]), '127.0.0.1', String(svc.port)];
  const r = await run('atftp', args, { timeoutMs: 30000 });
  assert.equal(r.code, 0, `atftp ${options.join(', ')}: ${r.stderr}`);
  return dest;
}

async function curl(name: string, extra: string[]): Promise<string> {
  const dest = target();
  const r = await run('curl', ['-sS', '-o', dest, ...extra, `tftp://127.0.0.1:${svc.port}/${name}`], { timeoutMs: 30000 });
  assert.equal(r.code, 0, `curl ${extra.join(' ')}: ${r.stderr}`);
  return dest;
}

test('tftp-hpa (lock-step, 512) fetches every size intact', async () => {
  for (const name of Object.keys(SIZES)) assertSame(name, await hpa(name), 'tftp-hpa');
});

test('atftp with blksize, windowsize and tsize fetches every size intact', async () => {
  const settings = [[], ['tsize 0'], ['timeout 2', 'tsize 0'], ['blksize 1468', 'tsize 0'], ['blksize 1468', 'windowsize 8', 'tsize 0'], ['blksize 8192', 'windowsize 4'], ['blksize 8', 'windowsize 16']];
  for (const options of settings) {
    for (const name of Object.keys(SIZES)) {
      if (options.includes('blksize 8') && (SIZES[name] as number) > 20000) continue; // 8-byte blocks: keep it short
      assertSame(name, await atftp(name, options), `atftp ${options.join(', ')}`);
    }
  }
});

test('curl with --tftp-blksize fetches every size intact', async () => {
  for (const name of Object.keys(SIZES)) {
    // curl refuses an OACK whose tsize is 0 (its quirk); it fetches an empty file without options.
    const extra = SIZES[name] === 0 ? ['--tftp-no-options'] : ['--tftp-blksize', '1024'];
    assertSame(name, await curl(name, extra), `curl ${extra.join(' ')}`);
  }
});

test('a file of more than 65,535 blocks arrives whole (block numbers roll over to 0)', async () => {
  assertSame(BIG, await atftp(BIG, ['blksize 512', 'windowsize 16', 'tsize 0']), 'atftp windowsize 16');
  assertSame(BIG, await hpa(BIG), 'tftp-hpa lock-step');
  const done = logged(svc.log, 'transfer complete', (r) => r.file === BIG);
  assert.equal(done.length, 2);
  assert.ok(done.every((r) => r.bytes === BIG_SIZE));
});

test('netascii: tftp-hpa gets the original text back; the wire carries CR LF and CR NUL', async () => {
  const text = Buffer.from('line one\nline two\r\nbare\rcarriage\n\nend', 'latin1');
  files.set('text.txt', putFile(svc.root, 'text.txt', text));
  assertSame('text.txt', await hpa('text.txt', 'netascii'), 'tftp-hpa netascii');
  const c = await ScriptedClient.open();
  try {
    await c.send(rrq('text.txt', 'netascii'), svc.port);
    const got = await c.next();
    assert.ok(got !== null);
    assert.equal(got.msg.readUInt16BE(0), 3);
    assert.equal(got.msg.subarray(4).toString('latin1'), 'line one\r\nline two\r\0\r\nbare\r\0carriage\r\n\r\nend');
    await c.send(Buffer.from([0, 4, 0, 1]), got.rinfo.port);
  } finally {
    c.close();
  }
});

test('write requests are refused, and nothing is written', async () => {
  const local = join(out, 'upload.bin');
  writeFileSync(local, 'data');
  const r = await run('tftp', ['-m', 'binary', '127.0.0.1', String(svc.port), '-c', 'put', local, 'uploaded.bin'], { timeoutMs: 15000 });
  assert.match(r.stdout + r.stderr, /Access violation/);
  const a = await run('atftp', ['--put', '-l', local, '-r', 'uploaded2.bin', '127.0.0.1', String(svc.port)], { timeoutMs: 15000 });
  assert.notEqual(a.code, 0);
  assert.ok(!existsSync(join(svc.root, 'uploaded.bin')) && !existsSync(join(svc.root, 'uploaded2.bin')));
  assert.ok(logged(svc.log, 'write request refused').length >= 2);
});

test('a missing file: each client gets TFTP error 1, and the reason is logged with the peer', async () => {
  const r = await run('tftp', ['-m', 'binary', '127.0.0.1', String(svc.port), '-c', 'get', 'pxelinux.cfg/01-aa-bb', join(out, 'x')], { timeoutMs: 15000 });
  assert.match(r.stdout + r.stderr, /File not found/);
  const a = await run('atftp', ['--get', '-r', 'nope.bin', '-l', join(out, 'y'), '127.0.0.1', String(svc.port)], { timeoutMs: 15000 });
  assert.notEqual(a.code, 0);
  const c = await run('curl', ['-sS', '-o', join(out, 'z'), `tftp://127.0.0.1:${svc.port}/nope2.bin`], { timeoutMs: 15000 });
  assert.notEqual(c.code, 0);
  for (const file of ['pxelinux.cfg/01-aa-bb', 'nope.bin', 'nope2.bin']) {
    const rec = logged(svc.log, 'request refused', (x) => x.file === file);
    assert.equal(rec.length, 1, file);
    assert.match(String(rec[0]?.peer), /^127\.0\.0\.1:\d+$/);
    assert.match(String(rec[0]?.reason), /no such file/);
  }
});

test('Windows boot manager paths: \\Boot\\BCD in another case resolves to boot/bcd', async () => {
  const dest = target();
  const r = await run('atftp', ['--get', '-r', '\\Boot\\BCD', '-l', dest, '--option', 'blksize 1456', '127.0.0.1', String(svc.port)], { timeoutMs: 15000 });
  assert.equal(r.code, 0, r.stderr);
  assertSame('boot/bcd', dest, 'atftp \\Boot\\BCD');
  assertSame('boot/bcd', await hpa('\\BOOT\\bcd'), 'tftp-hpa \\BOOT\\bcd');
});

test('traversal corpus over the wire: every request is refused with a logged reason, nothing is sent', async () => {
  const secret = `netboot-mtftp-secret-${process.pid}`;
  symlinkSync(join(out, '..', secret), join(svc.root, 'link-out'));
  symlinkSync('/etc', join(svc.root, 'etc-link'));
  execFileSync('mknod', [join(svc.root, 'zero-device'), 'c', '1', '5']);
  execFileSync('mkfifo', [join(svc.root, 'a-fifo')]);
  const corpus: (string | Buffer)[] = [
    'link-out',
    'etc-link/passwd',
    'ETC-LINK/hostname',
    'zero-device',
    'a-fifo',
    `../${secret}`,
    `/../${secret}`,
    `dir/../../${secret}`,
    `..\\${secret}`,
    `\\..\\${secret}`,
    `..%2f${secret}`,
    `%2e%2e%2f${secret}`,
    `${out}/../${secret}`,
    join(out, '..', secret),
    '/etc/passwd',
    '\\\\server\\share\\file',
    'C:\\Windows\\System32\\config\\SAM',
    `${'deep/'.repeat(300)}x`,
    'y'.repeat(300),
    Buffer.from('one.bin\0../../etc/passwd', 'latin1'),
    Buffer.from([0xff, 0xfe, 0x2e, 0x2e]),
  ];
  const c = await ScriptedClient.open();
  try {
    for (const name of corpus) {
      const before = svc.log.records.length;
      await c.send(rrq(name), svc.port);
      const got = await c.next(typeof name === 'string' ? 3000 : 300);
      // A malformed request (the NUL one decodes into a bad option list) is dropped unanswered.
      if (typeof name === 'string') assert.ok(got !== null, `no answer for ${name}`);
      if (got !== null) assert.equal(got.msg.readUInt16BE(0), 5, `${String(name)} got opcode ${got.msg.readUInt16BE(0)}`);
      const refusal = svc.log.records.slice(before).find((r) => r.msg === 'request refused' || r.msg === 'dropped malformed datagram');
      assert.ok(refusal !== undefined, `no logged refusal for ${String(name)}`);
      assert.equal(refusal.peer, `127.0.0.1:${c.port}`);
      assert.ok(typeof refusal.reason === 'string' && refusal.reason.length > 0);
    }
  } finally {
    c.close();
  }
  const hp = await run('tftp', ['-m', 'binary', '127.0.0.1', String(svc.port), '-c', 'get', `../${secret}`, join(out, 'stolen')], { timeoutMs: 15000 });
  assert.match(hp.stdout + hp.stderr, /Access violation/);
  assert.ok(!existsSync(join(out, 'stolen')) || readFileSync(join(out, 'stolen')).length === 0);
});
