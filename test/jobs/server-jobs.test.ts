// The PXE server following the real Interface with an imaging job: the machine is offered its
// job's preboot although its client action is local, `netboot explain` says why, its script
// carries the job's secret, the preboot's kernel fetch consumes the job's boot (not the client's),
// and after the job completes the machine gets `then`.
import { BOOT_SETTINGS } from '../../boot/ipxe-script.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TftpResolution } from '../../boot/tftp-resolve.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { ChannelClient, channelSocketPath } from '../../platform/local/local-channel.ts';
import { waitFor } from '../helpers/env.ts';
import { readPcapUdp } from '../server/pcap.ts';
import { Client, serving, snapshots, startSite, withXid } from '../server/service-site.ts';

const IPXE_DISCOVER = readPcapUdp(join(import.meta.dirname, '..', 'server', 'fixtures', 'bios-ipxe-dnsmasq.pcap'))[0]!.payload;
const MAC = '52:54:00:12:34:56';
const JOB = 'a1b2c3d4-0000-4000-8000-00000000c0de';
const SCRIPT = 'netboot/52-54-00-12-34-56/boot.ipxe';
const KERNEL = 'netboot/52-54-00-12-34-56/image/lnx/lnx/vmlinuz';

test('a job overrides the client action at the PXE server until it ends; its preboot boot is consumed once', async () => {
  const s = await startSite((drop) => {
    snapshots([{ mac: MAC, action: { type: 'local' } }])(drop);
    const then = { type: 'boot', image: 'lnx', once: false };
    drop('4-job.sbs', { kind: 'job', job: { jobId: JOB, mac: MAC, task: 'deploy', preboot: 'lnx', package: 'gold', then } });
  });
  const c = await Client.open();
  const channel = new ChannelClient(channelSocketPath(s.site.config.paths.data, 'server'));
  const sock = controlSocketPath(s.site.config.paths.data, 'server');
  const explain = () => controlCall<{ decision: { offer?: { reason: string }; none?: string } }>(sock, 'GET', `/explain?mac=${MAC}&arch=bios&ipxe=1`);
  try {
    await serving(s);
    await waitFor('the job at the server', async () => ((await explain()).decision.offer?.reason.includes(`job ${JOB}`) ? true : undefined));
    assert.match((await explain()).decision.offer!.reason, new RegExp(`^job ${JOB} \\(deploy\\): boots preboot lnx`));
    c.send(withXid(IPXE_DISCOVER, 1), s.server.ports!.dhcp);
    assert.equal((await c.reply(1)).packet.file, `http://127.0.0.1:${s.site.config.http.port}/${SCRIPT}`, 'offered although the client action is local');

    const script = await channel.call<TftpResolution>('tftp.resolve', { path: SCRIPT, address: '127.0.0.1', port: 2000 });
    const text = Buffer.from((script as { dataBase64: string }).dataBase64, 'base64').toString();
    const secret = s.iface.state.state().jobs![0]!.secret;
    assert.equal(text.split('\n').find((l) => l.startsWith('kernel ')), `kernel image/lnx/lnx/vmlinuz console=ttyS0 ${BOOT_SETTINGS.join(' ')} initrd=i0-initrd.img netboot.job=${JOB} netboot.secret=${secret}`);

    const fetched = await channel.call<{ consumed: boolean }>('tftp.fetched', { path: KERNEL, address: '127.0.0.1', port: 2000, bytes: 10, durationMs: 1 });
    assert.equal(fetched.consumed, true);
    assert.match((await explain()).decision.offer?.reason ?? '', /already booted for it, so the machine waits/);
    await waitFor('the job booted at the Interface', () => (s.iface.jobs.get(JOB)?.booted === true ? true : undefined));
    assert.deepEqual(s.iface.state.state().clients?.find((x) => x.mac === MAC)?.action, { type: 'local' }, 'the client entry is not consumed');

    assert.ok(s.iface.jobs.report(secret, JOB, { kind: 'started' }).ok);
    assert.ok(s.iface.jobs.report(secret, JOB, { kind: 'completed', result: { package: 'gold', bytesWritten: 1, bytesTransferred: 1, seconds: 1 } }).ok);
    await waitFor('then at the server', async () => ((await explain()).decision.offer?.reason.startsWith('client action boot lnx') === true ? true : undefined));
  } finally {
    c.close();
    channel.close();
    await s.stop();
  }
});
