// Local channels trust only our own processes (issue 16, items 2 and 11): the state feed on TCP
// 490 and the Signal port refuse a local user who cannot read <data>/run/local.key. The intruder
// really runs as `nobody` (spawned with its uid and gid), as in the issue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { ClientHandshake } from '../../platform/trust/peer-handshake.ts';
import { LOCAL_CLIENT_ID, LOCAL_SERVER_ID, LocalKey, localKeyPath, localProof } from '../../platform/trust/local-key.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { buildSignal } from '../../services/signal/main.ts';
import { makeTestSite, waitFor } from '../helpers/env.ts';
import { FeedClient } from '../helpers/feed-client.ts';
import { ManagementStandIn } from '../signal/management-stand-in.ts';

const INTRUDER = fileURLToPath(new URL('./fixtures/local-intruder.mjs', import.meta.url));
const NOBODY = 65534;
const MAC = '52:54:00:12:34:56';

interface IntruderResult {
  uid: number;
  keyRead: string;
  received: string[];
  closeCode: number | null;
  error: string | null;
}

function runAsNobody(url: string, keyPath: string, frames: string[]): Promise<IntruderResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [INTRUDER, url, keyPath, ...frames], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      try {
        resolve(JSON.parse(out) as IntruderResult);
      } catch {
        reject(new Error(`intruder said nothing useful: ${out} ${err}`));
      }
    });
  });
}

const forgedEvent = (eventId: string): string => JSON.stringify({ type: 'event', eventId, event: { kind: 'pxe-booted', mac: MAC, image: 'img', at: new Date().toISOString() } });

test('the local key is made once, mode 0600, and a key others can read is refused with the fix', { timeout: 90_000 }, async () => {
  const site = await makeTestSite('', 'netboot-trust');
  try {
    const path = localKeyPath(site.config.paths.data);
    const key = LocalKey.of(site.config.paths.data).get();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(LocalKey.of(site.config.paths.data).get(), key, 'a second process reads the same key');
    chmodSync(path, 0o644);
    assert.throws(() => LocalKey.of(site.config.paths.data).get(), { code: 'LOCAL_KEY_EXPOSED', message: /readable by other users.*chmod 600/ });
  } finally {
    site.cleanup();
  }
});

test('the state feed: nobody can neither read the state nor forge a pxe-booted event; our own process can', { timeout: 90_000 }, async () => {
  const site = await makeTestSite('', 'netboot-trust');
  const log = createMemoryLogger();
  const svc = buildInterface(site.config, log);
  await svc.start();
  try {
    const url = `ws://127.0.0.1:${svc.boundPort}/feed`;
    const keyPath = localKeyPath(site.config.paths.data);
    // As in the issue: subscribe (read the whole state), then report a boot.
    const got = await runAsNobody(url, keyPath, [JSON.stringify({ type: 'subscribe' }), forgedEvent('forged-1')]);
    assert.equal(got.uid, NOBODY);
    assert.notEqual(got.keyRead, 'read', 'nobody cannot read the local key');
    assert.equal(got.closeCode, 4001, JSON.stringify(got));
    assert.equal(got.received.length, 1, `only the challenge: ${JSON.stringify(got.received)}`);
    assert.equal(JSON.parse(got.received[0]!).type, 'challenge');
    const refusal = await waitFor('the refusal in the log', () => log.records.find((r) => r.msg === 'state feed refused: no proof of the local key'));
    assert.match(String(refusal.reason), /malformed hello/);
    assert.equal(log.records.some((r) => r.msg === 'event recorded'), false, 'the forged event was not recorded');
    assert.equal(log.records.some((r) => r.msg === 'state feed subscriber'), false);

    // The same user with a made-up key: the proof fails.
    const wrong = new WebSocket(url);
    const handshake = new ClientHandshake(randomBytes(32), LOCAL_CLIENT_ID, LOCAL_SERVER_ID);
    const code = await new Promise<number>((resolve) => {
      wrong.on('message', (data) => {
        const step = handshake.next(String(data));
        if (step.reply !== null) wrong.send(step.reply);
      });
      wrong.on('close', (c) => resolve(c));
    });
    assert.equal(code, 4001);
    await waitFor('the wrong-key refusal', () => log.records.find((r) => r.msg === 'state feed refused: no proof of the local key' && String(r.reason).startsWith('wrong key')));

    // Our own process, holding the key, reads the state and reports events.
    const feed = await FeedClient.connect(svc.boundPort, site.config.paths.data);
    feed.send({ type: 'subscribe' });
    await feed.next('snapshot');
    feed.send(JSON.parse(forgedEvent('real-1')));
    await feed.next('event-ack', (m) => m.eventId === 'real-1');
    feed.close();
  } finally {
    await svc.stop();
    site.cleanup();
  }
});

