// One answer path (issue 15 item 2): the socket handler, `netboot explain` and the warm-up all
// answer through boot/answer.ts. For a table of requests (firmware captures and made-up ones) the
// running server's reply bytes, its recorded outcome and explain's decision are those the pure
// function gives for the same bytes, arrival and state; and no other module decides or builds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { answer, type AnswerState, type Arrival } from '../../boot/answer.ts';
import { discoverBytes, requestBytes } from '../../boot/sample-request.ts';
import { WARM_UP_REQUESTS, warmUp, warmUpState } from '../../boot/warm-up.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { encode } from '../../protocols/dhcp/dhcp-codec.ts';
import type { Arch } from '../../sbs/types.ts';
import { waitFor } from '../helpers/env.ts';
import { readPcapUdp } from './pcap.ts';
import { Client, serving, snapshots, startSite, withXid } from './service-site.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const bios = readPcapUdp(join(FIXTURES, 'bios-ipxe-dnsmasq.pcap'));
const efi = readPcapUdp(join(FIXTURES, 'efi-native-dnsmasq.pcap'));
const KNOWN = '52:54:00:12:34:56';
const EDK2 = '52:54:00:12:34:58';
const STRANGER = '52:54:00:aa:bb:cc';
const ROOT = join(import.meta.dirname, '..', '..');

interface Row {
  readonly label: string;
  readonly bytes: Buffer;
  readonly port: 'dhcp' | 'proxy';
}

test('socket handler, explain and warm-up: the same answer as the pure function, byte for byte', async () => {
  const s = await startSite(snapshots([
    { mac: KNOWN, name: 'LAB-PC-01', action: { type: 'boot', image: 'lnx', once: false } },
    { mac: EDK2, action: { type: 'boot', image: 'lnx', once: false } },
  ], { respond: 'known' }));
  const client = await Client.open();
  try {
    await serving(s);
    const { dhcp: dhcpPort, proxy: proxyPort } = s.server.ports!;
    const from = { address: '127.0.0.1', port: (client.socket.address()).port };
    // The server's state, as the pure function is given it: [server] address 127.0.0.1 on loopback.
    const chosen = { address: '127.0.0.1', why: '[server] address', subnet: null };
    const state: AnswerState = {
      feed: s.iface.state.state(), consumed: new Set(), replyMode: 'source', isOurs: (a) => a === '127.0.0.1',
      segments: [], forSegment: () => chosen, address: () => chosen, httpPort: s.site.config.http.port,
    };
    const rows: Row[] = [
      { label: 'iPXE DISCOVER (capture)', bytes: withXid(bios[0]!.payload, 0x5101), port: 'dhcp' },
      { label: 'EDK2 DISCOVER (capture)', bytes: withXid(efi[0]!.payload, 0x5102), port: 'dhcp' },
      { label: 'EDK2 boot server request on 4011 (capture)', bytes: withXid(efi.find((d) => d.dstPort === 4011)!.payload, 0x5103), port: 'proxy' },
      { label: 'BIOS firmware DISCOVER', bytes: requestBytes({ mac: KNOWN, arch: 'bios', ipxe: false, giaddr: null, xid: 0x5104 }), port: 'dhcp' },
      { label: 'efi-x64 DISCOVER through a relay', bytes: requestBytes({ mac: KNOWN, arch: 'efi-x64', ipxe: false, giaddr: '10.77.0.1', xid: 0x5105 }), port: 'dhcp' },
      { label: 'iPXE boot server request', bytes: requestBytes({ mac: KNOWN, arch: 'bios', ipxe: true, giaddr: null, type: 'boot-server-request', ciaddr: '127.0.0.1', xid: 0x5106 }), port: 'proxy' },
    ];
    for (const row of rows) {
      const arrival: Arrival = { from, via: row.port };
      const expected = answer(row.bytes, arrival, state);
      assert.equal(expected.kind, 'reply', row.label);
      if (expected.kind !== 'reply') continue;
      const xid = row.bytes.readUInt32BE(4);
      client.send(row.bytes, row.port === 'dhcp' ? dhcpPort : proxyPort);
      const got = await client.reply(xid, row.label);
      assert.deepEqual(encode(got.packet), expected.replies[0]!.bytes, row.label);
    }

    // A machine the policy does not answer: the server records the pure function's reason.
    const stranger = requestBytes({ mac: STRANGER, arch: 'bios', ipxe: false, giaddr: null, xid: 0x5107 });
    const none = answer(stranger, { from, via: 'dhcp' }, state);
    assert.equal(none.kind, 'no-offer');
    client.send(stranger, dhcpPort);
    const sock = controlSocketPath(s.site.config.paths.data, 'server');
    const seen = await waitFor('the stranger recorded', async () => {
      const e = await controlCall<{ lastRequest: { outcome: string } | null }>(sock, 'GET', `/explain?mac=${STRANGER}`);
      return e.lastRequest ?? undefined;
    });
    assert.equal(seen.outcome, `no offer: ${'reason' in none ? none.reason : ''}`);

    // explain: the decision for the DISCOVER the machine would send, through the same function.
    const asks: [string, Arch, boolean, string | null][] = [
      [KNOWN, 'bios', false, null], [KNOWN, 'bios', true, null], [KNOWN, 'efi-x64', false, '10.77.0.1'], [EDK2, 'efi-x64', true, null], [STRANGER, 'bios', false, null],
    ];
    for (const [mac, arch, ipxe, relay] of asks) {
      const e = await controlCall<{ decision: unknown }>(sock, 'GET', `/explain?mac=${mac}&arch=${arch}${ipxe ? '&ipxe=1' : ''}${relay === null ? '' : `&relay=${relay}`}`);
      const a = answer(discoverBytes({ mac, arch, ipxe, giaddr: relay }), { from: { address: relay ?? '0.0.0.0', port: relay === null ? 68 : 67 }, via: 'dhcp' }, state);
      assert.ok(a.kind === 'reply' || a.kind === 'no-offer', `${mac} ${arch}: ${a.kind}`);
      assert.deepEqual(e.decision, JSON.parse(JSON.stringify(a.decision)), `${mac} ${arch} ipxe=${ipxe} relay=${relay}`);
    }
  } finally {
    client.close();
    await s.stop();
  }
});

