// MTFTP following the PXE server's view, against the real server (and the real Interface behind
// it) in-process, over the real local channel: netboot/ paths are answered from the copy without a
// question to the server; an instruction dropped later reaches the copy; the completed kernel fetch
// of a once boot turns the next script into `exit`; with the server gone the copy is dropped and
// requests are asked for, and the copy comes back with the server.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { serverBootHooks } from '../../services/mtftp/boot-hooks.ts';
import { buildMtftp } from '../../services/mtftp/main.ts';
import { ServerView } from '../../services/mtftp/server-view.ts';
import { buildServer } from '../../services/server/main.ts';
import { ChannelClient, channelSocketPath } from '../../platform/local/local-channel.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { waitFor } from '../helpers/env.ts';
import { serving, snapshots, startSite } from '../server/service-site.ts';
import { md5, putFile, ScriptedClient, scriptedDownload } from './helpers.ts';

const MAC = '52:54:00:12:34:56';
const DIR = 'netboot/52-54-00-12-34-56';
const s = await startSite(snapshots([{ mac: MAC, action: { type: 'boot', image: 'lnx', once: true } }]));
await serving(s);
const { config } = s.site;
const kernel = putFile(config.paths.tftpRoot, 'lnx/vmlinuz', 30_000);
const mlog = createMemoryLogger('debug');
const channel = new ChannelClient(channelSocketPath(config.paths.data, 'server'));
const view = new ServerView(channel, { tftpRoot: config.paths.tftpRoot, data: config.paths.data }, mlog);
const mtftp = buildMtftp({ ...config, mtftp: { ...config.mtftp, port: 0 } }, mlog, serverBootHooks(channel, view, mlog));
await view.start();
await mtftp.start();
const client = await ScriptedClient.open();

after(async () => {
  client.close();
  await mtftp.stop();
  await view.stop();
  channel.close();
  await s.stop();
});

const asked = (): number => s.log.records.filter((r) => r.msg === 'tftp path resolved').length;
const script = async (): Promise<string> => (await scriptedDownload(client, mtftp.port, `${DIR}/boot.ipxe`, { blksize: '1432', tsize: '0' })).data.toString();

test('netboot/ paths come from the copy of the server\'s view, with no question to the server; changes reach it', async () => {
  await waitFor('the view', () => (view.current ? true : undefined));
  const before = asked();
  assert.match(await script(), /^kernel image\/lnx\/lnx\/vmlinuz console=ttyS0/m);
  assert.equal(asked(), before, 'the server was not asked');
  s.drop('4-client.sbs', { kind: 'client', client: { mac: MAC, action: { type: 'wait' } } });
  await waitFor('the wait script', async () => ((await script()).includes('is waiting for instructions') ? true : undefined), 10000, 100);
  s.drop('5-client.sbs', { kind: 'client', client: { mac: MAC, action: { type: 'boot', image: 'lnx', once: true } } });
  await waitFor('the boot script again', async () => ((await script()).includes('kernel ') ? true : undefined), 10000, 100);
  assert.equal(asked(), before, 'still not asked');
});

test('a once boot: the completed kernel fetch consumes it at the server, and the copy shows it at once', async () => {
  const got = await scriptedDownload(client, mtftp.port, `${DIR}/image/lnx/lnx/vmlinuz`, { blksize: '1432' });
  assert.equal(md5(got.data), md5(kernel));
  await waitFor('consumed at the server', () => (s.log.records.some((r) => r.msg === 'once boot consumed: machine is now local' && r.mac === MAC) ? true : undefined));
  await waitFor('the exit script', async () => ((await script()).includes('exit') ? true : undefined), 5000, 20);
  assert.match(await script(), /once boot was consumed|action local/);
  // An image the state does not have is refused from the copy as by the server.
  await assert.rejects(scriptedDownload(client, mtftp.port, `${DIR}/image/nope/x`), /File not found/);
});

test('server gone: the copy is dropped and requests are asked for (and refused); it comes back with the server', async () => {
  await s.server.stop();
  await waitFor('copy dropped', () => (!view.current ? true : undefined));
  assert.ok(mlog.records.some((r) => r.msg === 'lost the PXE server\'s view; asking per request until it is back'));
  await assert.rejects(scriptedDownload(client, mtftp.port, `${DIR}/boot.ipxe`), /File not found/);
  assert.ok(mlog.records.some((r) => r.msg === 'request refused' && /PXE server did not answer/.test(String(r.reason))));
  s.server = buildServer(config, s.log);
  await s.server.start();
  await serving(s);
  await waitFor('copy back', () => (view.current ? true : undefined), 15000, 50);
  assert.match(await script(), /once boot was consumed|action local/, 'the consumed once survived the restart');
});
