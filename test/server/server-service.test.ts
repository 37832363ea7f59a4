// The PXE server over real UDP sockets on loopback, following the REAL Interface service (its
// drop folder, SQLite store and state feed) started in-process. Client packets are the ones real
// firmware sent (fixtures/*.pcap), or built like them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { ChannelClient, channelSocketPath } from '../../platform/local/local-channel.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { decode, encode } from '../../protocols/dhcp/dhcp-codec.ts';
import { DhcpOptions, encodeOption } from '../../protocols/dhcp/dhcp-options.ts';
import type { TftpResolution } from '../../boot/tftp-resolve.ts';
import { explainCommand } from '../../cli/explain-command.ts';
import { parseArgs } from '../../cli/args.ts';
import { metricsText } from '../../platform/metrics/registry.ts';
import { waitFor } from '../helpers/env.ts';
import { readPcapUdp } from './pcap.ts';
import { Client, logged, serving, settled, snapshots, startSite, withXid } from './service-site.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const bios = readPcapUdp(join(FIXTURES, 'bios-ipxe-dnsmasq.pcap'));
const efi = readPcapUdp(join(FIXTURES, 'efi-native-dnsmasq.pcap'));
/** iPXE (BIOS ROM), 52:54:00:12:34:56. */
const IPXE_DISCOVER = bios[0]!.payload;
/** EDK2's own PXE, 52:54:00:12:34:58: DISCOVER on 67, then a boot server request on 4011. */
const EDK2_DISCOVER = efi[0]!.payload;
const EDK2_4011 = efi.find((d) => d.dstPort === 4011)!.payload;
const IPXE_MAC = '52:54:00:12:34:56';
const EDK2_MAC = '52:54:00:12:34:58';