test('the warm-up runs the answer path on its own state: each of its requests is answered', () => {
  const state = warmUpState('10.0.0.1');
  for (const { bytes, arrival } of WARM_UP_REQUESTS) {
    const a = answer(bytes, arrival, state);
    assert.equal(a.kind, 'reply');
    if (a.kind === 'reply') assert.equal(a.replies[0]!.chosen.address, '10.0.0.1');
  }
  warmUp('10.0.0.1', undefined, 2);
});

test('only boot/answer.ts decides and builds replies: the server, the warm-up and explain call it', () => {
  const callers: string[] = [];
  for (const dir of ['services/server', 'services/mtftp', 'boot', 'cli']) {
    for (const name of readdirSync(join(ROOT, dir))) {
      if (!name.endsWith('.ts')) continue;
      const text = readFileSync(join(ROOT, dir, name), 'utf8');
      if (/\b(decide|buildProxyReply)\(/.test(text.replace(/export function (decide|buildProxyReply)\(/g, ''))) callers.push(`${dir}/${name}`);
    }
  }
  // boot-chain.ts asks the policy what iPXE's second request would get (it follows the chain on
  // paper, with no packet to answer); it builds no reply.
  assert.deepEqual(callers, ['boot/answer.ts', 'boot/boot-chain.ts']);
  assert.doesNotMatch(readFileSync(join(ROOT, 'boot/boot-chain.ts'), 'utf8'), /buildProxyReply\(/);
  for (const file of ['services/server/server-service.ts', 'boot/warm-up.ts']) assert.match(readFileSync(join(ROOT, file), 'utf8'), /\banswer\(/, file);
});
