// Relayed requests through the running service on loopback (a socket plays the relay agent; in
// `source` reply mode the reply comes back to it, where giaddr:67 would be on a real network):
// per-subnet addresses, REQUESTs meant for the DHCP server, hops and malformed option 82, the
// address toward giaddr when none is configured, and what logs and `netboot explain` say.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { decode, encode, type DhcpPacket } from '../../protocols/dhcp/dhcp-codec.ts';
import { DhcpOptions, encodeOption } from '../../protocols/dhcp/dhcp-options.ts';
import { explainCommand } from '../../cli/explain-command.ts';
import { parseArgs } from '../../cli/args.ts';
import { waitFor } from '../helpers/env.ts';
import { readPcapUdp } from './pcap.ts';
import { Client, logged, serving, snapshots, startSite, type Site } from './service-site.ts';

const IPXE = decode(readPcapUdp(join(import.meta.dirname, 'fixtures', 'bios-ipxe-dnsmasq.pcap'))[0]!.payload);
const MAC = '52:54:00:12:34:56';
const AGENT_INFO = Buffer.from('0103636c30' + '0206525400123456', 'hex'); // circuit-id "cl0", remote-id
const SUBNETS = `
[[server.subnets]]
cidr = "10.92.0.0/24"
address = "10.91.0.11"
name = "lab B"
`;

function relayed(xid: number, over: Partial<DhcpPacket> = {}, agentInfo: Buffer | null = AGENT_INFO): Buffer {
  const options = agentInfo === null ? IPXE.options : IPXE.options.with(82, agentInfo);
  return encode({ ...IPXE, xid, giaddr: '10.92.0.1', hops: 1, options, ...over });
}

function request(xid: number, serverId: string): Buffer {
  const options = new DhcpOptions([[53, encodeOption.u8(3)], [54, encodeOption.ipv4(serverId)], ...[...IPXE.options.entries()].filter(([c]) => c !== 53), [82, AGENT_INFO]]);
  return encode({ ...IPXE, xid, giaddr: '10.92.0.1', hops: 1, options });
}

async function explain(s: Site, argv: string[]): Promise<string[]> {
  const out: string[] = [];
  const code = await explainCommand({ args: parseArgs(argv, ['ipxe', 'json']), out: (l) => out.push(l), err: (l) => out.push(`ERR ${l}`), env: { NETBOOT_CONFIG: s.site.configPath } });
  assert.equal(code, 0, out.join('\n'));
  return out;
}

test('a relayed DISCOVER is answered through the relay with its subnet\'s address and option 82 echoed; REQUESTs for the DHCP server are not', async () => {
  const s = await startSite(snapshots([{ mac: MAC, action: { type: 'wait' } }]), SUBNETS);
  const relay = await Client.open();
  try {
    await serving(s);
    const port = s.server.ports!.dhcp;
    relay.send(relayed(0x1001), port);
    const { packet: offer } = await relay.reply(0x1001, 'the offer through the relay');
    assert.equal(offer.options.messageType(), 2);
    assert.equal(offer.giaddr, '10.92.0.1', 'giaddr kept: the relay finds its interface by it');
    assert.equal(offer.flags, 0x8000, 'broadcast flag set for the relay');
    assert.equal(offer.hops, 0);
    assert.equal(offer.siaddr, '10.91.0.11', 'the address configured for 10.92.0.0/24');
    assert.equal(offer.options.serverId(), '10.91.0.11');
    assert.equal(offer.options.get(66)?.toString(), '10.91.0.11');
    assert.equal(offer.file, `http://10.91.0.11:${s.site.config.http.port}/netboot/52-54-00-12-34-56/boot.ipxe`, 'the script\'s URL on the subnet\'s address');
    assert.deepEqual(offer.options.get(82), AGENT_INFO, 'option 82 echoed verbatim');
    assert.equal(offer.options.codes().at(-1), 82);
    const answered = await waitFor('the answered record', () => logged(s.log, 'DISCOVER answered', (r) => r.xid === '00001001'));
    assert.deepEqual(
      { relay: answered.relay, hops: answered.hops, agentInfo: answered.agentInfo, subnet: answered.subnet, server: answered.server, serverWhy: answered.serverWhy },
      { relay: '10.92.0.1', hops: 1, agentInfo: 'circuit-id "cl0" remote-id 525400123456', subnet: '10.92.0.0/24 (lab B)', server: '10.91.0.11', serverWhy: '[[server.subnets]] 10.92.0.0/24' },
    );

    // The relay forwards the client's REQUEST to every server: the one for the DHCP server is
    // not ours to answer; one naming our subnet address is.
    relay.send(request(0x1002, '10.91.0.2'), port);
    relay.send(request(0x1003, '10.91.0.11'), port);
    const { packet: ack } = await relay.reply(0x1003, 'the ACK for a REQUEST naming us');
    assert.equal(ack.options.messageType(), 5);
    assert.equal(ack.giaddr, '10.92.0.1');
    const ignored = await waitFor('the ignored REQUEST', () => logged(s.log, 'ignored', (r) => r.xid === '00001002'));
    assert.equal(ignored.reason, 'REQUEST for server 10.91.0.2, not us');
    assert.equal(ignored.relay, '10.92.0.1');
    assert.equal(relay.count(0x1002), 0);

    // A relay in no listed subnet: [server] address.
    relay.send(relayed(0x1004, { giaddr: '10.77.0.1' }, null), port);
    const { packet: other } = await relay.reply(0x1004);
    assert.equal(other.siaddr, '127.0.0.1');
    assert.equal(other.options.has(82), false, 'nothing to echo');
    assert.equal(other.flags, 0x8000);

    // explain: the path through a relay, asked for or (without --relay) the last one seen.
    const asked = await explain(s, [MAC, '--ipxe', '--relay', '10.92.0.1']);
    assert.equal(asked[0], '52:54:00:12:34:56 (bios, running iPXE): offered netboot/52-54-00-12-34-56/boot.ipxe');
    assert.ok(asked.includes('  through relay 10.92.0.1, subnet 10.92.0.0/24 (lab B): server address 10.91.0.11 ([[server.subnets]] 10.92.0.0/24)'), asked.join('\n'));
    const last = await explain(s, [MAC, '--ipxe']);
    assert.ok(last.includes('  through relay 10.77.0.1, in no [[server.subnets]] entry: server address 127.0.0.1 ([server] address)'), last.join('\n'));
    assert.match(last.at(-1)!, /^ {2}last request: DISCOVER on port 67 through relay 10\.77\.0\.1 \(hops 1\) at \S+: answered: netboot\/52-54-00-12-34-56\/boot\.ipxe, server address 127\.0\.0\.1$/);
    relay.send(relayed(0x1005), port);
    await relay.reply(0x1005);
    const again = await explain(s, [MAC, '--ipxe']);
    assert.match(again.at(-1)!, /last request: DISCOVER on port 67 through relay 10\.92\.0\.1 \(hops 1, option 82 circuit-id "cl0" remote-id 525400123456, subnet 10\.92\.0\.0\/24 \(lab B\)\) at .*: answered: .*, server address 10\.91\.0\.11$/);
    const own = await explain(s, ['52:54:00:99:99:99', '--relay', '10.93.0.1']);
    assert.ok(own.includes('  last request: none seen since the server started'), own.join('\n'));
  } finally {
    relay.close();
    await s.stop();
  }
});

