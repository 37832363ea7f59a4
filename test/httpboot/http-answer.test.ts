// UEFI HTTP Boot and Boot HTTP on the one answer path (boot/answer.ts) and in the generated
// scripts: an HTTPClient request gets option 60 `HTTPClient` and the boot program's URL on our
// address toward it (its subnet's server address behind a relay); PXE clients are unchanged; iPXE
// scripts fetch image files over HTTP when Boot HTTP is on; a complete HTTP fetch of the boot
// program consumes `once` (the same path as TFTP's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answer, type AnswerState } from '../../boot/answer.ts';
import { bootChain } from '../../boot/boot-chain.ts';
import type { FeedState } from '../../boot/feed-protocol.ts';
import { decide } from '../../boot/pxe-policy.ts';
import { requestBytes } from '../../boot/sample-request.ts';
import { consumedBy, tftpTarget } from '../../boot/tftp-resolve.ts';
import { decode } from '../../protocols/dhcp/dhcp-codec.ts';

const MAC = '52:54:00:12:34:56';
const STATE: FeedState = {
  config: { respond: 'all', unknown: { type: 'local' }, responseDelayMs: 0, bootFiles: { bios: 'undionly.kpxe', 'efi-x64': 'ipxe.efi' } },
  clients: [{ mac: MAC, action: { type: 'boot', image: 'lnx', once: true } }],
  images: [{ id: 'lnx', name: 'Linux PE', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'lnx/vmlinuz', initrd: ['lnx/initrd.img'], cmdline: 'console=ttyS0' }],
  predefined: null,
};

function state(httpPort: number | undefined): AnswerState {
  const own = { address: '192.0.2.10', why: '[server] address', subnet: null };
  const relayed = { address: '10.92.0.5', why: 'subnet 10.92.0.0/24', subnet: { cidr: '10.92.0.0/24', address: '10.92.0.5', name: 'lab' } };
  return {
    feed: STATE, consumed: new Set(), replyMode: 'source', isOurs: () => true, segments: [],
    forSegment: () => own, address: (t) => (t.relay === null ? own : relayed) as never, ...(httpPort === undefined ? {} : { httpPort }),
  };
}

const FROM = { address: '0.0.0.0', port: 68 };

test('an HTTPClient DISCOVER gets option 60 HTTPClient and the URL of its boot program; behind a relay, its subnet\'s address', () => {
  const direct = answer(requestBytes({ mac: MAC, arch: 'efi-x64', ipxe: false, giaddr: null, http: true }), { from: FROM, via: 'dhcp' }, state(8490));
  assert.equal(direct.kind, 'reply');
  if (direct.kind !== 'reply') return;
  assert.equal(direct.request.httpClient, true);
  assert.match(direct.offer.reason, /UEFI HTTP Boot/);
  const reply = decode(direct.replies[0]!.bytes);
  assert.equal(reply.file, 'http://192.0.2.10:8490/ipxe.efi');
  assert.equal(reply.options.get(67)!.toString(), 'http://192.0.2.10:8490/ipxe.efi');
  assert.equal(reply.options.get(60)!.toString(), 'HTTPClient');
  assert.equal(reply.options.get(43), undefined, 'no PXE vendor options for an HTTP client');
  assert.equal(reply.yiaddr, '0.0.0.0');

  const relayed = answer(requestBytes({ mac: MAC, arch: 'efi-x64', ipxe: false, giaddr: '10.92.0.1', http: true }), { from: { address: '10.92.0.1', port: 67 }, via: 'dhcp' }, state(8490));
  assert.equal(relayed.kind, 'reply');
  if (relayed.kind !== 'reply') return;
  const r = decode(relayed.replies[0]!.bytes);
  assert.equal(r.file, 'http://10.92.0.5:8490/ipxe.efi');
  assert.equal(r.giaddr, '10.92.0.1');
  assert.equal(r.siaddr, '10.92.0.5');
});

