// The DHCP codec against real captures (QEMU guests: SeaBIOS + iPXE, OVMF + iPXE, OVMF's own
// PXE; made with fixtures/capture.sh) and annotated byte fixtures. Golden files hold the decoded
// form; UPDATE_TESTDATA=1 rewrites them (review the diff).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode, encode, encodingLength, type DhcpPacket } from '../../protocols/dhcp/dhcp-codec.ts';
import { DhcpOptions, PxeSubOptions, encodeOption } from '../../protocols/dhcp/dhcp-options.ts';
import { ProtocolError } from '../../platform/runtime/errors.ts';
import { describePacket } from './describe-packet.ts';
import { readPcapUdp } from './pcap.ts';
import { ANNOTATED, hexOf } from './fixtures/annotated.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const CAPTURES = ['bios-ipxe-dnsmasq', 'efi-ipxe-dnsmasq', 'efi-native-dnsmasq', 'bios-ipxe-netboot', 'efi-ipxe-netboot', 'efi-native-netboot', 'relay-bios-netboot', 'relay-efi-ipxe-netboot', 'relay-efi-native-netboot'];

for (const name of CAPTURES) {
  const pcap = join(FIXTURES, `${name}.pcap`);
  test(`capture ${name}: every packet decodes to its golden form and re-encodes byte for byte`, () => {
    assert.ok(existsSync(pcap), `${pcap} is missing: every listed capture is a fixture in the repository`);
    const datagrams = readPcapUdp(pcap).filter((d) => [67, 68, 4011].includes(d.dstPort)); // not the TFTP
    assert.ok(datagrams.length > 0);
    const described = datagrams.map((d) => {
      const packet = decode(d.payload);
      assert.deepEqual(encode(packet, { minLength: d.payload.length }), d.payload, `${d.srcPort}->${d.dstPort} re-encodes`);
      assert.equal(encodingLength(packet, { minLength: d.payload.length }), d.payload.length);
      return { from: `${d.srcAddress}:${d.srcPort}`, to: `${d.dstAddress}:${d.dstPort}`, packet: describePacket(packet) };
    });
    const golden = join(FIXTURES, `${name}.json`);
    if (process.env.UPDATE_TESTDATA === '1') writeFileSync(golden, JSON.stringify(described, null, 1) + '\n');
    assert.deepEqual(JSON.parse(JSON.stringify(described)), JSON.parse(readFileSync(golden, 'utf8')));
  });
}

test('the real iPXE DISCOVER reads as the field notes describe', () => {
  const discover = decode(readPcapUdp(join(FIXTURES, 'bios-ipxe-dnsmasq.pcap'))[0]!.payload);
  const o = discover.options;
  assert.deepEqual(o.codes(), [53, 57, 93, 94, 60, 77, 55, 175, 61, 97]);
  assert.equal(o.messageType(), 1);
  assert.equal(o.maxMessageSize(), 1472);
  assert.deepEqual(o.clientArch(), [0]);
  assert.deepEqual(o.clientNdi(), { type: 1, major: 2, minor: 1 });
  assert.equal(o.vendorClass(), 'PXEClient:Arch:00000:UNDI:002001');
  assert.deepEqual(o.userClasses(), ['iPXE']);
  // QEMU ran with -uuid 8a3c1e52-7f0d-4b6a-9e21-3c5d7f9b1a04: SMBIOS byte order round-trips.
  assert.equal(o.clientUuid(), '8a3c1e52-7f0d-4b6a-9e21-3c5d7f9b1a04');
  assert.equal(discover.flags, 0, 'iPXE does not set the broadcast flag');
});

test('the real EDK2 boot server request comes from port 4011 with a new xid', () => {
  const d = readPcapUdp(join(FIXTURES, 'efi-native-dnsmasq.pcap'));
  const discover = decode(d[0]!.payload);
  const bsr = d.find((x) => x.dstPort === 4011)!;
  assert.equal(bsr.srcPort, 4011);
  const p = decode(bsr.payload);
  assert.notEqual(p.xid, discover.xid);
  assert.deepEqual(p.options.clientArch(), [7]);
  assert.equal(p.options.messageType(), 3);
  assert.notEqual(p.ciaddr, '0.0.0.0');
});

for (const fx of ANNOTATED) {
  test(`annotated fixture: ${fx.name}`, () => {
    const bytes = Buffer.from(hexOf(fx.bytes), 'hex');
    const packet = decode(bytes);
    for (const [path, expected] of Object.entries(fx.expect)) {
      assert.deepEqual(pick(describePacket(packet), path), expected, path);
    }
    assert.deepEqual(encode(packet, { minLength: bytes.length }), bytes);
  });
}

function pick(v: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], v);
}

function packetWith(options: DhcpOptions, over: Partial<DhcpPacket> = {}): DhcpPacket {
  return {
    op: 1, htype: 1, hlen: 6, hops: 0, xid: 0x12345678, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
    chaddr: Buffer.from('525400123456' + '00'.repeat(10), 'hex'), sname: '', file: '', options, ...over,
  };
}

test('an option longer than 255 bytes is split on encode and joined on decode (RFC 3396)', () => {
  const long = Buffer.alloc(600, 0xab);
  const bytes = encode(packetWith(new DhcpOptions([[53, Buffer.from([1])], [77, long]])));
  // 53 (3 bytes), then 77 as 255 + 255 + 90, then END.
  assert.deepEqual([bytes[243], bytes[244], bytes[243 + 257], bytes[244 + 257], bytes[243 + 514], bytes[244 + 514]], [77, 255, 77, 255, 77, 90]);
  assert.equal(bytes[243 + 514 + 92], 255);
  assert.deepEqual(decode(bytes).options.get(77), long);
});

