// The native DHCP sockets (native/udp-batch): bursts taken many datagrams per wake and every one
// answered, bad datagrams inside a batch dropped with their reason while the rest are served, send
// errors isolated, and the fallback to node:dgram. Real UDP on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { join } from 'node:path';
import { chooseIoPath, loadUdpBatch, SLOT_BYTES, type BatchSupport } from '../../services/server/batch-socket.ts';
import { DhcpTransport, type Peer } from '../../services/server/dhcp-transport.ts';
import { buildServer } from '../../services/server/main.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { makeTestSite, waitFor } from '../helpers/env.ts';
import { ensureAddonBuilt } from '../helpers/native-build.ts';
import { readPcapUdp } from './pcap.ts';
import { Client, logged, serving, snapshots, startSite, withXid } from './service-site.ts';

ensureAddonBuilt('udp-batch', 'udp_batch.node');
const IPXE_DISCOVER = readPcapUdp(join(import.meta.dirname, 'fixtures', 'bios-ipxe-dnsmasq.pcap'))[0]!.payload;
const ABSENT: () => BatchSupport = () => ({ ok: false, reason: 'native/udp-batch not built (test)' });

/** The fixture's DISCOVER from machine `i` (its own MAC), with its own xid. */
function discover(i: number, xid: number): Buffer {
  const b = withXid(IPXE_DISCOVER, xid);
  b.writeUInt16BE(0x1000 + i, 32); // chaddr's last two bytes
  return b;
}

