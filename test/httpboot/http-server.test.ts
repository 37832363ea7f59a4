// Boot HTTP (services/mtftp/http-server.ts) against the jail, with curl as the client: the same
// root and refusals as TFTP, percent-encoded escapes, Range (206, 416, abuse ignored), `once`
// reports only on a complete GET, bounded connections and slow clients.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import type { BootHooks, FetchedInfo } from '../../services/mtftp/boot-hooks.ts';
import { HttpBootServer, parseRange, requestPath } from '../../services/mtftp/http-server.ts';
import { TftpRoot } from '../../services/mtftp/tftp-root.ts';
import { run } from '../mtftp/helpers.ts';
import { waitFor } from '../helpers/env.ts';

let dir = '';
let server: HttpBootServer;
let base = '';
const fetched: FetchedInfo[] = [];
const big = Buffer.alloc(64 * 1024 * 1024, 0x5a);
const file = Buffer.from('0123456789abcdefghij');

const hooks: BootHooks = {
  async resolveVirtual(path) {
    if (path === 'netboot/52-54-00-00-00-01/boot.ipxe') return { type: 'content', data: Buffer.from('#!ipxe\nexit\n') };
    if (path === 'netboot/52-54-00-00-00-01/image/pe/vmlinuz') return { type: 'file', path: join(dir, 'root', 'kernel') };
    return { type: 'none', reason: 'not a machine we know' };
  },
  fetched: (info) => void fetched.push(info),
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'netboot-httpboot-'));
  const r = join(dir, 'root');
  mkdirSync(join(r, 'boot'), { recursive: true });
  writeFileSync(join(r, 'ipxe.efi'), file);
  writeFileSync(join(r, 'boot', 'BCD'), 'BCD');
  writeFileSync(join(r, 'kernel'), 'KERNEL');
  writeFileSync(join(r, 'big'), big);
  writeFileSync(join(dir, 'secret'), 'SECRET');
  symlinkSync(join(dir, 'secret'), join(r, 'escape'));
  symlinkSync(dir, join(r, 'escape-dir'));
  server = new HttpBootServer({
    bind: '127.0.0.1', port: 0, root: new TftpRoot(r), hooks, log: createMemoryLogger('debug'),
    maxConnections: 64, maxConnectionsPerClient: 4, idleTimeoutMs: 1000, maxResponseMs: 60_000,
  });
  await server.start();
  base = `http://127.0.0.1:${server.port}`;
});

