// Relay agents: option 82 (RFC 3046) as annotated bytes, malformed ones included; giaddr and hops
// as a table (RFC 2131 4.1, RFC 1542 4.1.1); the proxy reply through a relay (broadcast flag,
// giaddr kept, option 82 echoed verbatim and last); the per-subnet config and its problems.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { decode, encode, FLAG_BROADCAST, type DhcpPacket } from '../../protocols/dhcp/dhcp-codec.ts';
import { DhcpOptions, encodeOption } from '../../protocols/dhcp/dhcp-options.ts';
import { buildProxyReply } from '../../boot/pxe-reply.ts';
import { readPxeRequest } from '../../boot/pxe-request.ts';
import { RelayAgentInfo } from '../../protocols/dhcp/relay-agent-info.ts';
import { MAX_HOPS, readRelay, relayFields } from '../../boot/relay.ts';
import { parseConfigText } from '../../platform/runtime/config.ts';
import { ConfigError, ProtocolError } from '../../platform/runtime/errors.ts';
import { hexOf } from './fixtures/annotated.ts';
import { readPcapUdp } from './pcap.ts';

/** Option 82 as ISC dhcrelay -a adds it on interface cl0, plus a remote ID. */
const AGENT_INFO = hexOf([
  '01 03 636c30 # sub-option 1, circuit ID "cl0" (dhcrelay: the interface name)',
  '02 06 525400e2e0aa # sub-option 2, remote ID (6 bytes)',
]);

/** A relayed DISCOVER from iPXE (BIOS), as the relay forwards it. */
const RELAYED_DISCOVER = hexOf([
  '01 01 06 01 # op BOOTREQUEST, Ethernet, hlen 6, hops 1 (the relay counted itself)',
  '0000beef # xid',
  '0004 0000 # secs 4, flags 0: iPXE does not ask for a broadcast',
  '00000000 00000000 00000000 0a5c0001 # ciaddr, yiaddr, siaddr 0; giaddr 10.92.0.1',
  `525400e2e0aa ${'00'.repeat(10)} # chaddr`,
  `${'00'.repeat(64)} # sname`,
  `${'00'.repeat(128)} # file`,
  '63825363 # magic cookie',
  '35 01 01 # 53 DISCOVER',
  '5d 02 0000 # 93 arch 0 (BIOS)',
  '3c 20 505845436c69656e743a417263683a30303030303a554e44493a303032303031 # 60 PXEClient:Arch:00000:UNDI:002001',
  '4d 04 69505845 # 77 "iPXE"',
  '61 11 00 521e3c8a0d7f6a4b9e213c5d7f9b1a04 # 97 UUID',
  `52 0d ${AGENT_INFO} # 82 relay agent information (13 bytes), added by the relay last`,
  'ff # end',
]);

function relayedDiscover(over: Partial<DhcpPacket> = {}, agentInfo: Buffer | null = Buffer.from(AGENT_INFO, 'hex')): DhcpPacket {
  const p = decode(Buffer.from(RELAYED_DISCOVER, 'hex'));
  const options = agentInfo === null ? p.options.without(82) : p.options.with(82, agentInfo);
  return { ...p, options, ...over };
}

test('a relayed DISCOVER decodes with giaddr, hops and option 82, and re-encodes byte for byte', () => {
  const bytes = Buffer.from(RELAYED_DISCOVER, 'hex');
  const p = decode(bytes);
  assert.equal(p.giaddr, '10.92.0.1');
  assert.equal(p.hops, 1);
  assert.equal(p.flags, 0);
  const info = p.options.relayAgentInfo()!;
  assert.deepEqual(info.raw, Buffer.from(AGENT_INFO, 'hex'));
  assert.deepEqual(info.subOptions.map(([c, v]) => [c, v.toString('hex')]), [[1, '636c30'], [2, '525400e2e0aa']]);
  assert.equal(info.get(1)?.toString(), 'cl0');
  assert.equal(info.linkSelection(), undefined);
  assert.equal(info.describe(), 'circuit-id "cl0" remote-id 525400e2e0aa');
  assert.deepEqual(encode(p, { minLength: bytes.length }), bytes);
});