test('PXE clients are unchanged with Boot HTTP on; HTTPClient without it gets no offer, and says why', () => {
  const pxe = answer(requestBytes({ mac: MAC, arch: 'efi-x64', ipxe: false, giaddr: null }), { from: FROM, via: 'dhcp' }, state(8490));
  assert.equal(pxe.kind, 'reply');
  if (pxe.kind !== 'reply') return;
  const p = decode(pxe.replies[0]!.bytes);
  assert.equal(p.file, 'ipxe.efi');
  assert.equal(p.options.get(60)!.toString(), 'PXEClient');
  const off = answer(requestBytes({ mac: MAC, arch: 'efi-x64', ipxe: false, giaddr: null, http: true }), { from: FROM, via: 'dhcp' }, state(undefined));
  assert.equal(off.kind, 'no-offer');
  if (off.kind === 'no-offer') assert.match(off.reason, /Boot HTTP is off/);
  // The HTTP arch code (16) is x64: an image for bios only is not offered to it.
  const bios = { ...STATE, images: [{ ...STATE.images![0]!, arch: ['bios' as const] }] };
  const d = answer(requestBytes({ mac: MAC, arch: 'efi-x64', ipxe: false, giaddr: null, http: true }), { from: FROM, via: 'dhcp' }, { ...state(8490), feed: bios });
  assert.ok(d.kind === 'no-offer' && d.reason.includes('not for efi-x64'), d.kind === 'no-offer' ? d.reason : d.kind);
});

test('with Boot HTTP on, a running iPXE is offered its script as a URL; the script is the same, so its files follow over HTTP', () => {
  const ipxe = answer(requestBytes({ mac: MAC, arch: 'efi-x64', ipxe: true, giaddr: '10.92.0.1' }), { from: { address: '10.92.0.1', port: 67 }, via: 'dhcp' }, state(8490));
  assert.equal(ipxe.kind, 'reply');
  if (ipxe.kind !== 'reply') return;
  const r = decode(ipxe.replies[0]!.bytes);
  assert.equal(r.file, 'http://10.92.0.5:8490/netboot/52-54-00-12-34-56/boot.ipxe');
  assert.equal(r.options.get(60)!.toString(), 'PXEClient');
  assert.match(ipxe.offer.reason, /over Boot HTTP/);
  // Off: the TFTP path, as before.
  const off = answer(requestBytes({ mac: MAC, arch: 'efi-x64', ipxe: true, giaddr: null }), { from: FROM, via: 'dhcp' }, state(undefined));
  assert.ok(off.kind === 'reply' && decode(off.replies[0]!.bytes).file === 'netboot/52-54-00-12-34-56/boot.ipxe');
  // The script names its files relative to itself: fetched over HTTP, they are HTTP requests.
  const script = tftpTarget('netboot/52-54-00-12-34-56/boot.ipxe', STATE, {}, '/srv/tftp');
  assert.ok(script.type === 'content' && script.text.includes('\nkernel image/lnx/lnx/vmlinuz '));
  assert.ok(script.type === 'content' && script.text.includes('\ninitrd --name i0-initrd.img image/lnx/lnx/initrd.img\n'));
  // The HTTP request path of the kernel is the TFTP one: its complete fetch consumes the once.
  assert.deepEqual(consumedBy('netboot/52-54-00-12-34-56/image/lnx/lnx/vmlinuz', STATE, {}), { mac: MAC, image: 'lnx' });
  // explain's walk is the same with Boot HTTP on.
  const chain = bootChain(MAC, decide({ mac: MAC, archCode: 7, isIpxe: false, port: 'dhcp' }, STATE, { httpPort: 8490 }), STATE, () => ({ exists: true }), { httpPort: 8490 });
  assert.ok(chain !== null);
  assert.equal(chain.cannotBoot, null);
  assert.deepEqual(chain.steps.filter((s) => s.kind === 'file').map((s) => s.path), [
    'netboot/52-54-00-12-34-56/image/lnx/lnx/vmlinuz',
    'netboot/52-54-00-12-34-56/image/lnx/lnx/initrd.img',
  ]);
});