test('Signal: nobody\'s server-started is refused and starts nothing', { timeout: 90_000 }, async () => {
  const mgmt = new ManagementStandIn();
  await mgmt.start();
  const site = await makeTestSite(`[management]\nurl = "${mgmt.url}"\n`, 'netboot-trust');
  const log = createMemoryLogger();
  const signal = buildSignal(site.config, log, { backoff: { baseMs: 20, capMs: 200 }, minIntervalMs: 0 });
  for (const part of signal.parts) await part.start();
  try {
    await waitFor('Signal\'s own start-up', () => (signal.runner?.last?.ok ? true : undefined));
    const started = JSON.stringify({ type: 'server-started', pid: 4242, at: new Date().toISOString() });
    const got = await runAsNobody(`ws://127.0.0.1:${signal.server.boundPort}/`, localKeyPath(site.config.paths.data), [started, started, started]);
    assert.equal(got.closeCode, 4001, JSON.stringify(got));
    assert.deepEqual(got.received.map((t) => JSON.parse(t).type), ['challenge']);
    await waitFor('the refusal in the log', () => log.records.find((r) => r.msg === 'signal connection refused: no proof of the local key'));
    assert.equal(log.records.some((r) => r.msg === 'PXE server started'), false);
    assert.equal(signal.runner?.runs, 1, 'no start-up sequence for nobody');
    assert.equal(mgmt.count('GET', '/pxe/startup'), 1);
  } finally {
    for (const part of [...signal.parts].reverse()) await part.stop();
    await mgmt.stop();
    site.cleanup();
  }
});

/** `count` server-started messages on one proved connection; resolves with the answers. */
async function announceMany(port: number, proof: () => ClientHandshake, count: number): Promise<string[]> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const hs = proof();
  const answers: string[] = [];
  try {
    return await new Promise((resolve, reject) => {
      let proved = false;
      ws.on('error', reject);
      ws.on('close', (code) => reject(new Error(`closed ${code}`)));
      ws.on('message', (data) => {
        if (!proved) {
          const step = hs.next(String(data));
          if (step.reply !== null) return void ws.send(step.reply);
          proved = true;
          for (let i = 0; i < count; i++) ws.send(JSON.stringify({ type: 'server-started', pid: 1000 + i, at: new Date().toISOString() }));
          return;
        }
        answers.push(JSON.parse(String(data)).type as string);
        if (answers.length === count) resolve(answers);
      });
    });
  } finally {
    ws.terminate();
  }
}

test('Signal coalesces 400 concurrent server-started into at most one more start-up sequence', { timeout: 90_000 }, async () => {
  const mgmt = new ManagementStandIn();
  await mgmt.start();
  const site = await makeTestSite(`[management]\nurl = "${mgmt.url}"\n`, 'netboot-trust');
  const log = createMemoryLogger('info');
  // An interval longer than the test: whatever arrives after Signal's own run waits for one run.
  const signal = buildSignal(site.config, log, { backoff: { baseMs: 20, capMs: 200 }, minIntervalMs: 600_000 });
  for (const part of signal.parts) await part.start();
  try {
    await waitFor('Signal\'s own start-up', () => (signal.runner?.last?.ok ? true : undefined));
    const proof = localProof(LocalKey.of(site.config.paths.data));
    // 20 connections (within the port's bounds) at once, 20 announcements each.
    const answers = (await Promise.all(Array.from({ length: 20 }, () => announceMany(signal.server.boundPort!, proof, 20)))).flat();
    assert.equal(answers.length, 400);
    assert.ok(answers.every((a) => a === 'ack'));
    assert.equal(log.records.filter((r) => r.msg === 'PXE server started').length, 400);
    assert.equal(signal.runner?.runs, 1, 'no sequence yet: the next waits for its interval');
    assert.equal(signal.runner?.pendingTrigger, true, 'one sequence is queued for all 400');
    assert.equal(signal.runner?.coalesced, 399);
    assert.equal(mgmt.count('GET', '/pxe/startup'), 1);
  } finally {
    for (const part of [...signal.parts].reverse()) await part.stop();
    await mgmt.stop();
    site.cleanup();
  }
});

test('Signal holds a bounded number of connections', { timeout: 90_000 }, async () => {
  const site = await makeTestSite('', 'netboot-trust');
  const log = createMemoryLogger('info');
  const signal = buildSignal(site.config, log);
  for (const part of signal.parts) await part.start();
  const { connect } = await import('node:net');
  const sockets: import('node:net').Socket[] = [];
  try {
    let closed = 0;
    for (let i = 0; i < 100; i++) {
      const s = connect({ port: signal.server.boundPort!, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % 4)}` });
      s.on('error', () => undefined);
      s.on('close', () => closed++);
      sockets.push(s);
      await new Promise<void>((r) => s.once('connect', () => r()));
    }
    await waitFor('the refusals', () => (closed >= 100 - 64 ? true : undefined));
    assert.ok(signal.server.gate.count <= 64, `${signal.server.gate.count} held`);
    assert.ok(log.records.some((r) => r.msg === 'signal port: connection refused'));
  } finally {
    for (const s of sockets) s.destroy();
    for (const part of [...signal.parts].reverse()) await part.stop();
    site.cleanup();
  }
});