test('option 82: well-formed variants', () => {
  const rows: [string, string, string][] = [
    ['a zero-length sub-option is allowed', '01 00 02 01 41', 'circuit-id  remote-id "A"'],
    ['a repeated sub-option is kept twice, in order', '01 01 41 01 01 42', 'circuit-id "A" circuit-id "B"'],
    ['an unknown sub-option is kept (echoed as received)', 'b4 02 ffee', 'sub-180 ffee'],
    ['link selection (RFC 3527) as an address', '05 04 0a5d0000 01 02 6575', 'link-selection 10.93.0.0 circuit-id "eu"'],
  ];
  for (const [label, hex, described] of rows) {
    const data = Buffer.from(hexOf([hex]), 'hex');
    const info = RelayAgentInfo.decode(data);
    assert.equal(info.describe(), described, label);
    assert.deepEqual(RelayAgentInfo.encode(info.subOptions), data, `${label}: re-encodes`);
  }
});

test('option 82: malformed ones throw ProtocolError with the reason', () => {
  const rows: [string, string, RegExp][] = [
    ['empty', '', /^dhcp: option 82 is empty \(RFC 3046: at least one sub-option\)$/],
    ['a sub-option without its length byte', '01 02 4142 02', /^dhcp: option 82 sub-option 2 at offset 4 has no length byte$/],
    ['a sub-option longer than the option', '01 05 4142', /^dhcp: option 82 sub-option 1 at offset 0 overruns the option \(length 5, 2 bytes left\)$/],
    ['link selection of 3 bytes', '05 03 0a5d00', /^dhcp: option 82 sub-option 5 \(link selection\) must be 4 bytes, got 3$/],
  ];
  for (const [label, hex, message] of rows) {
    assert.throws(() => RelayAgentInfo.decode(Buffer.from(hexOf([hex]), 'hex')), (e: unknown) => e instanceof ProtocolError && message.test(e.message), label);
  }
  // In a packet: the PXE reading is fine, the relay reading refuses the packet.
  const p = relayedDiscover({}, Buffer.from('0105ff', 'hex'));
  assert.ok('request' in readPxeRequest(p, 'dhcp'));
  assert.throws(() => readRelay(p), (e: unknown) => e instanceof ProtocolError && /option 82 sub-option 1 at offset 0 overruns/.test(e.message));
});

test('giaddr and hops: relayed or not, or dropped with the reason', () => {
  const rows: [string, Partial<DhcpPacket>, Buffer | null, unknown][] = [
    ['direct: giaddr 0, hops 0', { giaddr: '0.0.0.0', hops: 0 }, null, { relay: null, agentInfo: null }],
    ['relayed with option 82', {}, Buffer.from(AGENT_INFO, 'hex'), { relay: { giaddr: '10.92.0.1', hops: 1, link: '10.92.0.1' }, agentInfo: 'circuit-id "cl0" remote-id 525400e2e0aa' }],
    ['relayed without option 82 (dhcrelay without -a)', { hops: 1 }, null, { relay: { giaddr: '10.92.0.1', hops: 1, link: '10.92.0.1' }, agentInfo: null }],
    ['relayed by a relay that does not count hops', { hops: 0 }, null, { relay: { giaddr: '10.92.0.1', hops: 0, link: '10.92.0.1' }, agentInfo: null }],
    [`hops ${MAX_HOPS}: still answered`, { hops: MAX_HOPS }, null, { relay: { giaddr: '10.92.0.1', hops: 16, link: '10.92.0.1' }, agentInfo: null }],
    [`hops ${MAX_HOPS + 1}: dropped`, { hops: MAX_HOPS + 1 }, null, { drop: 'hops 17 is over 16 (RFC 1542 4.1.1): a relay loop or a forged packet' }],
    ['hops 255 on a direct request: dropped too', { hops: 255, giaddr: '0.0.0.0' }, null, { drop: 'hops 255 is over 16 (RFC 1542 4.1.1): a relay loop or a forged packet' }],
    ['link selection: the subnet named by the relay', {}, Buffer.from('01036575300504' + '0a5d0000', 'hex'), { relay: { giaddr: '10.92.0.1', hops: 1, link: '10.93.0.0' }, agentInfo: 'circuit-id "eu0" link-selection 10.93.0.0' }],
    ['option 82 with giaddr 0 (a DHCP-snooping switch): not relayed, still echoed', { giaddr: '0.0.0.0', hops: 0 }, Buffer.from('0103737731', 'hex'), { relay: null, agentInfo: 'circuit-id "sw1"' }],
    ['giaddr 255.255.255.255', { giaddr: '255.255.255.255' }, null, { drop: 'giaddr 255.255.255.255 is not a unicast address' }],
    ['giaddr multicast', { giaddr: '224.0.0.1' }, null, { drop: 'giaddr 224.0.0.1 is not a unicast address' }],
    ['giaddr in 0.0.0.0/8', { giaddr: '0.1.2.3' }, null, { drop: 'giaddr 0.1.2.3 is not a unicast address' }],
  ];
  for (const [label, over, agent, expected] of rows) {
    const r = readRelay(relayedDiscover(over, agent));
    const got = 'drop' in r ? r : { relay: r.relay, agentInfo: r.agentInfo?.describe() ?? null };
    assert.deepEqual(got, expected, label);
  }
  const r = readRelay(relayedDiscover());
  assert.ok(!('drop' in r));
  assert.deepEqual(relayFields(r), { relay: '10.92.0.1', hops: 1, agentInfo: 'circuit-id "cl0" remote-id 525400e2e0aa' });
  assert.deepEqual(relayFields({ relay: null, agentInfo: null }), {});
});

