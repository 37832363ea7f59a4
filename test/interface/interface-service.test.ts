// The Interface over its real drop folder, SQLite store and state feed socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { writeFileAtomic } from '../../platform/runtime/atomic-file.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import type { InterfaceService } from '../../services/interface/interface-service.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';
import { FeedClient } from '../helpers/feed-client.ts';

const MAC = '52:54:00:12:34:56';
let n = 0;
const newId = (): string => `11111111-2222-4333-8444-${String(++n).padStart(12, '0')}`;
const clientJson = (action: object, issued = new Date().toISOString(), id = newId()) =>
  JSON.stringify({ sbs: 1, id, kind: 'client', issued, client: { mac: MAC.toUpperCase().replace(/:/g, '-'), action } });

async function withInterface(fn: (site: TestSite, svc: InterfaceService, log: ReturnType<typeof createMemoryLogger>) => Promise<void>, extra = ''): Promise<void> {
  const site = await makeTestSite(extra);
  const log = createMemoryLogger();
  const svc = buildInterface(site.config, log);
  await svc.start();
  try {
    await fn(site, svc, log);
  } finally {
    await svc.stop();
    site.cleanup();
  }
}

function storedFiles(site: TestSite): string[] {
  const store = site.config.paths.sbsStore;
  return readdirSync(store).filter((d) => d !== 'rejected').flatMap((d) => readdirSync(join(store, d)));
}

test('a standalone site starts with complete empty state; a dropped client reaches the subscriber and the file is archived', async () => {
  await withInterface(async (site, svc) => {
    const feed = await FeedClient.connect(svc.boundPort, site.config.paths.data);
    feed.send({ type: 'subscribe' });
    const snap = await feed.next('snapshot');
    assert.deepEqual(snap.state.clients, []);
    assert.deepEqual(snap.state.images, []);
    assert.equal(snap.state.config?.respond, 'all');
    writeFileAtomic(join(site.config.paths.sbs, 'job1.SBS'), clientJson({ type: 'boot', image: 'linuxpe', once: true }));
    writeFileSync(join(site.config.paths.sbs, 'readme.txt'), 'not an instruction');
    const change = await feed.next('change');
    assert.equal(change.seq, snap.seq + 1);
    assert.deepEqual(change.change, { table: 'clients', op: 'put', client: { mac: MAC, action: { type: 'boot', image: 'linuxpe', once: true } } });
    await waitFor('the file in the store', () => (storedFiles(site).includes('job1.SBS') ? true : undefined));
    assert.deepEqual(readdirSync(site.config.paths.sbs), ['readme.txt'], 'non-SBS files are left alone');
    feed.close();
  });
});

test('an invalid document is set aside with its reason and the folder keeps going', async () => {
  await withInterface(async (site, svc) => {
    const feed = await FeedClient.connect(svc.boundPort, site.config.paths.data);
    feed.send({ type: 'subscribe' });
    await feed.next('snapshot');
    writeFileAtomic(join(site.config.paths.sbs, 'bad.sbs'), JSON.stringify({ sbs: 1, id: newId(), kind: 'client', issued: new Date().toISOString(), client: { mac: 'nope', action: { type: 'local' } } }));
    writeFileAtomic(join(site.config.paths.sbs, 'good.sbs'), clientJson({ type: 'wait' }));
    await feed.next('change');
    const rejected = join(site.config.paths.sbsStore, 'rejected');
    const reason = await waitFor('the error file', () => (existsSync(join(rejected, 'bad.sbs.error.json')) ? JSON.parse(readFileSync(join(rejected, 'bad.sbs.error.json'), 'utf8')) : undefined));
    assert.equal(reason.field, 'client.mac');
    assert.ok(existsSync(join(rejected, 'bad.sbs')));
    feed.close();
  });
});

test('a file copied in slowly is applied once, not rejected; one that never completes is rejected', async () => {
  await withInterface(async (site, svc) => {
    const feed = await FeedClient.connect(svc.boundPort, site.config.paths.data);
    feed.send({ type: 'subscribe' });
    await feed.next('snapshot');
    const body = Buffer.from(clientJson({ type: 'boot', image: 'slow', once: false }));
    const fd = openSync(join(site.config.paths.sbs, 'slow.sbs'), 'w');
    const parts = 5;
    for (let i = 0; i < parts; i++) {
      writeSync(fd, body.subarray(Math.floor((i * body.length) / parts), Math.floor(((i + 1) * body.length) / parts)));
      await new Promise((r) => setTimeout(r, 250)); // part of the scenario: a slow copy
    }
    closeSync(fd);
    writeFileSync(join(site.config.paths.sbs, 'truncated.sbs'), body.subarray(0, 40));
    await feed.next('change');
    await waitFor('slow.sbs in the store', () => (storedFiles(site).includes('slow.sbs') ? true : undefined));
    const reason = await waitFor('truncated.sbs rejected', () => {
      const p = join(site.config.paths.sbsStore, 'rejected', 'truncated.sbs.error.json');
      return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : undefined;
    });
    assert.ok(reason.problem.length > 0);
    // A barrier instead of a pause: a file dropped now is handled after anything still pending, so
    // once its change arrives, a second application of slow.sbs would already have shown.
    writeFileAtomic(join(site.config.paths.sbs, 'barrier.sbs'), clientJson({ type: 'local' }));
    await feed.next('change', (m) => m.type === 'change' && JSON.stringify(m.change).includes('"local"'));
    assert.equal(feed.messages.filter((m) => m.type === 'change').length, 2, 'slow.sbs applied exactly once (then the barrier)');
    assert.equal(readdirSync(join(site.config.paths.sbsStore, 'rejected')).includes('slow.sbs'), false);
    feed.close();
  }, '[interface]\nparse_retry_ms = 1500\n');
});

