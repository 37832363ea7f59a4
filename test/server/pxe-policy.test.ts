// The offer decision as tables: each action x each architecture x known/unknown/predefined x
// respond mode, for firmware and for a client already running iPXE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Action, Client, Image, PxeConfig, RespondMode } from '../../sbs/types.ts';
import type { FeedState } from '../../boot/feed-protocol.ts';
import { decide, type Decision } from '../../boot/pxe-policy.ts';

const MAC = '52:54:00:12:34:56';
const SCRIPT = 'netboot/52-54-00-12-34-56/boot.ipxe';
const BOOT_FILES = { bios: 'undionly.kpxe', 'efi-ia32': 'ipxe-ia32.efi', 'efi-x64': 'snponly.efi' } as const; // no efi-arm64

const IMAGES: Image[] = [
  { id: 'linux-all', name: 'Linux', arch: ['bios', 'efi-ia32', 'efi-x64', 'efi-arm64'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img'] },
  { id: 'nbp-all', name: 'NBP', arch: ['bios', 'efi-ia32', 'efi-x64', 'efi-arm64'], type: 'nbp', bootFile: 'boot/pxelinux.0' },
  { id: 'bios-only', name: 'BIOS only', arch: ['bios'], type: 'linux', kernel: 'vmlinuz' },
];

const ACTIONS: Record<string, Action> = {
  local: { type: 'local' },
  'boot linux': { type: 'boot', image: 'linux-all', once: true },
  'boot nbp': { type: 'boot', image: 'nbp-all', once: false },
  menu: { type: 'menu' },
  wait: { type: 'wait' },
};

/** Architecture as sent in option 93 -> its name, or null for one we do not boot. */
const ARCH_CODES: [number, string | null][] = [[0, 'bios'], [6, 'efi-ia32'], [7, 'efi-x64'], [9, 'efi-x64'], [11, 'efi-arm64'], [2, null], [16, null]];

type Expect = { file: string } | { none: RegExp };

/** What a machine whose effective action is `action` gets, on architecture `arch`. */
const OUTCOME: Record<string, { firmware: (arch: string) => Expect; ipxe: Expect }> = {
  local: { firmware: () => ({ none: /no offer, the machine boots from its next device/ }), ipxe: { none: /next device/ } },
  'boot linux': { firmware: bootFile, ipxe: { file: SCRIPT } },
  'boot nbp': { firmware: () => ({ file: 'netboot/52-54-00-12-34-56/image/nbp-all/boot/pxelinux.0' }), ipxe: { file: SCRIPT } },
  menu: { firmware: bootFile, ipxe: { file: SCRIPT } },
  wait: { firmware: bootFile, ipxe: { file: SCRIPT } },
};

function bootFile(arch: string): Expect {
  const f = (BOOT_FILES as Record<string, string>)[arch];
  return f === undefined ? { none: new RegExp(`no config.bootFiles entry for ${arch}`) } : { file: f };
}

function stateFor(identity: 'client' | 'predefined' | 'unknown', respond: RespondMode, action: Action): FeedState {
  const config: PxeConfig = {
    respond, responseDelayMs: 0, bootFiles: BOOT_FILES,
    unknown: identity === 'client' ? { type: 'local' } : action,
    menu: { prompt: 'Boot', timeoutSec: 5, items: [{ label: 'Local', action: { type: 'local' } }] },
  };
  const clients: Client[] = identity === 'client' ? [{ mac: MAC, action }] : [{ mac: '52:54:00:99:99:99', action: { type: 'wait' } }];
  return { config, clients, images: IMAGES, predefined: identity === 'predefined' ? [{ mac: MAC, name: 'PRE-01' }] : [] };
}

function check(d: Decision, expected: Expect, label: string): void {
  if ('file' in expected) {
    assert.ok('offer' in d, `${label}: expected an offer of ${expected.file}, got none: ${'none' in d ? d.none : ''}`);
    assert.equal(d.offer.file, expected.file, label);
    assert.ok(d.offer.reason.length > 0, label);
  } else {
    assert.ok('none' in d, `${label}: expected no offer, got ${'offer' in d ? d.offer.file : ''}`);
    assert.match(d.none, expected.none, label);
  }
}

for (const respond of ['all', 'known', 'none'] as const) {
  for (const identity of ['client', 'predefined', 'unknown'] as const) {
    test(`policy table: respond ${respond}, ${identity} computer`, () => {
      let rows = 0;
      for (const [actionName, action] of Object.entries(ACTIONS)) {
        for (const [code, arch] of ARCH_CODES) {
          for (const isIpxe of [false, true]) {
            const label = `${actionName} / arch ${code} / ${isIpxe ? 'iPXE' : 'firmware'}`;
            const d = decide({ mac: MAC, archCode: code, isIpxe, port: 'dhcp' }, stateFor(identity, respond, action));
            let expected: Expect;
            if (respond === 'none') expected = { none: /respond is "none"/ };
            else if (respond === 'known' && identity === 'unknown') expected = { none: /unknown computer and config.respond is "known"/ };
            else if (arch === null) expected = { none: new RegExp(`unknown client architecture ${code}`) };
            else expected = isIpxe ? OUTCOME[actionName]!.ipxe : OUTCOME[actionName]!.firmware(arch);
            check(d, expected, label);
            if ('offer' in d) {
              assert.equal(d.offer.identity, identity, label);
              assert.equal(d.offer.arch, arch, label);
              assert.equal(d.offer.stage, isIpxe ? 'ipxe' : 'firmware', label);
            }
            rows++;
          }
        }
      }
      assert.equal(rows, 5 * 7 * 2);
    });
  }
}

const base = stateFor('client', 'all', ACTIONS['boot linux']!);
const withClient = (action: Action, config: Partial<PxeConfig> = {}): FeedState => ({ ...base, config: { ...base.config!, ...config }, clients: [{ mac: MAC, action }] });

test('a boot action whose image is missing, or not built for the architecture, gets no offer', () => {
  check(decide({ mac: MAC, archCode: 0, isIpxe: false, port: 'dhcp' }, withClient({ type: 'boot', image: 'gone', once: true })), { none: /image "gone" does not exist/ }, 'missing');
  check(decide({ mac: MAC, archCode: 7, isIpxe: true, port: 'dhcp' }, withClient({ type: 'boot', image: 'bios-only', once: true })), { none: /image bios-only is not for efi-x64/ }, 'wrong arch');
  check(decide({ mac: MAC, archCode: 0, isIpxe: true, port: 'dhcp' }, withClient({ type: 'boot', image: 'bios-only', once: true })), { file: SCRIPT }, 'right arch');
});

test('a menu action without a config menu gets no offer', () => {
  const { menu: _drop, ...noMenu } = base.config!;
  check(decide({ mac: MAC, archCode: 0, isIpxe: false, port: 'dhcp' }, { ...base, config: noMenu, clients: [{ mac: MAC, action: { type: 'menu' } }] }), { none: /config has no menu/ }, 'menu');
});

test('a consumed once boot is local; a boot without once is not affected', () => {
  const consumed = new Set([MAC]);
  check(decide({ mac: MAC, archCode: 0, isIpxe: false, port: 'dhcp' }, withClient(ACTIONS['boot linux']!), { consumed }), { none: /once boot was consumed/ }, 'once');
  check(decide({ mac: MAC, archCode: 0, isIpxe: false, port: 'dhcp' }, withClient({ type: 'boot', image: 'linux-all', once: false }), { consumed }), { file: 'undionly.kpxe' }, 'not once');
});

test('responseDelayMs delays offers on the DHCP port only', () => {
  const s = withClient({ type: 'wait' }, { responseDelayMs: 700 });
  const a = decide({ mac: MAC, archCode: 0, isIpxe: false, port: 'dhcp' }, s);
  const b = decide({ mac: MAC, archCode: 0, isIpxe: false, port: 'proxy' }, s);
  assert.ok('offer' in a && 'offer' in b);
  assert.equal(a.offer.delayMs, 700);
  assert.equal(b.offer.delayMs, 0);
});

test('no answer before the state is complete, and none without an architecture', () => {
  check(decide({ mac: MAC, archCode: 0, isIpxe: false, port: 'dhcp' }, { ...base, images: null }), { none: /state incomplete/ }, 'incomplete');
  check(decide({ mac: MAC, archCode: null, isIpxe: false, port: 'dhcp' }, base), { none: /names no architecture/ }, 'no arch');
});
