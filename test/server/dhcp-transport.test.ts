// Where replies go: a pure decision, as a table. And the multi-homed transport's sockets, on
// loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { DhcpTransport, defaultReplyMode, replyDestination } from '../../services/server/dhcp-transport.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { waitFor } from '../helpers/env.ts';

const FROM_68 = { address: '0.0.0.0', port: 68 };
const FROM_4011 = { address: '10.0.0.50', port: 4011 };
const FROM_RELAY = { address: '10.91.0.254', port: 67 };

test('reply destinations', () => {
  const rows: [string, { ciaddr: string; giaddr: string }, { address: string; port: number }, 'dhcp' | 'proxy', 'broadcast' | 'source', unknown][] = [
    ['DISCOVER without an address: broadcast to 68', { ciaddr: '0.0.0.0', giaddr: '0.0.0.0' }, FROM_68, 'dhcp', 'broadcast', { address: '255.255.255.255', port: 68 }],
    ['client with an address on 67: unicast to ciaddr:68', { ciaddr: '10.0.0.50', giaddr: '0.0.0.0' }, { address: '10.0.0.50', port: 68 }, 'dhcp', 'broadcast', { address: '10.0.0.50', port: 68 }],
    ['4011 from 4011 (EDK2): back to the source port', { ciaddr: '10.0.0.50', giaddr: '0.0.0.0' }, FROM_4011, 'proxy', 'broadcast', FROM_4011],
    ['4011 from 68 (iPXE): back to the source port', { ciaddr: '10.0.0.50', giaddr: '0.0.0.0' }, { address: '10.0.0.50', port: 68 }, 'proxy', 'broadcast', { address: '10.0.0.50', port: 68 }],
    ['loopback (source mode): back to the source', { ciaddr: '0.0.0.0', giaddr: '0.0.0.0' }, { address: '127.0.0.1', port: 5555 }, 'dhcp', 'source', { address: '127.0.0.1', port: 5555 }],
    // RFC 2131 4.1: to the relay agent named in giaddr, on the server port, whoever forwarded it.
    ['relayed DISCOVER: to giaddr:67', { ciaddr: '0.0.0.0', giaddr: '10.92.0.1' }, FROM_RELAY, 'dhcp', 'broadcast', { address: '10.92.0.1', port: 67 }],
    ['relayed, client with an address: still to giaddr:67', { ciaddr: '10.92.0.150', giaddr: '10.92.0.1' }, FROM_RELAY, 'dhcp', 'broadcast', { address: '10.92.0.1', port: 67 }],
    ['relayed through a second relay: giaddr, not the source', { ciaddr: '0.0.0.0', giaddr: '10.92.0.1' }, { address: '10.80.0.1', port: 67 }, 'dhcp', 'broadcast', { address: '10.92.0.1', port: 67 }],
    ['relayed on 4011 (a UDP helper forwarding 4011 as such): back to the source', { ciaddr: '10.92.0.150', giaddr: '10.92.0.1' }, { address: '10.92.0.150', port: 4011 }, 'proxy', 'broadcast', { address: '10.92.0.150', port: 4011 }],
    ['relayed in source mode: back to the source', { ciaddr: '0.0.0.0', giaddr: '10.92.0.1' }, { address: '127.0.0.1', port: 5555 }, 'dhcp', 'source', { address: '127.0.0.1', port: 5555 }],
  ];
  for (const [label, request, from, via, mode, expected] of rows) assert.deepEqual(replyDestination(request, from, via, mode), expected, label);
  assert.equal(defaultReplyMode('127.0.0.1'), 'source');
  assert.equal(defaultReplyMode('0.0.0.0'), 'broadcast');
});

test('segment sockets: bound beside the wildcard socket, unicasts to a segment address arrive, replies leave from it; a second server still fails to bind', async () => {
  const got: { msg: string; from: string; via: string }[] = [];
  const log = createMemoryLogger();
  const handler = (m: Buffer, from: { address: string; port: number }, via: string): void => void got.push({ msg: m.toString(), from: `${from.address}:${from.port}`, via });
  const lo = { name: 'lo', address: '127.0.0.1' };
  const t = new DhcpTransport({ bind: '0.0.0.0', dhcpPort: 0, proxyPort: 0, segments: () => [lo, { name: 'gone0', address: '192.0.2.77' }] }, handler, log);
  const peer = createSocket('udp4');
  try {
    await t.start();
    const port = t.ports()!.dhcp; // the kernel's pick: the segment sockets share it
    assert.ok(port > 0);
    assert.deepEqual(t.segments(), [lo], 'a segment whose address cannot be bound is left out');
    assert.match(String(log.records.find((r) => String(r.msg).startsWith('no broadcast replies on this segment'))?.segment), /gone0/);
    await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', () => resolve()));
    const replies: string[] = [];
    peer.on('message', (m, r) => replies.push(`${m.toString()} from ${r.address}:${r.port}`));
    peer.send('relayed request', port, '127.0.0.1');
    await waitFor('the request', () => (got.length > 0 ? true : undefined));
    assert.deepEqual(got, [{ msg: 'relayed request', from: `127.0.0.1:${peer.address().port}`, via: 'dhcp' }]);
    t.sendOnSegment(Buffer.from('offer'), { address: '127.0.0.1', port: peer.address().port }, t.segments()[0]!);
    await waitFor('the reply', () => (replies.length > 0 ? true : undefined));
    assert.deepEqual(replies, [`offer from 127.0.0.1:${port}`], 'sent from the segment socket: the DHCP port, the segment address');
    // The probe bind (no SO_REUSEADDR) keeps a second server from sharing the port silently.
    const second = new DhcpTransport({ bind: '0.0.0.0', dhcpPort: port, proxyPort: 0, segments: () => [lo] }, handler, log);
    await assert.rejects(second.start(), /EADDRINUSE/);
  } finally {
    peer.close();
    await t.stop();
  }
});