function macOf(i: number): string {
  return `52:54:00:12:${[(0x1000 + i) >> 8, (0x1000 + i) & 0xff].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

function status(s: { site: { config: { paths: { data: string } } } }): Promise<{ io: string; batches: { batches: number; datagrams: number; largest: number } | null }> {
  return controlCall(controlSocketPath(s.site.config.paths.data, 'server'), 'GET', '/status');
}

test('a burst of 100 DISCOVERs: taken many per wake, every one answered', async () => {
  const n = 100;
  const s = await startSite(snapshots(Array.from({ length: n }, (_, i) => ({ mac: macOf(i), action: { type: 'wait' } }))));
  const client = await Client.open();
  try {
    await serving(s);
    const before = (await status(s)).batches!;
    // Sent back to back from this process: all queued at the server's socket before it next wakes.
    for (let i = 0; i < n; i++) client.send(discover(i, 0x7a000000 + i), s.server.ports!.dhcp);
    for (let i = 0; i < n; i++) assert.equal((await client.reply(0x7a000000 + i, `the offer for DISCOVER ${i}`)).packet.chaddr.readUInt16BE(4), 0x1000 + i);
    const st = await status(s);
    assert.equal(st.io, 'native');
    const batches = st.batches!.batches - before.batches;
    assert.equal(st.batches!.datagrams - before.datagrams, n, 'every datagram went through a batch');
    assert.ok(batches < n / 4 && st.batches!.largest > 8, `${n} datagrams in ${batches} batches (largest ${st.batches!.largest}): not batched`);
    assert.equal(s.log.records.filter((r) => r.msg === 'DISCOVER answered').length, n);
  } finally {
    client.close();
    await s.stop();
  }
});

test('inside a batch, a malformed, a truncated and an oversize datagram are dropped with their reason; the others are answered', async () => {
  const s = await startSite(snapshots(Array.from({ length: 20 }, (_, i) => ({ mac: macOf(i), action: { type: 'wait' } }))));
  const client = await Client.open();
  try {
    await serving(s);
    const port = s.server.ports!.dhcp;
    const badCookie = discover(50, 0x7b0000aa);
    badCookie.writeUInt32BE(0xdeadbeef, 236);
    // Longer than a receive slot: the kernel hands over only its first SLOT_BYTES.
    const oversize = Buffer.concat([discover(51, 0x7b0000bb), Buffer.alloc(SLOT_BYTES + 904 - IPXE_DISCOVER.length)]);
    for (let i = 0; i < 10; i++) client.send(discover(i, 0x7b000000 + i), port);
    client.send(badCookie, port);
    client.send(discover(52, 0x7b0000cc).subarray(0, 100), port);
    client.send(oversize, port);
    for (let i = 10; i < 20; i++) client.send(discover(i, 0x7b000000 + i), port);
    for (let i = 0; i < 20; i++) await client.reply(0x7b000000 + i, `the offer for DISCOVER ${i}`);
    const drops = await waitFor('three drops', () => {
      const d = s.log.records.filter((r) => r.msg === 'packet dropped: malformed');
      return d.length >= 3 ? d : undefined;
    });
    assert.deepEqual(drops.map((r) => [r.via, r.xid ?? null, r.reason]), [
      ['dhcp', '7b0000aa', 'dhcp: magic cookie must be 63825363, got deadbeef'],
      ['dhcp', '7b0000cc', 'dhcp: packet is 100 bytes, shorter than the 240-byte header'],
      ['dhcp', null, `datagram of ${SLOT_BYTES + 904} bytes is longer than the ${SLOT_BYTES} taken (DHCP requests fit a frame)`],
    ]);
    assert.match(String(drops[2]!.peer), /^127\.0\.0\.1:\d+$/);
    assert.equal(client.count(0x7b0000aa) + client.count(0x7b0000bb) + client.count(0x7b0000cc), 0);
  } finally {
    client.close();
    await s.stop();
  }
});

/** A transport on loopback whose handler answers each datagram through `reply`. */
async function echoTransport(io: 'native' | 'dgram', reply: (t: DhcpTransport, msg: Buffer, from: Peer) => void) {
  const log = createMemoryLogger();
  const t: DhcpTransport = new DhcpTransport({ bind: '127.0.0.1', dhcpPort: 0, proxyPort: 0, ioPath: io }, (msg, from) => reply(t, msg, from), log);
  await t.start();
  assert.equal(t.chooseIoPath().kind, io);
  const peer = createSocket('udp4');
  await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', () => resolve()));
  const got: string[] = [];
  peer.on('message', (m) => got.push(m.toString()));
  return { t, log, peer, got, stop: async () => { peer.close(); await t.stop(); } };
}

function burst(peer: Socket, port: number, names: string[]): void {
  for (const name of names) peer.send(name, port, '127.0.0.1');
}

for (const io of ['native', 'dgram'] as const) {
  test(`${io}: a handler that throws for one datagram of a burst costs that one only; a refused reply costs that reply only`, async () => {
    const e = await echoTransport(io, (t, msg, from) => {
      const text = msg.toString();
      if (text === 'boom') throw new Error('handler bug');
      // A destination the loopback-bound socket cannot reach: the kernel refuses it (EINVAL).
      t.send(Buffer.from(`re ${text}`), text === 'unreachable' ? { address: '192.0.2.1', port: 68 } : from, 'dhcp');
    });
    try {
      const names = Array.from({ length: 30 }, (_, i) => (i === 7 ? 'boom' : i === 12 ? 'unreachable' : `m${i}`));
      burst(e.peer, e.t.ports()!.dhcp, names);
      const want = names.filter((x) => x !== 'boom' && x !== 'unreachable').map((x) => `re ${x}`);
      await waitFor('28 replies', () => (e.got.length >= want.length ? true : undefined));
      assert.deepEqual([...e.got].sort(), [...want].sort());
      const failed = logged(e.log, 'packet dropped: handler failed');
      assert.equal((failed?.err as { message?: string } | undefined)?.message, 'handler bug');
      // node:dgram tells of a refused send only to a per-send callback (a JS call per reply more),
      // so the fallback does not see it; the native path logs it.
      if (io === 'native') assert.match(String(logged(e.log, 'socket error (a reply not sent?)')?.err), /^send EINVAL 192\.0\.2\.1:68 \(Invalid argument\)$/);
    } finally {
      await e.stop();
    }
  });
}

test('native: replies go out after the batch, in order, however many a batch makes', async () => {
  // Three replies per datagram: a batch of 60 makes 180, past one sendmmsg's 64.
  const e = await echoTransport('native', (t, msg, from) => {
    for (const k of [1, 2, 3]) t.send(Buffer.from(`${msg.toString()}.${k}`), from, 'dhcp');
  });
  try {
    burst(e.peer, e.t.ports()!.dhcp, Array.from({ length: 60 }, (_, i) => `m${i}`));
    await waitFor('180 replies', () => (e.got.length >= 180 ? true : undefined));
    assert.deepEqual(e.got, Array.from({ length: 60 }, (_, i) => [1, 2, 3].map((k) => `m${i}.${k}`)).flat());
    assert.ok(e.t.batchStats()!.largest > 1);
  } finally {
    await e.stop();
  }
});

test('io path choice: auto takes the addon when built, dgram when not (saying why); native without it is refused', async () => {
  const built = loadUdpBatch();
  assert.ok(built.ok, 'the addon is built for these tests');
  assert.deepEqual(chooseIoPath('auto', built), { kind: 'native', reason: 'native addon built' });
  assert.deepEqual(chooseIoPath('native', built), { kind: 'native', reason: 'configured' });
  assert.deepEqual(chooseIoPath('dgram', built), { kind: 'dgram', reason: 'configured' });
  assert.deepEqual(chooseIoPath('auto', ABSENT()), { kind: 'dgram', reason: 'native/udp-batch not built (test)' });
  assert.throws(() => chooseIoPath('native', ABSENT()), /^Error: \[server\] io_path = "native": native\/udp-batch not built \(test\)$/);
  // The service refuses to start, rather than retrying a bind that can never work.
  const site = await makeTestSite('[server]\nio_path = "native"', 'netboot-server');
  try {
    const server = buildServer(site.config, createMemoryLogger(), { loadNative: ABSENT });
    await assert.rejects(server.start(), /io_path = "native": native\/udp-batch not built/);
  } finally {
    site.cleanup();
  }
});

test('without the addon (auto): the server serves on node:dgram and says why', async () => {
  const s = await startSite(snapshots([{ mac: macOf(0), action: { type: 'wait' } }]), '[server]\nio_path = "auto"', { loadNative: ABSENT });
  const client = await Client.open();
  try {
    await serving(s);
    assert.equal(s.server.ioPath, 'dgram');
    assert.deepEqual((({ io, ioReason }) => ({ io, ioReason }))(logged(s.log, 'waiting for complete state from the Interface')!), { io: 'dgram', ioReason: 'native/udp-batch not built (test)' });
    client.send(discover(0, 0x7c000001), s.server.ports!.dhcp);
    await client.reply(0x7c000001);
    const st = await status(s);
    assert.equal(st.io, 'dgram');
    assert.equal(st.batches, null);
  } finally {
    client.close();
    await s.stop();
  }
});
