// Site-to-site job replication between real Interfaces on loopback: authenticated peer channel,
// durable outbox, exactly-once application, refusal of strangers and replays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../platform/runtime/atomic-file.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import type { InterfaceService } from '../../services/interface/interface-service.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { freeTcpPort, makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';
import { spawnService } from '../helpers/process.ts';

const keyDir = mkdtempSync(join(tmpdir(), 'netboot-keys-'));
const siteKey = join(keyDir, 'site.key');
const wrongKey = join(keyDir, 'wrong.key');
writeFileSync(siteKey, randomBytes(32).toString('base64'), { mode: 0o600 });
writeFileSync(wrongKey, randomBytes(32).toString('hex'), { mode: 0o600 });
test.after(() => rmSync(keyDir, { recursive: true, force: true }));

interface Node { id: string; port: number; site: TestSite; svc: InterfaceService | null; log: ReturnType<typeof createMemoryLogger> }

async function makeNodes(ids: string[], opts: { keyFor?: (id: string) => string; peersOf?: (id: string) => string[] } = {}): Promise<Node[]> {
  // Picked ports, not 0: each node's config names the others' ports as peer addresses, written
  // before any of them starts (racy only if another process takes one meanwhile).
  const ports = new Map<string, number>();
  for (const id of ids) ports.set(id, await freeTcpPort());
  const nodes: Node[] = [];
  for (const id of ids) {
    const peers = (opts.peersOf?.(id) ?? ids.filter((p) => p !== id)).map((p) => `[[peers]]\nid = "${p}"\naddress = "127.0.0.1:${ports.get(p)}"\n`).join('');
    const site = await makeTestSite(`[site]\nid = "${id}"\nkey_file = "${opts.keyFor?.(id) ?? siteKey}"\n[interface]\nport = ${ports.get(id)}\n${peers}`, `netboot-peer-${id}`);
    mkdirSync(site.config.paths.sbs, { recursive: true });
    nodes.push({ id, port: ports.get(id)!, site, svc: null, log: createMemoryLogger() });
  }
  return nodes;
}

async function startNode(n: Node): Promise<void> {
  n.svc = buildInterface(n.site.config, n.log);
  await n.svc.start();
  n.port = n.svc.boundPort; // the same as configured, or the kernel's pick for port 0
}

async function stopNode(n: Node): Promise<void> {
  await n.svc?.stop();
  n.svc = null;
}

async function cleanup(nodes: Node[]): Promise<void> {
  for (const n of nodes) await stopNode(n);
  for (const n of nodes) n.site.cleanup();
}

let seq = 0;
function dropJob(n: Node, mac: string, replicateTo: string[], image = 'img'): string {
  const id = `cccccccc-dddd-4eee-8fff-${String(++seq).padStart(12, '0')}`;
  const issued = new Date(Date.UTC(2026, 10, 21, 12, 0, 0) + seq * 1000).toISOString();
  writeFileAtomic(join(n.site.config.paths.sbs, `job-${seq}.sbs`), JSON.stringify({ sbs: 1, id, kind: 'client', issued, replicateTo, client: { mac, action: { type: 'boot', image, once: true } } }));
  return id;
}

type PeerRow = { id: string; delivered: number; queued: number; authenticated: boolean };
const peerStatus = (n: Node) => controlCall<{ peers: PeerRow[] }>(controlSocketPath(n.site.config.paths.data, 'interface'), 'GET', '/peers');

const actionOn = (n: Node, mac: string) => n.svc?.state.state().clients?.find((c) => c.mac === mac)?.action;
const fromPeers = (n: Node) => n.svc!.state.describe().objects.filter((o) => o.table === 'clients');