test('the proxy offer through a relay: giaddr kept, broadcast flag set, hops 0, option 82 echoed verbatim as the last option', () => {
  const packet = relayedDiscover();
  const read = readPxeRequest(packet, 'dhcp');
  assert.ok('request' in read);
  const offer = decode(encode(buildProxyReply(packet, read.request, 'undionly.kpxe', '10.91.0.1')));
  assert.equal(offer.giaddr, '10.92.0.1');
  assert.equal(offer.flags & FLAG_BROADCAST, FLAG_BROADCAST, 'else the relay unicasts an offer with yiaddr 0 to nowhere');
  assert.equal(offer.hops, 0);
  assert.equal(offer.yiaddr, '0.0.0.0');
  assert.equal(offer.siaddr, '10.91.0.1');
  assert.equal(offer.options.serverId(), '10.91.0.1');
  assert.deepEqual(offer.options.get(82), Buffer.from(AGENT_INFO, 'hex'));
  assert.equal(offer.options.codes().at(-1), 82, 'RFC 3046 2.2: SHOULD be the last option');

  // EDK2 sets the flag itself: kept. A direct request keeps its flags and gets no option 82.
  const edk2 = relayedDiscover({ flags: FLAG_BROADCAST });
  assert.equal(buildProxyReply(edk2, (readPxeRequest(edk2, 'dhcp') as { request: never }).request, 'x', '10.91.0.1').flags, FLAG_BROADCAST);
  const direct = relayedDiscover({ giaddr: '0.0.0.0', hops: 0 }, null);
  const directReply = buildProxyReply(direct, (readPxeRequest(direct, 'dhcp') as { request: never }).request, 'x', '10.91.0.1');
  assert.equal(directReply.flags, 0);
  assert.equal(directReply.options.has(82), false);
  // A snooping switch's option 82 without giaddr is echoed too (RFC 3046 2.2: in all replies).
  const snooped = relayedDiscover({ giaddr: '0.0.0.0', hops: 0 }, Buffer.from('0103737731', 'hex'));
  const snoopedReply = buildProxyReply(snooped, (readPxeRequest(snooped, 'dhcp') as { request: never }).request, 'x', '10.91.0.1');
  assert.deepEqual(snoopedReply.options.get(82), Buffer.from('0103737731', 'hex'));
  assert.equal(snoopedReply.flags, 0, 'not relayed: the reply is broadcast by us, the flag is the client\'s');

  // The 4011 ACK to a relayed client: option 82 is echoed there too when a request carries one.
  const bsr: DhcpPacket = { ...packet, ciaddr: '10.92.0.150', options: new DhcpOptions([[53, encodeOption.u8(3)], ...[...packet.options.entries()].filter(([c]) => c !== 53)]) };
  const ack = buildProxyReply(bsr, (readPxeRequest(bsr, 'proxy') as { request: never }).request, 'x', '10.91.0.1');
  assert.equal(ack.ciaddr, '10.92.0.150');
  assert.deepEqual(ack.options.get(82), Buffer.from(AGENT_INFO, 'hex'));
});