test('hops over 16, a malformed option 82 and a broadcast giaddr are dropped with a logged reason; the service keeps answering', async () => {
  const s = await startSite(snapshots([{ mac: MAC, action: { type: 'wait' } }]), SUBNETS);
  const relay = await Client.open();
  try {
    await serving(s);
    const port = s.server.ports!.dhcp;
    relay.send(relayed(0x2001, { hops: 17 }), port);
    relay.send(relayed(0x2002, {}, Buffer.from('0105ff', 'hex')), port);
    relay.send(relayed(0x2003, {}, Buffer.alloc(0)), port);
    relay.send(relayed(0x2004, { giaddr: '255.255.255.255' }), port);
    relay.send(relayed(0x2005, { hops: 16 }), port);
    assert.equal((await relay.reply(0x2005, 'hops 16 is answered')).packet.options.messageType(), 2);
    const hops = await waitFor('the hops reason', () => logged(s.log, 'packet dropped', (r) => r.xid === '00002001'));
    assert.equal(hops.reason, 'hops 17 is over 16 (RFC 1542 4.1.1): a relay loop or a forged packet');
    assert.equal(hops.mac, MAC);
    const overrun = await waitFor('the option 82 reason', () => logged(s.log, 'packet dropped: malformed', (r) => r.xid === '00002002'));
    assert.equal(overrun.reason, 'dhcp: option 82 sub-option 1 at offset 0 overruns the option (length 5, 1 bytes left)');
    const empty = await waitFor('the empty option 82 reason', () => logged(s.log, 'packet dropped: malformed', (r) => r.xid === '00002003'));
    assert.match(String(empty.reason), /option 82 is empty/);
    const giaddr = await waitFor('the giaddr reason', () => logged(s.log, 'packet dropped', (r) => r.xid === '00002004'));
    assert.equal(giaddr.reason, 'giaddr 255.255.255.255 is not a unicast address');
    for (const xid of [0x2001, 0x2002, 0x2003, 0x2004]) assert.equal(relay.count(xid), 0, `no reply to ${xid.toString(16)}`);
    assert.equal(s.log.records.filter((r) => r.msg === 'packet dropped: handler failed').length, 0);
  } finally {
    relay.close();
    await s.stop();
  }
});

test('without [server] address: the address the route toward giaddr (or the 4011 client) leaves from, found by the kernel', async () => {
  const s = await startSite(snapshots([{ mac: MAC, action: { type: 'wait' } }]), '[server]\naddress = ""\n');
  const relay = await Client.open();
  try {
    assert.equal(s.site.config.server.address, null);
    await serving(s);
    relay.send(relayed(0x3001, { giaddr: '127.0.0.9' }), s.server.ports!.dhcp);
    const { packet: offer } = await relay.reply(0x3001);
    assert.equal(offer.siaddr, '127.0.0.1');
    assert.equal(offer.options.serverId(), '127.0.0.1');
    const answered = await waitFor('the answered record', () => logged(s.log, 'DISCOVER answered', (r) => r.xid === '00003001'));
    assert.equal(answered.serverWhy, 'the route toward 127.0.0.9 leaves from it');
    assert.equal(answered.subnet, undefined);
    // The 4011 exchange comes straight from the client (routed, not relayed): toward ciaddr.
    const bsr = encode({ ...IPXE, xid: 0x3002, ciaddr: '127.0.0.1', flags: 0x8000, options: new DhcpOptions([[53, encodeOption.u8(3)], ...[...IPXE.options.entries()].filter(([c]) => c !== 53)]) });
    relay.send(bsr, s.server.ports!.proxy);
    const { packet: ack } = await relay.reply(0x3002);
    assert.equal(ack.options.serverId(), '127.0.0.1');
    assert.equal((await waitFor('the ACK record', () => logged(s.log, 'REQUEST answered', (r) => r.xid === '00003002'))).serverWhy, 'the route toward 127.0.0.1 leaves from it');
  } finally {
    relay.close();
    await s.stop();
  }
});