test('a job dropped on A is applied on B and C, and not forwarded again', async () => {
  const nodes = await makeNodes(['a', 'b', 'c']);
  const [a, b, c] = nodes as [Node, Node, Node];
  try {
    for (const n of nodes) await startNode(n);
    const id = dropJob(a, '52:54:00:aa:00:01', [`127.0.0.1:${b.port}`, 'c']);
    for (const n of [b, c]) {
      await waitFor(`the job on ${n.id}`, () => (actionOn(n, '52:54:00:aa:00:01') ? true : undefined));
      assert.deepEqual(actionOn(n, '52:54:00:aa:00:01'), { type: 'boot', image: 'img', once: true });
      assert.equal(fromPeers(n).find((o) => o.key === '52:54:00:aa:00:01')?.instructionId, id, 'same id on the peer');
    }
    // A counts a delivery when the peer acknowledges it; B and C queue a forward, if any, in the
    // transaction that applied the job, so their status is final once A has both acknowledgements.
    const aPeers = await waitFor('both acknowledgements on A', async () => {
      const peers = (await peerStatus(a)).peers;
      return peers.every((p) => p.delivered === 1) ? peers : undefined;
    });
    assert.deepEqual(aPeers.map((p) => [p.id, p.delivered, p.queued, p.authenticated]), [['b', 1, 0, true], ['c', 1, 0, true]]);
    const status = (await peerStatus(b)).peers;
    assert.ok(status.every((p) => p.delivered === 0 && p.queued === 0), 'B forwarded nothing');
  } finally {
    await cleanup(nodes);
  }
});

test('jobs queued while B is down are delivered exactly once when it is back; superseded ones are not sent', async () => {
  const nodes = await makeNodes(['a', 'b']);
  const [a, b] = nodes as [Node, Node];
  try {
    await startNode(a);
    const ids = [1, 2, 3, 4, 5].map((i) => dropJob(a, `52:54:00:bb:00:0${i}`, ['b']));
    dropJob(a, '52:54:00:bb:00:09', ['b'], 'first');
    const latest = dropJob(a, '52:54:00:bb:00:09', ['b'], 'second'); // supersedes the one before
    await waitFor('the jobs queued on A', () => (a.svc!.state.describe().objects.filter((o) => o.table === 'clients').length === 6 ? true : undefined));
    await startNode(b);
    await waitFor('all jobs on B', () => (fromPeers(b).length === 6 ? true : undefined));
    // Once A's outbox is empty, every job is acknowledged and nothing more will be sent.
    await waitFor('A\'s outbox to B empty', async () => ((await peerStatus(a)).peers.every((p) => p.queued === 0) ? true : undefined));
    assert.deepEqual(fromPeers(b).map((o) => o.instructionId).sort(), [...ids, latest].sort());
    const lines = b.log.records.filter((r) => r.msg === 'job from peer applied');
    assert.equal(lines.length, 6, 'each job applied once; the superseded one never sent');
  } finally {
    await cleanup(nodes);
  }
});

test('a peer with the wrong key is refused and nothing it sent is applied', async () => {
  const nodes = await makeNodes(['b', 'd'], { keyFor: (id) => (id === 'd' ? wrongKey : siteKey) });
  const [b, d] = nodes as [Node, Node];
  try {
    for (const n of nodes) await startNode(n);
    dropJob(d, '52:54:00:dd:00:01', ['b']);
    // Refused in the handshake, and jobs go only over an authenticated link: once the job is
    // queued on D and B has refused D, nothing D sends can be applied.
    await waitFor('the refusal on B', () => b.log.records.find((r) => r.msg === 'peer refused' && r.peer === 'd'));
    const st = await waitFor('the job queued on D', async () => (await peerStatus(d)).peers.find((p) => p.queued === 1));
    assert.equal(st.authenticated, false);
    assert.equal(actionOn(b, '52:54:00:dd:00:01'), undefined);
  } finally {
    await cleanup(nodes);
  }
});