test('[[server.subnets]]: parsed with defaults; every problem listed at once', () => {
  const ok = parseConfigText(`
[server]
address = "10.91.0.1"
[[server.subnets]]
cidr = "10.92.0.0/24"
address = "10.91.0.11"
name = "lab B"
[[server.subnets]]
cidr = "0.0.0.0/0"
`, 'x.toml', '/');
  assert.deepEqual(ok.server.subnets, [
    { cidr: '10.92.0.0/24', network: '10.92.0.0', prefix: 24, address: '10.91.0.11', name: 'lab B' },
    { cidr: '0.0.0.0/0', network: '0.0.0.0', prefix: 0, address: null, name: null },
  ]);
  assert.deepEqual(parseConfigText('', 'x.toml', '/').server.subnets, []);
  assert.ok(Object.isFrozen(ok.server.subnets[0]));

  const bad = `
[[server.subnets]]
cidr = "10.92.0.1/24"
[[server.subnets]]
cidr = "10.92.0.0/33"
address = "255.255.255.255"
[[server.subnets]]
address = "10.91.0"
gateway = "10.92.0.1"
[[server.subnets]]
cidr = "10.93.0.0/24"
[[server.subnets]]
cidr = "10.93.0.0/24"
name = 5
[[server.subnets]]
cidr = 7
`;
  let problems: readonly string[] = [];
  assert.throws(() => parseConfigText(bad, 'x.toml', '/'), (e: unknown) => e instanceof ConfigError && (problems = e.problems).length > 0);
  assert.deepEqual(problems, [
    '[[server.subnets]] #1 cidr: has host bits set (the network is 10.92.0.0/24) (got "10.92.0.1/24")',
    '[[server.subnets]] #2 cidr: must be an IPv4 network as address/prefix, prefix 0-32 (got "10.92.0.0/33")',
    '[[server.subnets]] #2 address: must be a unicast address (got "255.255.255.255")',
    '[[server.subnets]] #3 gateway: unknown key (known: cidr, address, name) (got "10.92.0.1")',
    '[[server.subnets]] #3 cidr: required (e.g. cidr = "10.92.0.0/24")',
    '[[server.subnets]] #3 address: must be an IPv4 address (got "10.91.0")',
    '[[server.subnets]] #5 name: must be a string (got 5)',
    '[[server.subnets]] #6 cidr: must be a string (got 7)',
    '[[server.subnets]] #5 cidr: is listed twice (got "10.93.0.0/24")',
  ]);
  assert.throws(() => parseConfigText('[server]\nsubnets = "10.0.0.0/8"', 'x.toml', '/'), /\[\[server.subnets\]\]: must be an array of tables/);
});

test('the real relayed boot (dhcrelay -a, captured on the server subnet): our offers go to giaddr:67, flagged, option 82 echoed; the DHCP server\'s REQUESTs get nothing from us', () => {
  const datagrams = readPcapUdp(join(import.meta.dirname, 'fixtures', 'relay-bios-netboot.pcap'));
  const ours = datagrams.filter((d) => d.srcAddress === '10.91.0.1');
  assert.ok(ours.length > 0);
  for (const d of ours) {
    const reply = decode(d.payload);
    const asked = datagrams.map((x) => decode(x.payload)).find((p) => p.op === 1 && p.xid === reply.xid)!;
    assert.equal(`${d.dstAddress}:${d.dstPort}`, `${asked.giaddr}:67`);
    assert.equal(reply.flags & FLAG_BROADCAST, FLAG_BROADCAST);
    assert.deepEqual(reply.options.get(82), asked.options.get(82));
    assert.equal(reply.options.relayAgentInfo()?.describe(), 'circuit-id "cl0"');
  }
  const requests = datagrams.filter((d) => d.dstAddress === '10.91.0.1' && decode(d.payload).options.messageType() === 3);
  assert.ok(requests.length > 0, 'the relay forwarded the REQUEST for the DHCP server to us too');
  for (const r of requests) {
    const p = decode(r.payload);
    assert.equal(p.options.serverId(), '10.91.0.2');
    assert.ok(!ours.some((d) => decode(d.payload).xid === p.xid && decode(d.payload).options.messageType() === 5), 'no ACK from us');
  }
});
