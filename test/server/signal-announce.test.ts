// The PXE server tells the real Signal service that it started, and does not wait for it: it
// serves while Signal is down, and the notice arrives once Signal comes up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { buildServer } from '../../services/server/main.ts';
import { SignalAnnouncer } from '../../services/server/signal-announcer.ts';
import { announceServerStarted, signalUrl } from '../../platform/local/signal-client.ts';
import { LocalKey, localProof } from '../../platform/trust/local-key.ts';
import { buildSignal } from '../../services/signal/main.ts';
import { makeTestSite, waitFor } from '../helpers/env.ts';

test('serving does not wait for Signal; server-started reaches Signal when it comes up', async () => {
  const site = await makeTestSite('', 'netboot-signal');
  const log = createMemoryLogger();
  const signalLog = createMemoryLogger();
  const iface = buildInterface(site.config, createMemoryLogger());
  const announcer = new SignalAnnouncer(() => announceServerStarted(signalUrl(site.config), localProof(LocalKey.of(site.config.paths.data)), 1000), log.child({ part: 'signal' }));
  const server = buildServer(site.config, log, { announcer });
  const signal = buildSignal(site.config, signalLog);
  const started: { stop(): Promise<void> }[] = [];
  try {
    await iface.start();
    started.push(iface);
    await server.start();
    started.push(server);
    // A standalone site has complete (seeded) state: the server serves with Signal still down.
    await waitFor('serving', () => (server.state === 'serving' ? true : undefined));
    await waitFor('a failed announcement', () => (log.records.some((r) => r.msg === 'signal unavailable; retrying') ? true : undefined));
    assert.equal(announcer.announced, false);
    for (const part of signal.parts) {
      await part.start();
      started.push(part);
    }
    const seen = await waitFor('Signal to hear of the start', () => signalLog.records.find((r) => r.msg === 'PXE server started'), 20000);
    assert.equal(seen.pid, process.pid);
    // Signal logs on receipt; the announcer learns of it when the ack comes back, a moment later.
    await waitFor('the ack', () => (announcer.announced ? true : undefined), 5000);
    assert.equal(announcer.announced, true);
  } finally {
    for (const part of started.reverse()) await part.stop();
    site.cleanup();
  }
});
