// Initial deployment's PXE decision (pure): a machine with no client entry boots
// config.initialDeployment's preboot instead of config.unknown's action, where `respond` allows an
// answer; the generated iPXE script and GRUB configuration put the machine's enrolment secret
// (HMAC of its MAC under the local key) on its kernel command line; the boot is not consumed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { enrolSecret, enrolSecrets, isEnrolSecret } from '../../boot/enrol-secret.ts';
import type { FeedJob, FeedState } from '../../boot/feed-protocol.ts';
import { machineGrubConfig } from '../../boot/http-grub-config.ts';
import { BOOT_SETTINGS, machineScript } from '../../boot/ipxe-script.ts';
import { decide, machineAction } from '../../boot/pxe-policy.ts';
import { consumedBy, tftpTarget } from '../../boot/tftp-resolve.ts';
import type { Client, Image, InitialDeployment, Predefined, PxeConfig } from '../../sbs/types.ts';

const MAC = '52:54:00:12:34:56';
const KNOWN = '52:54:00:00:00:01';
const PRE = '52:54:00:00:00:02';
const KEY = randomBytes(32);
const PREBOOT: Image = { id: 'linuxpe-x64', name: 'Linux PE', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img'], cmdline: 'console=ttyS0' };
const WINPE: Image = { id: 'winpe', name: 'WinPE', arch: ['bios'], type: 'winpe', wim: 'boot.wim' };
const INITIAL: InitialDeployment = {
  preboot: 'linuxpe-x64', default: 0, timeoutSec: 30,
  items: [
    // biome-ignore lint/suspicious/noThenProperty: the spec names this member `then`
    { label: 'Windows 11 lab image', job: { task: 'deploy', preboot: 'linuxpe-x64', package: 'win11-gold', disk: 'first', then: { type: 'local' } } },
    // biome-ignore lint/suspicious/noThenProperty: the spec names this member `then`
    { label: 'Erase and hand back', job: { task: 'erase', preboot: 'linuxpe-x64', disk: 'first', method: 'zero', then: { type: 'wait' } } },
  ],
};

function state(over: Partial<PxeConfig> = {}, clients: Client[] = [{ mac: KNOWN, action: { type: 'local' } }], predefined: Predefined[] = [{ mac: PRE, name: 'PRE' }], jobs: FeedJob[] = []): FeedState {
  return {
    config: { respond: 'all', unknown: { type: 'wait' }, responseDelayMs: 0, bootFiles: { bios: 'undionly.kpxe', 'efi-x64': 'snponly.efi' }, initialDeployment: INITIAL, ...over },
    clients, images: [PREBOOT, WINPE], predefined, jobs,
  };
}

const options = { enrolSecret: enrolSecrets(() => KEY) };

test('a machine with no client entry boots initialDeployment.preboot instead of config.unknown, and explain says why', () => {
  const st = state();
  const fw = decide({ mac: MAC, archCode: 0, isIpxe: false, port: 'dhcp' }, st);
  assert.ok('offer' in fw, JSON.stringify(fw));
  assert.equal(fw.offer.file, 'undionly.kpxe');
  const ipxe = decide({ mac: MAC, archCode: 7, isIpxe: true, port: 'dhcp' }, st);
  assert.ok('offer' in ipxe, JSON.stringify(ipxe));
  assert.equal(ipxe.offer.file, 'netboot/52-54-00-12-34-56/boot.ipxe');
  assert.deepEqual(ipxe.offer.action, { type: 'boot', image: 'linuxpe-x64', once: false });
  assert.equal(ipxe.offer.identity, 'unknown');
  assert.match(ipxe.offer.reason, /^unknown computer with no client entry gets config\.initialDeployment: boots preboot linuxpe-x64, whose agent shows 2 item\(s\) \(default "Windows 11 lab image" after 30 s\) and registers the machine/);
  // Without initialDeployment the same machine gets config.unknown.
  const plain = decide({ mac: MAC, archCode: 7, isIpxe: true, port: 'dhcp' }, state({ initialDeployment: undefined }));
  assert.ok('offer' in plain);
  assert.deepEqual(plain.offer.action, { type: 'wait' });
});

test('respond decides first: "known" answers a predefined computer (no client entry) but not an unknown one; "none" nobody', () => {
  const known = state({ respond: 'known' });
  const unknown = decide({ mac: MAC, archCode: 7, isIpxe: true, port: 'dhcp' }, known);
  assert.deepEqual(unknown, { none: 'unknown computer and config.respond is "known"' });
  const pre = machineAction(PRE, known, options);
  assert.ok(!('none' in pre));
  assert.equal(pre.identity, 'predefined');
  assert.deepEqual(pre.action, { type: 'boot', image: 'linuxpe-x64', once: false });
  assert.ok(pre.enrol !== undefined);
  assert.ok('none' in machineAction(MAC, state({ respond: 'none' }), options));
});

test('a client entry, or an active job, decides instead: no enrolment', () => {
  const st = state();
  const client = machineAction(KNOWN, st, options);
  assert.ok(!('none' in client));
  assert.deepEqual(client.action, { type: 'local' });
  assert.equal(client.enrol, undefined);
  const job: FeedJob = { jobId: 'a1b2c3d4-0000-4000-8000-00000000c0de', mac: MAC, task: 'erase', preboot: 'linuxpe-x64', state: 'pending', booted: false, cancelRequested: false, secret: 'ab'.repeat(32) };
  const withJob = state({}, [], [], [job]);
  const m = machineAction(MAC, withJob, options);
  assert.ok(!('none' in m));
  assert.equal(m.enrol, undefined);
  assert.equal(m.job?.jobId, job.jobId);
  assert.match(machineScript(MAC, m, withJob), /netboot\.job=a1b2c3d4-0000-4000-8000-00000000c0de netboot\.secret=(ab){32}\n/);
});

test('the iPXE script and the GRUB configuration carry the enrolment secret of that MAC only', () => {
  const st = state();
  const secret = enrolSecret(KEY, MAC);
  assert.match(secret, /^[0-9a-f]{64}$/);
  const script = machineScript(MAC, machineAction(MAC, st, options), st);
  const kernel = script.split('\n').find((l) => l.startsWith('kernel '));
  assert.equal(kernel, `kernel image/linuxpe-x64/vmlinuz console=ttyS0 ${BOOT_SETTINGS.join(' ')} initrd=i0-initrd.img netboot.enrol=${secret}`);
  const grub = machineGrubConfig(MAC, machineAction(MAC, st, options), st);
  assert.match(grub, new RegExp(`^linux /netboot/52-54-00-12-34-56/image/linuxpe-x64/vmlinuz console=ttyS0 .* netboot\\.enrol=${secret}$`, 'm'));
  // Through the TFTP resolver, as the TFTP service and the PXE server serve it.
  const t = tftpTarget('netboot/52-54-00-12-34-56/boot.ipxe', st, options, '/srv/tftp');
  assert.ok(t.type === 'content' && t.text.includes(`netboot.enrol=${secret}`));
  // The secret is of this MAC: another MAC's differs, and it is refused for another MAC.
  assert.notEqual(enrolSecret(KEY, '52:54:00:12:34:57'), secret);
  assert.equal(isEnrolSecret(KEY, MAC, secret), true);
  assert.equal(isEnrolSecret(KEY, '52:54:00:12:34:57', secret), false);
  assert.equal(isEnrolSecret(randomBytes(32), MAC, secret), false);
  assert.equal(isEnrolSecret(KEY, MAC, secret.toUpperCase()), false);
  // A client's script has none.
  const known = machineScript(KNOWN, machineAction(KNOWN, st, options), st);
  assert.ok(!known.includes('netboot.enrol'), known);
});

test('without an enrolment secret the script says so and exits; a non-linux preboot gets no offer', () => {
  const st = state();
  const script = machineScript(MAC, machineAction(MAC, st), st);
  assert.match(script, /initial deployment: no enrolment secret was made for this machine\nexit\n$/);
  assert.match(machineGrubConfig(MAC, machineAction(MAC, st), st), /no enrolment secret/);
  const win = state({ initialDeployment: { ...INITIAL, preboot: 'winpe' } });
  const d = decide({ mac: MAC, archCode: 0, isIpxe: true, port: 'dhcp' }, win);
  assert.ok('none' in d);
  assert.match(d.none, /image winpe is of type winpe, not linux: its agent could not be given the enrolment secret$/);
});

test('the enrolment boot is not consumed: a reboot during the countdown asks again', () => {
  const st = state();
  assert.equal(consumedBy('netboot/52-54-00-12-34-56/image/linuxpe-x64/vmlinuz', st, options), null);
  const again = machineAction(MAC, st, { ...options, consumed: new Set([MAC]) });
  assert.ok(!('none' in again) && again.enrol !== undefined);
});

test('no default: the reason says the machine waits for a key', () => {
  const { default: _d, ...noDefault } = INITIAL;
  const m = machineAction(MAC, state({ initialDeployment: { ...noDefault, timeoutSec: 0 } }), options);
  assert.ok(!('none' in m));
  assert.match(m.note, /\(no default: it waits for a key\)/);
});
