// The DHCP sockets' addon (native/udp-batch) when memory runs out: new UdpBatch throws ENOMEM and
// leaves no descriptor behind, whichever of its allocations fails. Reached through the addon's
// test-only faults (NETBOOT_NATIVE_FAULTS=1, set here before it loads).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { loadUdpBatch } from '../../services/server/batch-socket.ts';
import { ensureAddonBuilt } from '../helpers/native-build.ts';

ensureAddonBuilt('udp-batch', 'udp_batch.node');
process.env.NETBOOT_NATIVE_FAULTS = '1';
const support = loadUdpBatch();

const openFds = (): number => readdirSync('/proc/self/fd').length;

test('a socket whose allocations fail (the socket struct, then each receive ring array) throws ENOMEM and leaves no descriptor open', () => {
  assert.ok(support.ok, support.ok ? '' : support.reason);
  const addon = support.addon as typeof support.addon & { injectFault(name: string, after: number, times?: number): void };
  const open = (): { close(): void } =>
    new addon.UdpBatch('127.0.0.1', 0, false, Buffer.alloc(8 * 512), 512, new Uint32Array(8 * addon.RX_WORDS), Buffer.alloc(4096), new Uint32Array(8 * addon.TX_WORDS), () => undefined, () => undefined, () => undefined);
  const fds = openFds();
  for (const after of [0, 1, 2, 3]) {
    addon.injectFault('alloc', after);
    assert.throws(open, (err: Error & { code?: string }) => err.code === 'ENOMEM' && /UdpBatch/.test(err.message), `allocation ${after + 1}`);
    assert.equal(openFds(), fds, `allocation ${after + 1}: no descriptor left behind`);
  }
  const socket = open(); // the faults are spent
  socket.close();
  assert.equal(openFds(), fds, 'close releases the socket at once');
});