test('a subscriber that reconnects with its cursor gets exactly what it missed', async () => {
  await withInterface(async (site, svc) => {
    const first = await FeedClient.connect(svc.boundPort, site.config.paths.data);
    first.send({ type: 'subscribe' });
    const snap = await first.next('snapshot');
    first.close();
    writeFileAtomic(join(site.config.paths.sbs, 'a.sbs'), clientJson({ type: 'wait' }, '2026-11-21T10:00:00Z'));
    writeFileAtomic(join(site.config.paths.sbs, 'b.sbs'), clientJson({ type: 'menu' }, '2026-11-21T10:00:01Z'));
    await waitFor('both archived', () => (storedFiles(site).length === 2 ? true : undefined));
    const again = await FeedClient.connect(svc.boundPort, site.config.paths.data);
    again.send({ type: 'subscribe', since: snap.seq });
    await again.next('change', (m) => m.seq === snap.seq + 2);
    const changes = again.messages.filter((m) => m.type === 'change');
    assert.deepEqual(changes.map((m) => m.type === 'change' && m.seq), [snap.seq + 1, snap.seq + 2]);
    assert.equal(again.messages.some((m) => m.type === 'snapshot'), false);
    again.close();
  });
});

test('files found together are applied in order of issued, then name', async () => {
  const site = await makeTestSite();
  try {
    const sbs = site.config.paths.sbs;
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sbs, { recursive: true });
    // Written before the Interface starts: the newest-issued comes first by name.
    writeFileAtomic(join(sbs, 'a.sbs'), clientJson({ type: 'boot', image: 'third', once: true }, '2026-11-21T10:00:03Z'));
    writeFileAtomic(join(sbs, 'b.sbs'), clientJson({ type: 'boot', image: 'first', once: true }, '2026-11-21T10:00:01Z'));
    writeFileAtomic(join(sbs, 'c.sbs'), clientJson({ type: 'boot', image: 'second', once: true }, '2026-11-21T10:00:02Z'));
    const svc = buildInterface(site.config, createMemoryLogger());
    await svc.start();
    try {
      const feed = await FeedClient.connect(svc.boundPort, site.config.paths.data);
      feed.send({ type: 'subscribe', since: 0 });
      await waitFor('three client changes', () => (feed.messages.filter((m) => m.type === 'change' && m.change.table === 'clients' && m.change.op === 'put').length === 3 ? true : undefined));
      const images = feed.messages.flatMap((m) => (m.type === 'change' && m.change.table === 'clients' && m.change.op === 'put' && m.change.client.action.type === 'boot' ? [m.change.client.action.image] : []));
      assert.deepEqual(images, ['first', 'second', 'third']);
      feed.close();
    } finally {
      await svc.stop();
    }
  } finally {
    site.cleanup();
  }
});

test('a pxe-booted event makes the client local and reaches the management server through the outbox', async () => {
  const received: unknown[] = [];
  let failuresLeft = 2;
  const mgmt = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.url === '/pxe/events' && failuresLeft-- <= 0) {
        received.push(...(JSON.parse(body) as { events: unknown[] }).events);
        res.writeHead(200).end('{}');
      } else {
        res.writeHead(503).end();
      }
    });
  });
  await new Promise<void>((r) => mgmt.listen(0, '127.0.0.1', () => r()));
  const port = (mgmt.address() as { port: number }).port;
  try {
    await withInterface(async (site, svc) => {
      const sbs = site.config.paths.sbs;
      const issued = '2026-11-21T10:00:00Z';
      writeFileAtomic(join(sbs, 'c.sbs'), JSON.stringify({ sbs: 1, id: newId(), kind: 'config', issued, config: { respond: 'all', bootFiles: { bios: 'undionly.kpxe' } } }));
      writeFileAtomic(join(sbs, 'cl.sbs'), JSON.stringify({ sbs: 1, id: newId(), kind: 'clients', issued, clients: [{ mac: MAC, action: { type: 'boot', image: 'img' } }] }));
      writeFileAtomic(join(sbs, 'im.sbs'), JSON.stringify({ sbs: 1, id: newId(), kind: 'images', issued, images: [] }));
      const feed = await FeedClient.connect(svc.boundPort, site.config.paths.data);
      feed.send({ type: 'subscribe' });
      await waitFor('complete state', () => (svc.state.state().images !== null && svc.state.state().clients?.length === 1 ? true : undefined));
      feed.send({ type: 'event', eventId: 'boot-1', event: { kind: 'pxe-booted', mac: MAC, image: 'img', at: new Date().toISOString() } });
      await feed.next('event-ack', (m) => m.eventId === 'boot-1');
      await feed.next('change', (m) => m.change.table === 'clients' && m.change.op === 'put' && m.change.client.action.type === 'local');
      await waitFor('the event at the management server', () => (received.length > 0 ? true : undefined), 15000);
      assert.equal(received.length, 1);
      assert.deepEqual({ ...(received[0] as object), at: undefined }, { eventId: 'boot-1', server: 'test-site', kind: 'pxe-booted', mac: MAC, image: 'img', at: undefined });
      feed.close();
    }, `[management]\nurl = "http://127.0.0.1:${port}"\n`);
  } finally {
    mgmt.closeAllConnections();
    mgmt.close();
  }
});