after(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Got { status: number; headers: string; body: string }

/** curl with the path sent as written (no dot-segment removal), headers and body apart. */
async function curl(path: string, ...args: string[]): Promise<Got> {
  const hfile = join(dir, `h-${Math.random().toString(16).slice(2)}`);
  const r = await run('curl', ['-s', '--path-as-is', '-D', hfile, '-o', '-', '-w', '\n%{http_code}', ...args, `${base}${path}`]);
  const out = r.stdout;
  const cut = out.lastIndexOf('\n');
  const { readFileSync } = await import('node:fs');
  const headers = readFileSync(hfile, 'utf8');
  return { status: Number(out.slice(cut + 1)), headers, body: out.slice(0, cut) };
}

function header(got: Got, name: string): string | undefined {
  const m = new RegExp(`^${name}:\\s*(.*?)\\r?$`, 'im').exec(got.headers);
  return m?.[1];
}

test('GET and HEAD of a root file: the bytes, Content-Length, Accept-Ranges', async () => {
  const g = await curl('/ipxe.efi');
  assert.equal(g.status, 200);
  assert.equal(g.body, file.toString());
  assert.equal(header(g, 'content-length'), String(file.length));
  assert.equal(header(g, 'accept-ranges'), 'bytes');
  const h = await curl('/ipxe.efi', '-I');
  assert.equal(h.status, 200);
  assert.equal(header(h, 'content-length'), String(file.length));
  // Case-insensitive look-up, backslashes and a leading double slash, as TFTP clients send them.
  assert.equal((await curl('/BOOT/bcd')).body, 'BCD');
  assert.equal((await curl('/boot%5Cbcd')).body, 'BCD');
  assert.equal((await curl('//ipxe.efi')).body, file.toString());
});

test('path traversal, encoded escapes and symlinks out of the root are refused', async () => {
  const table: [string, number][] = [
    ['/../secret', 403],
    ['/boot/../../secret', 403],
    ['/%2e%2e/secret', 403],
    ['/%2E%2E%2Fsecret', 403],
    ['/boot%2F..%2F..%2Fsecret', 403],
    ['/..%5Csecret', 403],
    ['/%252e%252e/secret', 404], // decoded once: a file literally named %2e%2e does not exist
    ['/boot/bcd%00.txt', 403],
    ['/C:/secret', 403],
    ['/%5C%5Cserver%5Cshare', 404], // leading separators dropped: "server/share" is not there
    ['/%c0%ae%c0%ae/secret', 400], // overlong UTF-8 for '.': not UTF-8
    ['/%zz', 400],
    ['/escape', 404],
    ['/escape-dir/secret', 404],
    ['/boot', 404],
    ['/', 400],
    ['/netboot/52-54-00-00-00-02/boot.ipxe', 404],
    [`/${'a'.repeat(300)}`, 403],
  ];
  for (const [path, status] of table) {
    const g = await curl(path);
    assert.equal(g.status, status, path);
    assert.ok(!g.body.includes('SECRET'), path);
  }
  assert.equal((await curl('/ipxe.efi', '-X', 'POST')).status, 405);
  assert.equal((await curl('/ipxe.efi', '-X', 'PUT', '--data', 'x')).status, 405);
});

test('Range: one range 206, unsatisfiable 416, abuse ignored (whole file, 200)', async () => {
  let g = await curl('/ipxe.efi', '-r', '2-5');
  assert.equal(g.status, 206);
  assert.equal(g.body, '2345');
  assert.equal(header(g, 'content-range'), `bytes 2-5/${file.length}`);
  assert.equal(header(g, 'content-length'), '4');
  g = await curl('/ipxe.efi', '-r', '-3');
  assert.deepEqual([g.status, g.body], [206, 'hij']);
  g = await curl('/ipxe.efi', '-r', '15-');
  assert.deepEqual([g.status, g.body], [206, 'fghij']);
  g = await curl('/ipxe.efi', '-r', '0-99999999999999999999999');
  assert.deepEqual([g.status, g.body], [206, file.toString()]);
  g = await curl('/ipxe.efi', '-r', '20-');
  assert.equal(g.status, 416);
  assert.equal(header(g, 'content-range'), `bytes */${file.length}`);
  assert.equal((await curl('/ipxe.efi', '-r', '-0')).status, 416);
  // Several ranges (a classic amplification), reversed, malformed, other units: the whole file.
  for (const h of ['bytes=0-0,1-1,2-2,3-3', `bytes=${'0-1,'.repeat(2000)}0-1`, 'bytes=5-2', 'bytes=x-y', 'items=0-1', 'bytes=-']) {
    g = await curl('/ipxe.efi', '-H', `Range: ${h}`);
    assert.equal(g.status, 200, h);
    assert.equal(g.body, file.toString(), h);
  }
  assert.deepEqual(parseRange('bytes=0-0', 0), 'unsatisfiable');
  assert.deepEqual(parseRange(undefined, 10), null);
});

test('netboot/ paths go through the boot hooks; only a complete GET is reported (once)', async () => {
  fetched.length = 0;
  const s = await curl('/netboot/52-54-00-00-00-01/boot.ipxe');
  assert.deepEqual([s.status, s.body], [200, '#!ipxe\nexit\n']);
  assert.equal((await curl('/netboot/52-54-00-00-00-01/image/pe/vmlinuz', '-I')).status, 200);
  assert.equal((await curl('/netboot/52-54-00-00-00-01/image/pe/vmlinuz', '-r', '0-2')).status, 206);
  assert.equal(fetched.filter((f) => f.path.endsWith('vmlinuz')).length, 0, 'HEAD and ranges do not consume');
  const k = await curl('/netboot/52-54-00-00-00-01/image/pe/vmlinuz');
  assert.deepEqual([k.status, k.body], [200, 'KERNEL']);
  const report = fetched.find((f) => f.path === 'netboot/52-54-00-00-00-01/image/pe/vmlinuz');
  assert.ok(report);
  assert.equal(report.bytes, 6);
  assert.equal(report.address, '127.0.0.1');
  // Root files are not reported (as with TFTP).
  fetched.length = 0;
  await curl('/ipxe.efi');
  assert.equal(fetched.length, 0);
});

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(server.port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

test('slow clients: unfinished headers, and a client that stops reading, are closed', async () => {
  // Slowloris: a request line and one header, then nothing.
  const a = await open();
  a.on('error', () => undefined);
  a.write('GET /ipxe.efi HTTP/1.1\r\nHost: x\r\n');
  await closed(a);
  // A client that asks for 64 MiB and reads nothing: its buffers fill, the server sees no
  // progress for the idle time and closes; a partial body is never reported as fetched.
  fetched.length = 0;
  const b = await open();
  b.on('error', () => undefined);
  b.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise<void>((resolve) => b.once('data', () => {
    b.pause();
    resolve();
  }));
  // The paused client would not see the end: watch the server let go of it.
  await waitFor('the server to close the non-reading client', () => (server.connections === 0 ? true : undefined), 60_000);
  assert.equal(server.activeResponses, 0);
  assert.equal(fetched.length, 0);
  b.destroy();
});

test('connections per client are bounded: the one past the limit is closed at once', async () => {
  const held = await Promise.all([open(), open(), open(), open()]);
  for (const s of held) s.on('error', () => undefined);
  const extra = await open();
  extra.on('error', () => undefined);
  await closed(extra);
  // The held ones still work.
  const first = held[0]!;
  const reply = new Promise<string>((resolve) => first.once('data', (d: Buffer) => resolve(d.toString())));
  first.write('GET /ipxe.efi HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(await reply, /^HTTP\/1\.1 200/);
  for (const s of held) s.destroy();
  await Promise.all(held.map(closed));
});

test('requestPath: decoded once, leading separators dropped, bad encodings refused', () => {
  assert.deepEqual(requestPath('//grubx64.efi'), { path: 'grubx64.efi' });
  assert.deepEqual(requestPath('/a%20b?x=1'), { path: 'a b' });
  assert.ok('bad' in requestPath('http://evil/x'));
  assert.ok('bad' in requestPath('*'));
  assert.ok('bad' in requestPath('/%E0%A4%A'));
});
