// Which boot server address a client is given: per subnet, configured, the interface's, or the
// route toward the relay or client; as tables, with the route lookups counted. And the real
// lookup (a connected UDP socket) on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText, type Config } from '../../platform/runtime/config.ts';
import { ConfigError } from '../../platform/runtime/errors.ts';
import { routeSource } from '../../services/server/route-source.ts';
import { ServerAddresses, type AddressTarget, type Chosen } from '../../services/server/server-address.ts';

function serverConfig(toml: string): Config['server'] {
  return parseConfigText(toml, 'test.toml', '/').server;
}

const IFACES = {
  lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '', internal: true, cidr: '' }],
  eth0: [
    { address: '10.0.0.1', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: '' },
    { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '', internal: false, cidr: '', scopeid: 2 },
    { address: '192.168.5.1', netmask: '255.255.0.0', family: 'IPv4', mac: '', internal: false, cidr: '' },
  ],
  eth1: [{ address: '10.91.0.1', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: '' }],
} as never;

/** A route table stand-in: destination prefix -> source address; every lookup is counted. */
function routes(table: Record<string, string>): { lookup: (d: string) => Promise<string>; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    lookup: async (d) => {
      asked.push(d);
      const hit = Object.entries(table).find(([prefix]) => d.startsWith(prefix));
      if (hit === undefined) throw new Error('Network is unreachable');
      return hit[1];
    },
  };
}

const DIRECT: AddressTarget = { relay: null, client: null };
const relayed = (giaddr: string, link = giaddr): AddressTarget => ({ relay: giaddr, client: link });
const brief = (c: Chosen): unknown => ('none' in c ? c : { address: c.address, why: c.why, subnet: c.subnet?.cidr ?? null });

const SUBNETS = `
[[server.subnets]]
cidr = "10.92.0.0/16"
address = "10.91.0.1"
name = "campus"

[[server.subnets]]
cidr = "10.92.7.0/24"
address = "10.91.0.7"

[[server.subnets]]
cidr = "10.93.0.0/24"
name = "no address of its own"
`;

test('[server] address: every client gets it, unless its subnet has an address of its own (longest prefix)', async () => {
  const r = routes({});
  const a = new ServerAddresses(serverConfig(`[server]\naddress = "10.9.9.9"\n${SUBNETS}`), 'cfg', { interfaces: () => IFACES, routeSource: r.lookup });
  const rows: [string, AddressTarget, unknown][] = [
    ['broadcast DISCOVER on our own segment', DIRECT, { address: '10.9.9.9', why: '[server] address', subnet: null }],
    ['relayed from a subnet with no entry', relayed('172.16.0.1'), { address: '10.9.9.9', why: '[server] address', subnet: null }],
    ['relayed from 10.92.3.0: the /16 entry', relayed('10.92.3.1'), { address: '10.91.0.1', why: '[[server.subnets]] 10.92.0.0/16', subnet: '10.92.0.0/16' }],
    ['relayed from 10.92.7.0: the more specific /24 wins', relayed('10.92.7.1'), { address: '10.91.0.7', why: '[[server.subnets]] 10.92.7.0/24', subnet: '10.92.7.0/24' }],
    ['link selection names 10.92.7.x although giaddr is elsewhere', relayed('172.16.0.1', '10.92.7.0'), { address: '10.91.0.7', why: '[[server.subnets]] 10.92.7.0/24', subnet: '10.92.7.0/24' }],
    ['4011 from a client in 10.92.7.x (ciaddr): same as its DISCOVER', { relay: null, client: '10.92.7.150' }, { address: '10.91.0.7', why: '[[server.subnets]] 10.92.7.0/24', subnet: '10.92.7.0/24' }],
    ['an entry without an address: still named, the address falls through', relayed('10.93.0.1'), { address: '10.9.9.9', why: '[server] address', subnet: '10.93.0.0/24' }],
  ];
  for (const [label, target, expected] of rows) assert.deepEqual(brief(await a.choose(target)), expected, label);
  assert.deepEqual(r.asked, [], 'no route lookup when the address is configured');
  assert.equal(a.primary, '10.9.9.9');
});