test('parts of one option spread over the packet are joined in order', () => {
  const bytes = Buffer.alloc(300);
  encode(packetWith(new DhcpOptions())).copy(bytes);
  Buffer.from([60, 3, 0x50, 0x58, 0x45, 53, 1, 1, 60, 6, 0x43, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0, 0, 255]).copy(bytes, 240);
  const p = decode(bytes);
  assert.equal(p.options.vendorClass(), 'PXEClient');
  assert.deepEqual(p.options.codes(), [60, 53]);
});

test('option overload: options in file and sname are read (RFC 2132 9.3), and written when told to fit', () => {
  const options = new DhcpOptions([[53, Buffer.from([2])], [60, encodeOption.text('PXEClient')], [67, Buffer.alloc(100, 0x61)], [97, encodeOption.uuid('8a3c1e52-7f0d-4b6a-9e21-3c5d7f9b1a04')]]);
  const bytes = encode(packetWith(options), { maxLength: 300 });
  assert.ok(bytes.length <= 300);
  const p = decode(bytes);
  assert.equal(p.file, '');
  assert.deepEqual(p.options.codes().sort(), [53, 60, 67, 97]);
  assert.deepEqual(p.options.get(67), Buffer.alloc(100, 0x61));
  assert.equal(p.options.clientUuid(), '8a3c1e52-7f0d-4b6a-9e21-3c5d7f9b1a04');
  assert.throws(() => encode(packetWith(new DhcpOptions([[67, Buffer.alloc(900)]])), { maxLength: 576 }), RangeError);
});

test('pad bytes between options are skipped, not swallowed into the next option', () => {
  const bytes = encode(packetWith(new DhcpOptions()));
  Buffer.from([0, 53, 1, 1, 0, 0, 60, 9, ...Buffer.from('PXEClient'), 255]).copy(bytes, 240);
  const p = decode(bytes);
  assert.equal(p.options.messageType(), 1);
  assert.equal(p.options.vendorClass(), 'PXEClient');
});

test('PXE sub-options in option 43 decode and encode', () => {
  const data = PxeSubOptions.encode([[6, Buffer.from([8])], [71, encodeOption.bootItem(0x8000, 0)], [9, Buffer.from([0x80, 0, 4, ...Buffer.from('boot')])], [10, Buffer.from([5, ...Buffer.from('PXE')])], [8, Buffer.from([0x80, 0, 1, 10, 0, 0, 1])]]);
  const s = PxeSubOptions.decode(data);
  assert.equal(s.discoveryControl(), 8);
  assert.deepEqual(s.bootItem(), { type: 0x8000, layer: 0 });
  assert.deepEqual(s.bootMenu(), [{ type: 0x8000, description: 'boot' }]);
  assert.deepEqual(s.menuPrompt(), { timeoutSec: 5, prompt: 'PXE' });
  assert.deepEqual(s.bootServers(), [{ type: 0x8000, addresses: ['10.0.0.1'] }]);
});

const BAD: [string, () => Buffer, string][] = [
  ['too short', () => Buffer.alloc(100), 'dhcp: packet is 100 bytes, shorter than the 240-byte header'],
  ['bad op', () => withByte(0, 3), 'dhcp: op must be 1 or 2, got 3'],
  ['hlen over 16', () => withByte(2, 17), 'dhcp: hlen must be at most 16, got 17'],
  ['bad cookie', () => withByte(239, 0x64), 'dhcp: magic cookie must be 63825363, got 63825364'],
  ['option overruns', () => Buffer.concat([valid().subarray(0, 240), Buffer.from([60, 20, 0x50])]), 'dhcp: option 60 at offset 240 in options overruns it (length 20, 1 bytes left)'],
  ['no length byte', () => Buffer.concat([valid().subarray(0, 240), Buffer.from([60])]), 'dhcp: option 60 at offset 240 in options has no length byte'],
  ['bad overload value', () => Buffer.concat([valid().subarray(0, 240), Buffer.from([52, 1, 7, 255])]), 'dhcp: option 52 must be 1 byte of value 1-3, got 07'],
];

function valid(): Buffer {
  return encode(packetWith(new DhcpOptions([[53, Buffer.from([1])]])));
}
function withByte(at: number, value: number): Buffer {
  const b = valid();
  b[at] = value;
  return b;
}

for (const [what, make, message] of BAD) {
  test(`malformed packet (${what}) throws ProtocolError with a pinned message`, () => {
    assert.throws(() => decode(make()), (err: unknown) => err instanceof ProtocolError && err.message === message && err.code === 'DHCP_MALFORMED');
  });
}

test('typed accessors refuse a wrong length', () => {
  const o = new DhcpOptions([[53, Buffer.from([1, 2])], [93, Buffer.from([0])], [97, Buffer.alloc(16)], [57, Buffer.from([1, 0])], [94, Buffer.from([1])], [54, Buffer.from([1, 2, 3])]]);
  assert.throws(() => o.messageType(), { message: 'dhcp: option 53 must be 1 byte(s), got 2' });
  assert.throws(() => o.clientArch(), { message: 'dhcp: option 93 must be a non-zero even number of bytes, got 1' });
  assert.throws(() => o.clientUuid(), { message: 'dhcp: option 97 must be 17 byte(s), got 16' });
  assert.throws(() => o.maxMessageSize(), { message: 'dhcp: option 57 must be at least 576, got 256' });
  assert.throws(() => o.clientNdi(), ProtocolError);
  assert.throws(() => o.serverId(), ProtocolError);
  assert.throws(() => PxeSubOptions.decode(Buffer.from([71, 2, 0, 0, 255])).bootItem(), { message: 'dhcp: PXE sub-option 71 must be 4 bytes, got 2' });
});
