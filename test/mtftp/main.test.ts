// The mtftp process as it runs in production: `main` from its own entry point, a config file,
// its control socket, and boot hooks that ask the PXE server over the server's local channel.
// The PXE server is another process; here a ChannelServer on its socket path answers the two
// operations over the real Unix socket.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chooseSendPath, loadNativeLink } from '../../services/mtftp/native-link.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { ChannelServer, channelSocketPath } from '../../platform/local/local-channel.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { makeTestSite, waitFor } from '../helpers/env.ts';
import { ensureNativeBuilt, md5, putFile, run } from './helpers.ts';

ensureNativeBuilt(); // the child process loads the addon: never a stale build

const site = await makeTestSite('', 'netboot-mtftp-main');
const children: ChildProcess[] = [];

after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  site.cleanup();
});

test('main: status on the control socket, virtual paths via the PXE server, fetched reports for them, clean stop', async () => {
  const { config } = site;
  const image = putFile(config.paths.tftpRoot, 'undionly.kpxe', 70_000);
  const script = Buffer.from('#!ipxe\necho hello\n');
  const resolved: unknown[] = [];
  const fetched: unknown[] = [];
  const pxe = new ChannelServer(
    channelSocketPath(config.paths.data, 'server'),
    {
      'tftp.resolve': (body) => {
        resolved.push(body);
        const path = (body as { path: string }).path;
        if (path === 'netboot/m1/boot.ipxe') return { type: 'content', dataBase64: script.toString('base64') };
        if (path === 'netboot/m1/loader') return { type: 'file', path: join(config.paths.tftpRoot, 'undionly.kpxe') };
        return { type: 'none', reason: 'unknown machine' };
      },
      'tftp.fetched': (body) => {
        fetched.push(body);
        return { consumed: false };
      },
    },
    createMemoryLogger(),
  );
  await pxe.start();

  const child = spawn(process.execPath, ['--import', 'tsx', 'services/mtftp/main.ts', '--config', site.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stdout += c.toString()));
  const mtftpSock = controlSocketPath(config.paths.data, 'mtftp');
  const status = await waitFor(
    'mtftp serving',
    async () => {
      try {
        const s = await controlCall<{ state: string; sendPath: string }>(mtftpSock, 'GET', '/status');
        return s.state === 'serving' ? s : undefined;
      } catch {
        return undefined;
      }
    },
    20000,
    100,
  );
  // auto: the best path this machine has (native GSO on any Linux since 4.18 with the addon built).
  const sendPath = chooseSendPath('auto', loadNativeLink()).kind;
  // The stand-in cannot be followed (no tftp.follow): every netboot/ path is asked for.
  // Port 0: the kernel picked the TFTP port; the status says which.
  const tftpPort = (status as unknown as { ports: { tftp: number } }).ports.tftp;
  assert.ok(tftpPort > 0);
  assert.deepEqual(status, { service: 'mtftp', pid: child.pid, state: 'serving', ports: { tftp: tftpPort }, transfers: 0, sendPath, view: 'asking', warnings: [], http: { port: config.http.port, connections: 0, responses: 0 } });

  const port = String(tftpPort);
  const out = join(site.dir, 'dl');
  const get = async (remote: string, dest: string): Promise<number | null> =>
    (await run('atftp', ['--get', '-r', remote, '-l', dest, '--option', 'blksize 1432', '--option', 'tsize 0', '127.0.0.1', port], { timeoutMs: 15000 })).code;

  assert.equal(await get('netboot/m1/boot.ipxe', `${out}-script`), 0);
  assert.equal(readFileSync(`${out}-script`).toString(), script.toString());
  assert.equal(await get('netboot/m1/loader', `${out}-loader`), 0);
  assert.equal(md5(readFileSync(`${out}-loader`)), md5(image));
  assert.notEqual(await get('netboot/zz/boot.ipxe', `${out}-none`), 0);
  assert.equal(await get('undionly.kpxe', `${out}-root`), 0);

  assert.deepEqual(
    resolved.map((r) => (r as { path: string }).path),
    ['netboot/m1/boot.ipxe', 'netboot/m1/loader', 'netboot/zz/boot.ipxe'],
  );
  assert.ok(resolved.every((r) => (r as { address: string }).address === '127.0.0.1' && typeof (r as { port: number }).port === 'number'));
  // Only virtual paths are reported (only they name a machine); the root file was not. A barrier,
  // not a pause: one more virtual path fetched after the root file is reported over the same
  // channel, after any report the root file could have caused.
  assert.equal(await get('netboot/m1/boot.ipxe', `${out}-barrier`), 0);
  await waitFor('fetched reports up to the barrier', () => (fetched.length >= 3 ? true : undefined), 5000);
  assert.equal((fetched.pop() as { path: string }).path, 'netboot/m1/boot.ipxe', 'the barrier came last');
  assert.deepEqual(
    fetched.map((f) => {
      const x = f as { path: string; resolvedPath?: string; bytes: number; address: string };
      return [x.path, x.resolvedPath ?? null, x.bytes, x.address];
    }),
    [
      ['netboot/m1/boot.ipxe', null, script.length, '127.0.0.1'],
      ['netboot/m1/loader', join(config.paths.tftpRoot, 'undionly.kpxe'), 70_000, '127.0.0.1'],
    ],
  );

  // The PXE server restarts: the kept-open connection is gone; the next request gets through
  // on a new one.
  await pxe.stop();
  await pxe.start();
  assert.equal(await get('netboot/m1/boot.ipxe', `${out}-again`), 0);
  assert.equal(readFileSync(`${out}-again`).toString(), script.toString());

  // The PXE server goes away: virtual paths are "file not found", with the reason logged.
  await pxe.stop();
  assert.notEqual(await get('netboot/m1/boot.ipxe', `${out}-down`), 0);
  await waitFor('reason logged', () => (stdout.includes('PXE server did not answer') ? true : undefined), 5000);
  assert.equal(await get('undionly.kpxe', `${out}-root2`), 0, 'root files still served');

  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exit, 0);
  assert.ok(!existsSync(mtftpSock), 'control socket removed');
  assert.match(stdout, /"msg":"TFTP stopped"/);
});

test('main: an invalid config is refused with exit code 2 and every problem listed', async () => {
  const r = await run(process.execPath, ['--import', 'tsx', 'services/mtftp/main.ts', '--config', join(site.dir, 'missing.toml')], { timeoutMs: 20000 });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /missing\.toml: 1 problem\(s\):\n {2}- cannot read/);
});
