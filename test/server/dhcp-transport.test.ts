// Where replies go, and which address is advertised: pure decisions, as tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultReplyMode, replyDestination } from '../../services/server/dhcp-transport.ts';
import { advertisedAddresses, pickAddress } from '../../services/server/server-address.ts';
import { ConfigError } from '../../services/shared/errors.ts';

const FROM_68 = { address: '0.0.0.0', port: 68 };
const FROM_4011 = { address: '10.0.0.50', port: 4011 };

test('reply destinations', () => {
  const rows: [string, { ciaddr: string; giaddr: string }, { address: string; port: number }, 'dhcp' | 'proxy', 'broadcast' | 'source', unknown][] = [
    ['DISCOVER without an address: broadcast to 68', { ciaddr: '0.0.0.0', giaddr: '0.0.0.0' }, FROM_68, 'dhcp', 'broadcast', { address: '255.255.255.255', port: 68 }],
    ['client with an address on 67: unicast to ciaddr:68', { ciaddr: '10.0.0.50', giaddr: '0.0.0.0' }, { address: '10.0.0.50', port: 68 }, 'dhcp', 'broadcast', { address: '10.0.0.50', port: 68 }],
    ['4011 from 4011 (EDK2): back to the source port', { ciaddr: '10.0.0.50', giaddr: '0.0.0.0' }, FROM_4011, 'proxy', 'broadcast', FROM_4011],
    ['4011 from 68 (iPXE): back to the source port', { ciaddr: '10.0.0.50', giaddr: '0.0.0.0' }, { address: '10.0.0.50', port: 68 }, 'proxy', 'broadcast', { address: '10.0.0.50', port: 68 }],
    ['loopback (source mode): back to the source', { ciaddr: '0.0.0.0', giaddr: '0.0.0.0' }, { address: '127.0.0.1', port: 5555 }, 'dhcp', 'source', { address: '127.0.0.1', port: 5555 }],
    ['relayed: not yet answered', { ciaddr: '0.0.0.0', giaddr: '10.1.0.1' }, { address: '10.1.0.1', port: 67 }, 'dhcp', 'broadcast', { drop: 'relayed via 10.1.0.1: relay agents are not supported yet' }],
  ];
  for (const [label, request, from, via, mode, expected] of rows) assert.deepEqual(replyDestination(request, from, via, mode), expected, label);
  assert.equal(defaultReplyMode('127.0.0.1'), 'source');
  assert.equal(defaultReplyMode('0.0.0.0'), 'broadcast');
});

const server = (address: string | null, iface: string | null) => ({ address, interface: iface, bind: '0.0.0.0', dhcpPort: 67, proxyPort: 4011 });
const IFACES = {
  eth0: [
    { address: '10.0.0.1', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: '' },
    { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '', internal: false, cidr: '', scopeid: 2 },
    { address: '192.168.5.1', netmask: '255.255.0.0', family: 'IPv4', mac: '', internal: false, cidr: '' },
  ],
} as const;

test('advertised address: configured, else the interface IPv4 addresses; with several, the one in the client subnet', () => {
  assert.deepEqual(advertisedAddresses(server('10.9.9.9', 'eth0'), 'cfg', IFACES as never), [{ address: '10.9.9.9', prefix: 32 }]);
  const list = advertisedAddresses(server(null, 'eth0'), 'cfg', IFACES as never);
  assert.deepEqual(list, [{ address: '10.0.0.1', prefix: 24 }, { address: '192.168.5.1', prefix: 16 }]);
  assert.equal(pickAddress(list, '0.0.0.0'), '10.0.0.1', 'broadcast DISCOVER: the first');
  assert.equal(pickAddress(list, '192.168.77.3'), '192.168.5.1', 'ciaddr in the second subnet');
  assert.equal(pickAddress(list, '172.16.0.1'), '10.0.0.1', 'no match: the first');
  assert.throws(() => advertisedAddresses(server(null, 'wlan9'), 'cfg', IFACES as never), (e: unknown) => e instanceof ConfigError && /wlan9.*no IPv4 address/.test(e.message));
  assert.throws(() => advertisedAddresses(server(null, null), 'cfg', IFACES as never), /one is required/);
});