test('neither address nor interface: the address the route toward the relay, the client or the broadcast leaves from', async () => {
  let now = 1000;
  const table: Record<string, string> = { '10.92.': '10.91.0.1', '10.50.': '192.168.5.1', '255.255.255.255': '10.0.0.1' };
  const r = routes(table);
  const a = new ServerAddresses(serverConfig(SUBNETS.replace(/address = "10.91.0.1"\n/, '')), 'cfg', { interfaces: () => IFACES, routeSource: r.lookup, now: () => now });
  assert.equal(a.primary, null);
  assert.deepEqual(brief(await a.choose(relayed('10.92.0.1'))), { address: '10.91.0.1', why: 'the route toward 10.92.0.1 leaves from it', subnet: '10.92.0.0/16' });
  assert.deepEqual(brief(await a.choose({ relay: null, client: '10.50.0.20' })), { address: '192.168.5.1', why: 'the route toward 10.50.0.20 leaves from it', subnet: null });
  assert.deepEqual(brief(await a.choose(DIRECT)), { address: '10.0.0.1', why: 'the route toward 255.255.255.255 leaves from it', subnet: null });
  // Toward the relay, not the link it names: the reply goes to giaddr.
  assert.deepEqual(brief(await a.choose(relayed('10.92.0.1', '10.60.0.0'))), { address: '10.91.0.1', why: 'the route toward 10.92.0.1 leaves from it', subnet: null });
  assert.deepEqual(r.asked, ['10.92.0.1', '10.50.0.20', '255.255.255.255']);
  // Cached: answered synchronously, without a lookup, for 30 s.
  const again = a.choose(relayed('10.92.0.1'));
  assert.ok(!(again instanceof Promise), 'a cached route is answered synchronously');
  // Then still answered from the cache at once, while it is looked up again (once) behind it.
  now += 31_000;
  const stale = [a.choose(relayed('10.92.0.1')), a.choose(relayed('10.92.0.1'))];
  assert.ok(stale.every((c) => !(c instanceof Promise)), 'an old route is answered synchronously too');
  assert.deepEqual(r.asked, ['10.92.0.1', '10.50.0.20', '255.255.255.255', '10.92.0.1']);
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(!(a.choose(relayed('10.92.0.1')) instanceof Promise));
  assert.equal(r.asked.filter((d) => d === '10.92.0.1').length, 2, 'refreshed: no lookup until it is old again');
  // Concurrent requests toward a new destination share one lookup.
  await Promise.all([a.choose(relayed('10.92.5.1')), a.choose(relayed('10.92.5.1'))]);
  assert.equal(r.asked.filter((d) => d === '10.92.5.1').length, 1);
  // A route that is gone when looked up again: the old answer once more, then the failure.
  delete table['10.50.'];
  now += 31_000;
  assert.deepEqual(brief(a.choose({ relay: null, client: '10.50.0.20' }) as Chosen), { address: '192.168.5.1', why: 'the route toward 10.50.0.20 leaves from it', subnet: null });
  await new Promise((resolve) => setImmediate(resolve));
  const gone = await a.choose({ relay: null, client: '10.50.0.20' });
  assert.ok('none' in gone, 'no stale route is kept once its lookup fails');
  // The per-subnet address still wins over routing.
  assert.deepEqual(brief(await a.choose(relayed('10.92.7.1'))), { address: '10.91.0.7', why: '[[server.subnets]] 10.92.7.0/24', subnet: '10.92.7.0/24' });
  // No route: no address, with the reason.
  const none = await a.choose(relayed('172.31.0.1'));
  assert.ok('none' in none);
  assert.match(none.none, /cannot choose our address: Network is unreachable/);
});

test('[server] interface: its address in the client subnet, else the one routing uses if it is the interface\'s, else the first', async () => {
  const r = routes({ '10.92.': '192.168.5.1', '10.70.': '10.91.0.1' });
  const a = new ServerAddresses(serverConfig('[server]\ninterface = "eth0"'), 'cfg', { interfaces: () => IFACES, routeSource: r.lookup });
  assert.equal(a.primary, '10.0.0.1');
  assert.deepEqual(brief(await a.choose(DIRECT)), { address: '10.0.0.1', why: '[server] interface eth0: its first address', subnet: null });
  assert.deepEqual(brief(await a.choose({ relay: null, client: '192.168.77.3' })), { address: '192.168.5.1', why: '[server] interface eth0: its address in the client\'s subnet', subnet: null });
  assert.deepEqual(brief(await a.choose(relayed('10.92.0.1'))), { address: '192.168.5.1', why: '[server] interface eth0: the route toward 10.92.0.1 leaves from it', subnet: null });
  assert.deepEqual(brief(await a.choose(relayed('10.70.0.1'))), { address: '10.0.0.1', why: '[server] interface eth0: its first address (the route toward 10.70.0.1 leaves from 10.91.0.1, not this interface)', subnet: null });
  assert.throws(() => new ServerAddresses(serverConfig('[server]\ninterface = "wlan9"'), 'cfg', { interfaces: () => IFACES }), (e: unknown) => e instanceof ConfigError && /wlan9.*no IPv4 address/.test(e.message));
});

test('option 54 names us when it is a configured address or one of this host\'s', () => {
  const a = new ServerAddresses(serverConfig(`[server]\naddress = "10.9.9.9"\n${SUBNETS}`), 'cfg', { interfaces: () => IFACES });
  for (const ours of ['10.9.9.9', '10.91.0.7', '10.91.0.1', '192.168.5.1', '127.0.0.1']) assert.equal(a.isOurs(ours), true, ours);
  for (const theirs of ['10.91.0.2', '10.92.0.1', '0.0.0.0']) assert.equal(a.isOurs(theirs), false, theirs);
});

test('the real route lookup: a UDP socket connected toward the destination, on loopback', async () => {
  assert.equal(await routeSource('127.0.0.1'), '127.0.0.1');
  assert.equal(await routeSource('127.3.4.5'), '127.0.0.1');
});

test('segments: with neither address nor interface every interface with IPv4 (its first address), with [server] interface that one, with [server] address none', () => {
  const auto = new ServerAddresses(serverConfig(`[[server.subnets]]\ncidr = "10.91.0.0/24"\naddress = "10.91.0.100"\n`), 'cfg', { interfaces: () => IFACES });
  assert.deepEqual(auto.segments(), [{ name: 'eth0', address: '10.0.0.1' }, { name: 'eth1', address: '10.91.0.1' }], 'loopback and IPv6 left out');
  assert.deepEqual(brief(auto.forSegment({ name: 'eth0', address: '10.0.0.1' })), { address: '10.0.0.1', why: 'the address of eth0, the interface this broadcast leaves from', subnet: null });
  assert.deepEqual(brief(auto.forSegment({ name: 'eth1', address: '10.91.0.1' })), { address: '10.91.0.100', why: '[[server.subnets]] 10.91.0.0/24', subnet: '10.91.0.0/24' });
  assert.deepEqual(new ServerAddresses(serverConfig('[server]\ninterface = "eth1"'), 'cfg', { interfaces: () => IFACES }).segments(), [{ name: 'eth1', address: '10.91.0.1' }]);
  assert.deepEqual(new ServerAddresses(serverConfig('[server]\naddress = "10.91.0.1"'), 'cfg', { interfaces: () => IFACES }).segments(), []);
});
