// The Signal service over real sockets: a management-server stand-in speaking HTTP, the SBS folder
// on disk, the ws port and the control socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { buildSignal } from '../../services/signal/main.ts';
import type { SignalService, SignalStatus } from '../../services/signal/signal-service.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { createMemoryLogger, type LogFields } from '../../platform/runtime/logger.ts';
import { parseSbs } from '../../sbs/parse.ts';
import type { SbsDocument } from '../../sbs/types.ts';
import { freeTcpPort, makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';
import { ManagementStandIn, validStartupAnswer } from './management-stand-in.ts';
import { announceServerStarted, signalUrl } from '../../platform/local/signal-client.ts';
import { LocalKey, localProof } from '../../platform/trust/local-key.ts';

const FAST = { baseMs: 20, capMs: 200 };

async function startSignal(site: TestSite, log = createMemoryLogger(), minIntervalMs = 0): Promise<SignalService & { log: typeof log; stop(): Promise<void> }> {
  const s = buildSignal(site.config, log, { backoff: FAST, minIntervalMs });
  const started: SignalService['parts'][number][] = [];
  for (const part of s.parts) {
    await part.start();
    started.push(part);
  }
  return Object.assign(s, {
    log,
    stop: async () => {
      for (const part of started.reverse()) await part.stop();
    },
  });
}

async function withSite(mgmtPort: number | null, fn: (site: TestSite) => Promise<void>, timeoutMs = 2000): Promise<void> {
  const site = await makeTestSite(mgmtPort === null ? '' : `[management]\nurl = "http://127.0.0.1:${mgmtPort}"\ntimeout_ms = ${timeoutMs}\n`, 'netboot-signal');
  try {
    await fn(site);
  } finally {
    site.cleanup();
  }
}

function sbsFiles(site: TestSite): string[] {
  const dir = site.config.paths.sbs;
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

function readDoc(site: TestSite, name: string): SbsDocument {
  return parseSbs(readFileSync(join(site.config.paths.sbs, name)));
}

function status(site: TestSite): Promise<SignalStatus> {
  return controlCall<SignalStatus>(controlSocketPath(site.config.paths.data, 'signal'), 'GET', '/status');
}

function failures(records: LogFields[]): LogFields[] {
  return records.filter((r) => r.msg === 'start-up sequence failed; the persisted state stays in force');
}

/** One message to the Signal port from a process holding the local key (it proves it first). */
async function sendWs(site: TestSite, text: string): Promise<unknown> {
  const ws = new WebSocket(signalUrl(site.config));
  const proof = localProof(LocalKey.of(site.config.paths.data))();
  let proved = false;
  try {
    return await new Promise((resolve, reject) => {
      ws.once('error', reject);
      ws.on('message', (data) => {
        if (proved) return resolve(JSON.parse(String(data)));
        const step = proof.next(String(data));
        if (step.reply !== null) return ws.send(step.reply);
        proved = true;
        ws.send(text);
      });
    });
  } finally {
    ws.terminate();
  }
}

test('start-up: the four SBS files are written, valid, with one issued time and fresh ids', async () => {
  const mgmt = new ManagementStandIn();
  await mgmt.start();
  try {
    await withSite(mgmt.port, async (site) => {
      const signal = await startSignal(site);
      try {
        const files = await waitFor('four start-up files', () => (sbsFiles(site).length === 4 ? sbsFiles(site) : undefined));
        assert.equal(files.filter((f) => /^\d{10}-client\.sbs$/.test(f)).length, 1, files.join());
        assert.equal(files.filter((f) => /^\d{10}-image\.sbs$/.test(f)).length, 1, files.join());
        assert.ok(files.includes('initialPXEConfigPath.sbs') && files.includes('PredefinedComputers.sbs'), files.join());

        const docs = files.map((f) => readDoc(site, f));
        assert.equal(new Set(docs.map((d) => d.issued)).size, 1);
        assert.equal(new Set(docs.map((d) => d.id)).size, 4);
        const byKind = new Map(docs.map((d) => [d.kind, d]));
        const answer = validStartupAnswer();
        const config = byKind.get('config');
        assert.ok(config?.kind === 'config');
        assert.deepEqual(config.config.bootFiles, (answer.config as { bootFiles: unknown }).bootFiles);
        const clients = byKind.get('clients');
        assert.ok(clients?.kind === 'clients');
        assert.deepEqual(clients.clients.map((c) => c.mac), ['52:54:00:12:34:56', '52:54:00:ab:cd:ef']);
        const images = byKind.get('images');
        assert.ok(images?.kind === 'images');
        assert.equal(images.images[0]?.id, 'linuxpe-x64');
        const predefined = byKind.get('predefined-computers');
        assert.ok(predefined?.kind === 'predefined-computers');
        assert.equal(predefined.computers[0]?.name, 'NEW-PC');

        const get = mgmt.requests.find((r) => r.method === 'GET');
        assert.equal(get?.query.get('server'), 'test-site');
        const reg = mgmt.requests.find((r) => r.method === 'POST')?.body as Record<string, unknown>;
        assert.equal(reg.serverId, 'test-site');
        assert.equal(typeof reg.name, 'string');
        assert.deepEqual(reg.addresses, ['127.0.0.1']);
        assert.match(String(reg.version), /^\d+\.\d+\.\d+/);

        const st = await waitFor('lastStartup ok', async () => ((await status(site)).lastStartup?.ok === true ? status(site) : undefined));
        assert.equal(st.service, 'signal');
        assert.equal(st.state, 'serving');
        assert.equal(st.pid, process.pid);
        assert.equal(st.ports.signal, signal.server.boundPort);
        assert.ok(st.ports.signal! > 0);
        assert.equal(st.management, mgmt.url);
        assert.equal(st.registered, true);
      } finally {
        await signal.stop();
      }
    });
  } finally {
    await mgmt.stop();
  }
});

test('registration happens exactly once, across restarts of Signal', async () => {
  const mgmt = new ManagementStandIn();
  await mgmt.start();
  try {
    await withSite(mgmt.port, async (site) => {
      for (let run = 1; run <= 3; run++) {
        const signal = await startSignal(site);
        try {
          await waitFor(`start-up #${run}`, () => (mgmt.count('GET', '/pxe/startup') === run && signal.runner?.last?.ok ? true : undefined));
        } finally {
          await signal.stop();
        }
      }
      assert.equal(mgmt.count('POST', '/pxe/register'), 1);
    });
  } finally {
    await mgmt.stop();
  }
});

test('a refused registration is retried, and nothing is written before it succeeds', async () => {
  const mgmt = new ManagementStandIn();
  let refuse = true;
  mgmt.register = () => (refuse ? { status: 503, body: '{"error":"busy"}' } : { status: 200, body: '{}' });
  await mgmt.start();
  try {
    await withSite(mgmt.port, async (site) => {
      const signal = await startSignal(site);
      try {
        await waitFor('two refusals', () => (failures(signal.log.records).length >= 2 ? true : undefined));
        assert.match(String(failures(signal.log.records)[0]?.reason), /HTTP 503/);
        assert.deepEqual(sbsFiles(site), []);
        assert.equal((await status(site)).registered, false);
        refuse = false;
        await waitFor('files after registration', () => (sbsFiles(site).length === 4 ? true : undefined));
        assert.equal((await status(site)).registered, true);
      } finally {
        await signal.stop();
      }
    });
  } finally {
    await mgmt.stop();
  }
});

test('unreachable management server: retried with backoff, then succeeds once it is up', async () => {
  // A picked port, not 0: the management URL must name a port nobody listens on yet, which the
  // stand-in takes later (racy only if another process takes it meanwhile).
  const port = await freeTcpPort();
  await withSite(port, async (site) => {
    const signal = await startSignal(site);
    const mgmt = new ManagementStandIn(port);
    try {
      await waitFor('three failed attempts', () => (failures(signal.log.records).length >= 3 ? true : undefined));
      const logged = failures(signal.log.records);
      assert.match(String(logged[0]?.reason), /ECONNREFUSED/);
      assert.deepEqual(logged.slice(0, 3).map((r) => r.failures), [1, 2, 3]);
      assert.deepEqual(logged.slice(0, 3).map((r) => r.retryInMs), [20, 40, 80]);
      assert.deepEqual(sbsFiles(site), []);
      const st = await status(site);
      assert.equal(st.lastStartup?.ok, false);
      assert.match(String(st.lastStartup?.error), /ECONNREFUSED/);
      assert.equal(st.state, 'serving');

      await mgmt.start();
      await waitFor('files once the management server is up', () => (sbsFiles(site).length === 4 ? true : undefined));
      assert.equal((await waitFor('ok status', async () => ((await status(site)).lastStartup?.ok ? status(site) : undefined))).retry, null);
    } finally {
      await signal.stop();
      await mgmt.stop();
    }
  });
});

for (const [what, body, reason] of [
  ['an answer that is not JSON', '<html>oops</html>', /not JSON/],
  ['a client with a bad MAC', JSON.stringify({ ...validStartupAnswer(), clients: [{ mac: 'nope', action: { type: 'local' } }] }), /^clients\[0\]\.mac: /],
  ['a predefined computer without a name', JSON.stringify({ ...validStartupAnswer(), predefinedComputers: [{ mac: '52:54:00:00:00:09' }] }), /^predefinedComputers\[0\]\.name: /],
  ['an answer without images', JSON.stringify({ ...validStartupAnswer(), images: undefined }), /^images: required/],
  ['an answer with an unknown member', JSON.stringify({ ...validStartupAnswer(), surprise: 1 }), /^surprise: unknown field/],
] as const) {
  test(`garbage from the management server (${what}): nothing is written, the reason is logged`, async () => {
    const mgmt = new ManagementStandIn();
    mgmt.startup = () => ({ status: 200, body });
    await mgmt.start();
    try {
      await withSite(mgmt.port, async (site) => {
        const signal = await startSignal(site);
        try {
          await waitFor('two failed attempts', () => (failures(signal.log.records).length >= 2 ? true : undefined));
          const failure = failures(signal.log.records)[0]!;
          assert.match(String(failure.reason), reason);
          assert.equal(failure.code, 'MANAGEMENT_BAD_ANSWER');
          assert.deepEqual(sbsFiles(site), []);
        } finally {
          await signal.stop();
        }
      });
    } finally {
      await mgmt.stop();
    }
  });
}

test('a ws server-started message is acked and runs the start-up sequence again', async () => {
  const mgmt = new ManagementStandIn();
  await mgmt.start();
  try {
    await withSite(mgmt.port, async (site) => {
      const signal = await startSignal(site);
      try {
        await waitFor('first start-up', () => (sbsFiles(site).length === 4 ? true : undefined));
        const firstConfigId = readDoc(site, 'initialPXEConfigPath.sbs').id;

        assert.deepEqual(await sendWs(site, '{"type":"hello"}'), { type: 'error', message: 'signal: unknown message type "hello"' });
        assert.deepEqual(await sendWs(site, JSON.stringify({ type: 'server-started', pid: 4242, at: new Date().toISOString() })), { type: 'ack' });

        await waitFor('second start-up', () => (mgmt.count('GET', '/pxe/startup') === 2 && signal.runner?.idle ? true : undefined));
        const files = sbsFiles(site);
        assert.equal(files.filter((f) => f.endsWith('-client.sbs')).length, 2, files.join());
        assert.notEqual(readDoc(site, 'initialPXEConfigPath.sbs').id, firstConfigId);
        assert.ok(signal.log.records.some((r) => r.msg === 'signal message dropped'));
      } finally {
        await signal.stop();
      }
    });
  } finally {
    await mgmt.stop();
  }
});

test('triggers during a run coalesce into one more run', async () => {
  const mgmt = new ManagementStandIn();
  let release: (() => void) | null = null;
  const held = new Promise<void>((r) => (release = r));
  mgmt.startup = async () => {
    if (mgmt.count('GET', '/pxe/startup') === 1) await held;
    return { status: 200, body: JSON.stringify(validStartupAnswer()) };
  };
  await mgmt.start();
  try {
    await withSite(mgmt.port, async (site) => {
      const signal = await startSignal(site);
      try {
        await waitFor('first request in flight', () => (mgmt.count('GET', '/pxe/startup') === 1 ? true : undefined));
        for (let pid = 100; pid < 103; pid++) {
          assert.deepEqual(await sendWs(site, JSON.stringify({ type: 'server-started', pid, at: new Date().toISOString() })), { type: 'ack' });
        }
        release!();
        await waitFor('runner idle', () => (signal.runner?.idle && signal.runner.runs >= 2 ? true : undefined));
        assert.equal(mgmt.count('GET', '/pxe/startup'), 2);
        assert.equal(signal.runner?.runs, 2);
      } finally {
        await signal.stop();
      }
    });
  } finally {
    await mgmt.stop();
  }
});

test('standalone: nothing is fetched or written; server-started is still acked', async () => {
  await withSite(null, async (site) => {
    const signal = await startSignal(site);
    try {
      assert.equal(signal.runner, null);
      assert.ok(signal.log.records.some((r) => String(r.msg).startsWith('standalone')));
      assert.deepEqual(await sendWs(site, JSON.stringify({ type: 'server-started', pid: 7, at: new Date().toISOString() })), { type: 'ack' });
      const st = await status(site);
      assert.equal(st.management, null);
      assert.equal(st.lastStartup, null);
      assert.equal(st.registered, false);
      assert.equal(st.state, 'serving');
      assert.deepEqual(sbsFiles(site), []);
    } finally {
      await signal.stop();
    }
  });
});

test('a management server that never answers: the request times out and is retried', async () => {
  const mgmt = new ManagementStandIn();
  mgmt.startup = () => new Promise(() => {});
  await mgmt.start();
  try {
    await withSite(mgmt.port, async (site) => {
      const signal = await startSignal(site);
      try {
        await waitFor('two timeouts', () => (failures(signal.log.records).length >= 2 ? true : undefined));
        const failure = failures(signal.log.records)[0]!;
        assert.match(String(failure.reason), /no answer within 100 ms/);
        assert.equal(failure.code, 'MANAGEMENT_UNREACHABLE');
        assert.deepEqual(sbsFiles(site), []);
      } finally {
        await signal.stop();
      }
    }, 100);
  } finally {
    await mgmt.stop();
  }
});

test('the PXE server side: announceServerStarted gets the ack and triggers a run', async () => {
  const mgmt = new ManagementStandIn();
  await mgmt.start();
  try {
    await withSite(mgmt.port, async (site) => {
      const signal = await startSignal(site);
      try {
        await waitFor('first start-up', () => (signal.runner?.last?.ok ? true : undefined));
        await announceServerStarted(signalUrl(site.config), localProof(LocalKey.of(site.config.paths.data)), 2000);
        await waitFor('second start-up', () => (mgmt.count('GET', '/pxe/startup') === 2 ? true : undefined));
      } finally {
        await signal.stop();
      }
      await assert.rejects(announceServerStarted(signalUrl(site.config), localProof(LocalKey.of(site.config.paths.data)), 2000), { code: 'SIGNAL_UNREACHABLE' });
    });
  } finally {
    await mgmt.stop();
  }
});
