// The PXE decision for a machine with an imaging job (pure): the job's preboot is offered whatever
// the client action says, to unknown machines too; the script carries the job's id and secret on
// the kernel command line; the preboot boot is consumed like `once` (then the machine waits).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FeedJob, FeedState } from '../../boot/feed-protocol.ts';
import { BOOT_SETTINGS, machineScript } from '../../boot/ipxe-script.ts';
import { activeJob, decide, machineAction } from '../../boot/pxe-policy.ts';
import { consumedBy } from '../../boot/tftp-resolve.ts';
import type { Client, Image } from '../../sbs/types.ts';

const MAC = '52:54:00:12:34:56';
const SCRIPT = 'netboot/52-54-00-12-34-56/boot.ipxe';
const JOB_ID = 'a1b2c3d4-0000-4000-8000-00000000c0de';
const SECRET = 'ab'.repeat(32);
const PREBOOT: Image = { id: 'linuxpe-x64', name: 'Linux PE', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img'], cmdline: 'console=ttyS0' };
const OTHER: Image = { id: 'memtest', name: 'Memtest', arch: ['bios'], type: 'linux', kernel: 'memtest' };

function job(over: Partial<FeedJob> = {}): FeedJob {
  return { jobId: JOB_ID, mac: MAC, task: 'deploy', preboot: 'linuxpe-x64', state: 'pending', booted: false, cancelRequested: false, secret: SECRET, ...over };
}

function state(clients: Client[], jobs: FeedJob[], respond: 'all' | 'known' = 'known'): FeedState {
  return {
    config: { respond, unknown: { type: 'local' }, responseDelayMs: 0, bootFiles: { bios: 'undionly.kpxe', 'efi-x64': 'snponly.efi' } },
    clients, images: [PREBOOT, OTHER], predefined: null, jobs,
  };
}

test('a pending or running job offers its preboot whatever the client action, and to an unknown machine', () => {
  const actions: Client['action'][] = [{ type: 'local' }, { type: 'wait' }, { type: 'boot', image: 'memtest', once: true }, { type: 'menu' }];
  for (const s of ['pending', 'running'] as const) {
    for (const clients of [[], ...actions.map((action) => [{ mac: MAC, action }])]) {
      const st = state(clients, [job({ state: s })]);
      const fw = decide({ mac: MAC, archCode: 0, isIpxe: false, port: 'dhcp' }, st);
      assert.ok('offer' in fw, JSON.stringify(fw));
      assert.equal(fw.offer.file, 'undionly.kpxe');
      const ipxe = decide({ mac: MAC, archCode: 7, isIpxe: true, port: 'dhcp' }, st);
      assert.ok('offer' in ipxe);
      assert.equal(ipxe.offer.file, SCRIPT);
      assert.match(ipxe.offer.reason, new RegExp(`^job ${JOB_ID} \\(deploy\\): boots preboot linuxpe-x64`));
      assert.deepEqual(ipxe.offer.action, { type: 'boot', image: 'linuxpe-x64', once: true });
    }
  }
});

test('the job id and secret go on the kernel command line of that machine only', () => {
  const st = state([{ mac: '52:54:00:00:00:01', action: { type: 'boot', image: 'linuxpe-x64', once: true } }], [job()]);
  const script = machineScript(MAC, machineAction(MAC, st), st);
  const kernel = script.split('\n').find((l) => l.startsWith('kernel '));
  assert.equal(kernel, `kernel image/linuxpe-x64/vmlinuz console=ttyS0 ${BOOT_SETTINGS.join(' ')} initrd=i0-initrd.img netboot.job=${JOB_ID} netboot.secret=${SECRET}`);
  const other = machineScript('52:54:00:00:00:01', machineAction('52:54:00:00:00:01', st), st);
  assert.ok(!other.includes('netboot.secret'), other);
  assert.ok(!other.includes(SECRET));
});

test('the preboot boot is consumed like once: its fetch names the job, then the machine waits', () => {
  const st = state([{ mac: MAC, action: { type: 'boot', image: 'linuxpe-x64', once: true } }], [job()]);
  assert.deepEqual(consumedBy('netboot/52-54-00-12-34-56/image/linuxpe-x64/vmlinuz', st, {}), { mac: MAC, image: 'linuxpe-x64', jobId: JOB_ID });
  for (const after of [state([], [job({ booted: true, state: 'running' })]), st]) {
    const consumed = after === st ? new Set([MAC]) : new Set<string>();
    const m = machineAction(MAC, after, { consumed });
    assert.ok(!('none' in m));
    assert.deepEqual(m.action, { type: 'wait' });
    assert.match(m.note, /already booted/);
    const script = machineScript(MAC, m, after);
    assert.ok(!script.includes('netboot.secret'));
    assert.match(script, /waiting for instructions/);
  }
});

test('a preboot that is not a linux image gets no offer, with the reason', () => {
  const nbp: Image = { id: 'linuxpe-x64', name: 'NBP', arch: ['bios'], type: 'nbp', bootFile: 'pxelinux.0' };
  const st: FeedState = { ...state([], [job()]), images: [nbp] };
  const d = decide({ mac: MAC, archCode: 0, isIpxe: false, port: 'dhcp' }, st);
  assert.ok('none' in d);
  assert.match(d.none, /of type nbp, not linux: its agent could not be given the job's secret/);
});

test('a running job comes before the newer pending one for the same machine; ended jobs are not in the feed', () => {
  const newer = job({ jobId: 'b1b2c3d4-0000-4000-8000-00000000c0de', preboot: 'memtest' });
  const st = state([], [newer, job({ state: 'running', cancelRequested: true })]);
  assert.equal(activeJob(st, MAC)?.jobId, JOB_ID);
  assert.equal(activeJob(state([], [newer]), MAC)?.jobId, newer.jobId);
  assert.equal(activeJob(state([], []), MAC), null);
  const old: FeedState = { ...state([], []), jobs: undefined };
  assert.equal(activeJob(old, MAC), null);
  assert.ok('none' in decide({ mac: MAC, archCode: 0, isIpxe: false, port: 'dhcp' }, old));
});