test('a replay of a captured authenticated exchange is refused', async () => {
  // A talks to B1 through a recording proxy; the recorded bytes are then replayed to B2, which
  // has B1's identity and key but has never seen the job. If the replay were accepted, B2 would
  // apply it.
  // Picked, not 0: A's config names the proxy's port before the proxy listens.
  const proxyPort = await freeTcpPort();
  const nodes = await makeNodes(['a', 'b'], { peersOf: (id) => (id === 'a' ? ['b'] : ['a']) });
  const [a, b1] = nodes as [Node, Node];
  const b2site = await makeTestSite(`[site]\nid = "b"\nkey_file = "${siteKey}"\n[[peers]]\nid = "a"\naddress = "127.0.0.1:${a.port}"\n`, 'netboot-peer-b2');
  const b2: Node = { id: 'b', port: b2site.config.interface.port, site: b2site, svc: null, log: createMemoryLogger() };
  // Point A at the proxy instead of B1.
  const aToml = (await import('node:fs')).readFileSync(a.site.configPath, 'utf8').replace(`127.0.0.1:${b1.port}`, `127.0.0.1:${proxyPort}`);
  writeFileSync(a.site.configPath, aToml);
  const { loadConfig } = await import('../../platform/runtime/config.ts');
  (a.site as { config: unknown }).config = loadConfig(a.site.configPath);
  const recorded: Buffer[] = [];
  const proxy: Server = createServer((client: Socket) => {
    const upstream = connect(b1.port, '127.0.0.1');
    // A also opens package connections to its peers: record only the /peer connection.
    const mine: Buffer[] = [];
    client.on('data', (d: Buffer) => {
      mine.push(Buffer.from(d));
      if (Buffer.concat(mine).subarray(0, 10).toString() === 'GET /peer ') recorded.splice(0, recorded.length, ...mine);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => client.write(d));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => proxy.listen(proxyPort, '127.0.0.1', () => r()));
  try {
    await startNode(b1);
    await startNode(a);
    await startNode(b2);
    dropJob(a, '52:54:00:ee:00:01', ['b']);
    await waitFor('the job on B1', () => (actionOn(b1, '52:54:00:ee:00:01') ? true : undefined));
    // A has B1's acknowledgement: the recording holds the whole exchange that delivered the job.
    await waitFor('the acknowledgement on A', async () => ((await peerStatus(a)).peers.every((p) => p.delivered === 1) ? true : undefined));
    const replay = connect(b2.port, '127.0.0.1');
    await new Promise<void>((r) => replay.once('connect', () => r()));
    replay.on('error', () => undefined);
    replay.write(Buffer.concat(recorded));
    // Refused: B2 takes nothing more from this connection; what it applied, it applied before.
    await waitFor('the refusal on B2', () => b2.log.records.find((r) => r.msg === 'peer refused'));
    replay.destroy();
    assert.equal(actionOn(b2, '52:54:00:ee:00:01'), undefined, 'nothing applied from the replay');
    assert.equal(b2.log.records.some((r) => r.msg === 'job from peer applied'), false);
  } finally {
    proxy.close();
    await stopNode(b2);
    b2site.cleanup();
    await cleanup(nodes);
  }
});

test('A killed with SIGKILL with jobs in its outbox delivers them after restart', { timeout: 60_000 }, async () => {
  const nodes = await makeNodes(['a', 'b']);
  const [a, b] = nodes as [Node, Node];
  let proc = spawnService(['interface'], a.site.configPath);
  try {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(dropJob(a, `52:54:00:cc:00:${String(i).padStart(2, '0')}`, ['b']));
    const sock = controlSocketPath(a.site.config.paths.data, 'interface');
    await waitFor('the jobs queued on A', async () => {
      try {
        const s = await controlCall<{ peers: Array<{ queued: number }> }>(sock, 'GET', '/peers');
        return s.peers[0]!.queued === 10 ? true : undefined;
      } catch {
        return undefined;
      }
    }, 20_000, 50);
    await proc.kill('SIGKILL');
    await startNode(b);
    proc = spawnService(['interface'], a.site.configPath);
    await waitFor('all jobs on B', () => (fromPeers(b).length === 10 ? true : undefined), 30_000);
    assert.deepEqual(fromPeers(b).map((o) => o.instructionId).sort(), ids.sort());
  } finally {
    await proc.kill('SIGTERM');
    await cleanup(nodes);
  }
});