async function portIsFree(port: number): Promise<boolean> {
  const s = createSocket('udp4');
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

test('nothing is bound before config, clients and images arrive; then it serves and says so', async () => {
  const s = await startSite();
  try {
    await waitFor('the feed connection', () => (logged(s.log, 'state feed connected') ? true : undefined));
    s.drop('1-config.sbs', { kind: 'config', config: { respond: 'all', unknown: { type: 'local' }, bootFiles: { bios: 'undionly.kpxe' } } });
    s.drop('2-clients.sbs', { kind: 'clients', clients: [] });
    await waitFor('config and clients applied', () => (logged(s.ifaceLog, 'state feed subscriber') && s.iface.state.state().clients !== null ? true : undefined));
    assert.equal(s.server.state, 'waiting-for-state');
    const status = await controlCall<{ state: string }>(controlSocketPath(s.site.config.paths.data, 'server'), 'GET', '/status');
    assert.equal(status.state, 'waiting-for-state');
    // Port 0 in tests: no port is known before the bind to check from outside; the service's
    // transport holds no socket yet.
    assert.equal(s.server.ports, null, 'no DHCP or proxy socket yet');
    s.drop('3-images.sbs', { kind: 'images', images: [] });
    await serving(s);
    const { dhcp: dhcpPort, proxy: proxyPort } = s.server.ports!;
    assert.ok(dhcpPort > 0 && proxyPort > 0);
    assert.ok(logged(s.log, `state complete; serving on 127.0.0.1:${dhcpPort} and :${proxyPort}`));
    assert.equal(await portIsFree(dhcpPort), false);
    const st = await controlCall<{ state: string; ports: object; address: string; service: string }>(controlSocketPath(s.site.config.paths.data, 'server'), 'GET', '/status');
    assert.deepEqual({ service: st.service, state: st.state, ports: st.ports, address: st.address }, { service: 'server', state: 'serving', ports: { dhcp: dhcpPort, proxy: proxyPort }, address: '127.0.0.1' });
  } finally {
    await s.stop();
  }
});

test('EDK2: DISCOVER gets a proxy offer, the 4011 request an ACK back to its source port', async () => {
  const s = await startSite(snapshots([{ mac: EDK2_MAC, action: { type: 'boot', image: 'lnx', once: true } }]));
  const c = await Client.open();
  try {
    await serving(s);
    c.send(EDK2_DISCOVER, s.server.ports!.dhcp);
    const { packet: offer, from } = await c.reply(decode(EDK2_DISCOVER).xid, 'the proxy offer');
    assert.equal(from.port, s.server.ports!.dhcp, 'answered from the DHCP port');
    assert.equal(offer.op, 2);
    assert.equal(offer.yiaddr, '0.0.0.0', 'proxy: no address');
    assert.equal(offer.siaddr, '127.0.0.1');
    assert.equal(offer.file, 'snponly.efi', 'firmware gets the iPXE build for efi-x64');
    assert.deepEqual(offer.chaddr, decode(EDK2_DISCOVER).chaddr);
    assert.equal(offer.flags, 0x8000, 'broadcast flag kept');
    assert.equal(offer.options.messageType(), 2);
    assert.equal(offer.options.serverId(), '127.0.0.1');
    assert.equal(offer.options.vendorClass(), 'PXEClient');
    assert.deepEqual(offer.options.get(97), decode(EDK2_DISCOVER).options.get(97), 'option 97 echoed');
    assert.equal(offer.options.get(67)?.toString(), 'snponly.efi');
    assert.equal(offer.options.pxeSubOptions()?.discoveryControl(), 0x08, 'boot the file in the offer');

    const request = decode(EDK2_4011);
    c.send(EDK2_4011, s.server.ports!.proxy);
    const { packet: ack, from: ackFrom } = await c.reply(request.xid, 'the 4011 ACK');
    assert.equal(ackFrom.port, s.server.ports!.proxy, 'answered from the proxy port');
    assert.equal(ack.options.messageType(), 5);
    assert.equal(ack.ciaddr, request.ciaddr);
    assert.equal(ack.yiaddr, '0.0.0.0');
    assert.equal(ack.siaddr, '127.0.0.1');
    assert.equal(ack.file, 'snponly.efi');
    assert.equal(ack.options.vendorClass(), 'PXEClient');
    assert.equal(ack.options.serverId(), '127.0.0.1');
  } finally {
    c.close();
    await s.stop();
  }
});

/** The count of netboot_pxe_offer_latency_seconds on `port` in this process's registry. */
async function offerLatencyCount(port: 'dhcp' | 'proxy'): Promise<number> {
  const m = new RegExp(`^netboot_pxe_offer_latency_seconds_count\\{port="${port}"\\} (\\d+)$`, 'm').exec(await metricsText());
  return m === null ? 0 : Number(m[1]);
}

test('every offer\'s latency is observed once, on its port, when many requests arrive together (one clock reading per batch)', async () => {
  const s = await startSite(snapshots([{ mac: EDK2_MAC, action: { type: 'boot', image: 'lnx', once: true } }]));
  const c = await Client.open();
  try {
    await serving(s);
    const [dhcp0, proxy0] = [await offerLatencyCount('dhcp'), await offerLatencyCount('proxy')];
    const n = 40;
    // Sent back to back: on the native path most arrive in batches of several.
    for (let i = 0; i < n; i++) c.send(withXid(EDK2_DISCOVER, 0x5a000000 + i), s.server.ports!.dhcp);
    for (let i = 0; i < n; i++) c.send(withXid(EDK2_4011, 0x5b000000 + i), s.server.ports!.proxy);
    for (let i = 0; i < n; i++) {
      await c.reply(0x5a000000 + i, `offer ${i}`);
      await c.reply(0x5b000000 + i, `ACK ${i}`);
    }
    // Observed when the batch is done, before the transport takes the next datagram.
    assert.equal(await offerLatencyCount('dhcp'), dhcp0 + n);
    assert.equal(await offerLatencyCount('proxy'), proxy0 + n);
  } finally {
    c.close();
    await s.stop();
  }
});

test('iPXE gets its script, not the iPXE binary again; a boot item on 4011 is echoed', async () => {
  const s = await startSite(snapshots([{ mac: IPXE_MAC, action: { type: 'wait' } }]));
  const c = await Client.open();
  try {
    await serving(s);
    c.send(IPXE_DISCOVER, s.server.ports!.dhcp);
    const { packet } = await c.reply(decode(IPXE_DISCOVER).xid);
    // Boot HTTP is on: a running iPXE is offered its script's URL.
    assert.equal(packet.file, `http://127.0.0.1:${s.site.config.http.port}/netboot/52-54-00-12-34-56/boot.ipxe`);
    // iPXE's boot server request after a menu: port 68 style, ciaddr set, option 43/71.
    const p = decode(IPXE_DISCOVER);
    const bsr = encode({ ...p, xid: 0, flags: 0x8000, ciaddr: '127.0.0.1', options: new DhcpOptions([[53, encodeOption.u8(3)], ...[...p.options.entries()].filter(([code]) => code !== 53), [43, Buffer.from([71, 4, 0x80, 0, 0, 0, 255])]]) });
    c.send(bsr, s.server.ports!.proxy);
    const { packet: ack } = await c.reply(0);
    assert.equal(ack.options.messageType(), 5);
    assert.deepEqual(ack.options.pxeSubOptions()?.bootItem(), { type: 0x8000, layer: 0 });
    assert.equal(ack.file, `http://127.0.0.1:${s.site.config.http.port}/netboot/52-54-00-12-34-56/boot.ipxe`);
  } finally {
    c.close();
    await s.stop();
  }
});

test('non-PXE DHCP and malformed packets are dropped with a logged reason; valid clients keep being answered', async () => {
  const s = await startSite(snapshots([{ mac: IPXE_MAC, action: { type: 'wait' } }]));
  const c = await Client.open();
  try {
    await serving(s);
    const p = decode(IPXE_DISCOVER);
    const plain = encode({ ...p, xid: 0xabcdef01, options: p.options.without(60) });
    c.send(plain, s.server.ports!.dhcp);
    c.send(Buffer.from('not dhcp at all'), s.server.ports!.dhcp);
    const broken = withXid(IPXE_DISCOVER, 0x0badf00d);
    broken[240 + 3 + 1] = 200; // option 57's length runs past the end
    c.send(broken, s.server.ports!.dhcp);
    c.send(withXid(IPXE_DISCOVER, 0x600d), s.server.ports!.dhcp);
    await c.reply(0x600d, 'the valid client is answered');
    const ignored = await waitFor('non-PXE reason', () => logged(s.log, 'ignored', (r) => r.xid === 'abcdef01'));
    assert.equal(ignored.level, 'debug');
    assert.equal(ignored.mac, IPXE_MAC);
    assert.equal(ignored.reason, 'not a PXE client (no option 60 PXEClient)');
    const bad = await waitFor('malformed reason', () => logged(s.log, 'packet dropped: malformed', (r) => r.xid === '0badf00d'));
    assert.equal(bad.mac, IPXE_MAC);
    assert.match(String(bad.reason), /option 57 .* overruns/);
    assert.ok(logged(s.log, 'packet dropped: malformed', (r) => String(r.reason).includes('shorter than the 240-byte header')));
    assert.equal(c.count(0xabcdef01) + c.count(0x0badf00d), 0);
  } finally {
    c.close();
    await s.stop();
  }
});

test('once is consumed exactly once: by the fetched kernel, not by offers; the machine is then local durably', async () => {
  const s = await startSite(snapshots([{ mac: IPXE_MAC, action: { type: 'boot', image: 'lnx', once: true } }]));
  const c = await Client.open();
  const channel = new ChannelClient(channelSocketPath(s.site.config.paths.data, 'server'));
  const kernel = 'netboot/52-54-00-12-34-56/image/lnx/lnx/vmlinuz';
  try {
    await serving(s);
    // Offers are retried and lost: each DISCOVER is answered, none consumes anything.
    for (let xid = 1; xid <= 3; xid++) {
      c.send(withXid(IPXE_DISCOVER, xid), s.server.ports!.dhcp);
      assert.equal((await c.reply(xid)).packet.file, `http://127.0.0.1:${s.site.config.http.port}/netboot/52-54-00-12-34-56/boot.ipxe`);
    }
    const script = await channel.call<TftpResolution>('tftp.resolve', { path: 'netboot/52-54-00-12-34-56/boot.ipxe', address: '127.0.0.1', port: 2000 });
    assert.equal(script.type, 'content');
    assert.match(Buffer.from((script as { dataBase64: string }).dataBase64, 'base64').toString(), /^kernel image\/lnx\/lnx\/vmlinuz console=ttyS0/m);
    const file = await channel.call<TftpResolution>('tftp.resolve', { path: `/${kernel}`, address: '127.0.0.1', port: 2000 });
    assert.deepEqual(file, { type: 'file', path: join(s.site.config.paths.tftpRoot, 'lnx/vmlinuz') });
    // The initrd does not consume; the kernel does, once, however often it is fetched.
    assert.deepEqual(await channel.call('tftp.fetched', { path: 'netboot/52-54-00-12-34-56/image/lnx/lnx/initrd.img', address: '127.0.0.1', port: 2000, bytes: 10, durationMs: 1 }), { consumed: false });
    const first = await channel.call<{ consumed: boolean }>('tftp.fetched', { path: kernel, address: '127.0.0.1', port: 2000, bytes: 10, durationMs: 1 });
    const second = await channel.call<{ consumed: boolean }>('tftp.fetched', { path: kernel, address: '127.0.0.1', port: 2001, bytes: 10, durationMs: 1 });
    assert.equal(first.consumed, true);
    assert.equal(second.consumed, false);
    // Immediately local here: no offer, and the script now exits.
    c.send(withXid(IPXE_DISCOVER, 4), s.server.ports!.dhcp);
    await waitFor('no-offer reason', () => logged(s.log, 'no offer', (r) => r.xid === '00000004' && String(r.reason).includes('once boot was consumed') || String(r.reason).includes('action local')));
    // The Interface made it local durably, recorded one event, and the server saw the ack.
    await waitFor('client local in the Interface', () => (s.iface.state.state().clients?.find((x) => x.mac === IPXE_MAC)?.action.type === 'local' ? true : undefined));
    await waitFor('event acknowledged', () => (s.server && !existsSync(join(s.site.config.paths.data, 'server', 'pending-events.json')) || JSON.parse(readFileSync(join(s.site.config.paths.data, 'server', 'pending-events.json'), 'utf8')).length === 0 ? true : undefined));
    const recorded = s.ifaceLog.records.filter((r) => r.msg === 'event recorded' && r.kind === 'pxe-booted');
    assert.equal(recorded.length, 1);
    assert.equal(recorded[0]!.mac, IPXE_MAC);
    assert.equal(recorded[0]!.image, 'lnx');
    assert.equal(c.count(4), 0);
  } finally {
    c.close();
    channel.close();
    await s.stop();
  }
});

test('a pxe-booted event made while the Interface is away is resent with the same eventId when it returns', async () => {
  const s = await startSite(snapshots([{ mac: IPXE_MAC, action: { type: 'boot', image: 'lnx', once: true } }]));
  const sock = controlSocketPath(s.site.config.paths.data, 'server');
  const kernel = 'netboot/52-54-00-12-34-56/image/lnx/lnx/vmlinuz';
  try {
    await serving(s);
    await settled(s.site);
    await s.iface.stop();
    const channel = new ChannelClient(channelSocketPath(s.site.config.paths.data, 'server'));
    const r = await channel.call<{ consumed: boolean; eventId: string }>('tftp.fetched', { path: kernel, address: '127.0.0.1', port: 2000, bytes: 10, durationMs: 1 });
    channel.close();
    assert.equal(r.consumed, true);
    const pending = JSON.parse(readFileSync(join(s.site.config.paths.data, 'server', 'pending-events.json'), 'utf8')) as { eventId: string }[];
    assert.deepEqual(pending.map((p) => p.eventId), [r.eventId]);
    const explain = await controlCall<{ decision: { none?: string } }>(sock, 'GET', `/explain?mac=${IPXE_MAC}&arch=bios&ipxe=1`);
    assert.match(explain.decision.none ?? '', /once boot was consumed/);
    s.iface = buildInterface(s.site.config, s.ifaceLog);
    await s.iface.start();
    await waitFor('the event recorded', () => logged(s.ifaceLog, 'event recorded', (x) => x.eventId === r.eventId));
    await waitFor('client local in the Interface', () => (s.iface.state.state().clients?.find((x) => x.mac === IPXE_MAC)?.action.type === 'local' ? true : undefined));
  } finally {
    await s.stop();
  }
});

test('netboot explain prints the decision and its reason from the running server, and says when it is not running', async () => {
  const s = await startSite(snapshots([{ mac: IPXE_MAC, name: 'LAB-PC-01', action: { type: 'boot', image: 'lnx', once: true } }]));
  const run = async (argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await explainCommand({ args: parseArgs(argv, ['ipxe', 'json']), out: (l) => out.push(l), err: (l) => err.push(l), env: { NETBOOT_CONFIG: s.site.configPath } });
    return { code, out, err };
  };
  try {
    await serving(s);
    // Every file of the chain is there (explain says "cannot boot" when one is missing: test/cli-chain).
    const tftp = s.site.config.paths.tftpRoot;
    mkdirSync(join(tftp, 'lnx'), { recursive: true });
    for (const f of ['snponly.efi', 'lnx/vmlinuz', 'lnx/initrd.img']) writeFileSync(join(tftp, f), f);
    const fw = await run(['52-54-00-12-34-56', '--arch', 'efi-x64']);
    assert.equal(fw.code, 0);
    assert.equal(fw.out[0], '52:54:00:12:34:56 (efi-x64): offered snponly.efi');
    assert.match(fw.out.join('\n'), /why: client "LAB-PC-01" action boot lnx once; efi-x64: firmware gets the iPXE build snponly.efi/);
    const ipxe = await run(['52:54:00:12:34:56', '--ipxe']);
    assert.equal(ipxe.out[0], '52:54:00:12:34:56 (bios, running iPXE): offered netboot/52-54-00-12-34-56/boot.ipxe');
    const unknown = await run(['52:54:00:aa:bb:cc']);
    assert.equal(unknown.out[0], '52:54:00:aa:bb:cc (bios): no offer');
    assert.match(unknown.out[1]!, /unknown computer gets config.unknown \(local\)/);
    await s.server.stop();
    await assert.rejects(run(['52:54:00:12:34:56']), /the PXE server is not running/);
  } finally {
    await s.stop();
  }
});

test('under a stream of random and mutated packets the service keeps answering valid clients', async () => {
  const s = await startSite(snapshots([{ mac: IPXE_MAC, action: { type: 'wait' } }, { mac: EDK2_MAC, action: { type: 'wait' } }]));
  const c = await Client.open();
  try {
    await serving(s);
    let x = 0x2545f491;
    const next = (): number => {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>>= 0);
    };
    const seeds = [IPXE_DISCOVER, EDK2_DISCOVER, EDK2_4011];
    const valid: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(seeds[next() % 3]!);
      for (let k = 0; k < 1 + (next() % 6); k++) b[236 + (next() % (b.length - 236))] = next() & 0xff;
      b.writeUInt32BE(0xf0000000 + i, 4); // never the xid of a valid request
      c.send(next() % 3 === 0 ? b.subarray(0, next() % b.length) : b, next() % 2 === 0 ? s.server.ports!.dhcp : s.server.ports!.proxy);
      if (i % 100 === 0) {
        const xid = 0x7000 + i;
        valid.push(xid);
        c.send(withXid(i % 200 === 0 ? IPXE_DISCOVER : EDK2_DISCOVER, xid), s.server.ports!.dhcp);
      }
      // Part of the scenario: pace the stream, or the kernel's socket buffer, not the service, drops datagrams.
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    for (const xid of valid) assert.equal((await c.reply(xid, `valid request ${xid.toString(16)}`)).packet.options.messageType(), 2);
    assert.equal(s.log.records.filter((r) => r.msg === 'packet dropped: handler failed').length, 0, 'no handler failure, only ProtocolError drops');
    assert.ok(s.log.records.some((r) => r.msg === 'packet dropped: malformed'));
    assert.equal(s.server.state, 'serving');
  } finally {
    c.close();
    await s.stop();
  }
});
