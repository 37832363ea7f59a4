// The PXE server following the real Interface with config.initialDeployment: an unknown machine is
// offered the preboot, `netboot explain` says why, the script the TFTP path resolves to carries
// the enrolment secret the Interface then accepts for that MAC, and after the choice the machine
// boots by its job.
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
const SCRIPT = 'netboot/52-54-00-12-34-56/boot.ipxe';
const INITIAL = {
  preboot: 'lnx', default: 1, timeoutSec: 10,
  items: [{ label: 'Deploy gold', job: { task: 'deploy', preboot: 'lnx', package: 'gold' } }, { label: 'Erase', job: { task: 'erase', preboot: 'lnx' } }],
};

test('an unknown machine boots the initial deployment preboot with its enrolment secret; after its choice, its job', async () => {
  const s = await startSite(snapshots([], { initialDeployment: INITIAL }));
  const c = await Client.open();
  const channel = new ChannelClient(channelSocketPath(s.site.config.paths.data, 'server'));
  const sock = controlSocketPath(s.site.config.paths.data, 'server');
  const explain = () => controlCall<{ decision: { offer?: { reason: string }; none?: string }; chain?: { cannotBoot: string | null } }>(sock, 'GET', `/explain?mac=${MAC}&arch=bios&ipxe=1`);
  const script = async (): Promise<string> => {
    const r = await channel.call<TftpResolution>('tftp.resolve', { path: SCRIPT, address: '127.0.0.1', port: 2000 });
    return Buffer.from((r as { dataBase64: string }).dataBase64, 'base64').toString();
  };
  try {
    await serving(s);
    await waitFor('initialDeployment at the server', async () => ((await explain()).decision.offer?.reason.includes('initialDeployment') ? true : undefined));
    const e = await explain();
    assert.match(e.decision.offer!.reason, /^unknown computer with no client entry gets config\.initialDeployment: boots preboot lnx, whose agent shows 2 item\(s\) \(default "Erase" after 10 s\)/);
    c.send(withXid(IPXE_DISCOVER, 1), s.server.ports!.dhcp);
    assert.equal((await c.reply(1)).packet.file, `http://127.0.0.1:${s.site.config.http.port}/${SCRIPT}`);

    const text = await script();
    const secret = /netboot\.enrol=([0-9a-f]{64})\n/.exec(text)?.[1];
    assert.ok(secret !== undefined, text);
    assert.ok(!text.includes('netboot.job='));
    // The Interface accepts the secret the PXE server made, for this MAC.
    const base = `http://127.0.0.1:${s.iface.boundPort}/agent/enrol`;
    const headers = { authorization: `Bearer ${secret}`, 'content-type': 'application/json' };
    const list = await fetch(`${base}?mac=${MAC}`, { headers });
    assert.equal(list.status, 200);
    assert.equal((await fetch(`${base}?mac=52:54:00:12:34:57`, { headers })).status, 403, 'not for another MAC');
    const post = await fetch(base, { method: 'POST', headers, body: JSON.stringify({ mac: MAC, item: 1, label: 'Erase', inventory: null }) });
    assert.equal(post.status, 200);
    const { jobId, secret: jobSecret } = (await post.json()) as { jobId: string; secret: string };
    await waitFor('the job at the server', async () => ((await explain()).decision.offer?.reason.startsWith(`job ${jobId} (erase)`) ? true : undefined));
    const after = await script();
    assert.match(after, new RegExp(`netboot\\.job=${jobId} netboot\\.secret=${jobSecret}\\n`));
    assert.ok(!after.includes('netboot.enrol'));
  } finally {
    c.close();
    channel.close();
    await s.stop();
  }
});
