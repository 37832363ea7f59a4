// The bounds of issue 16 item 1: a read request asking for the largest options (blksize 65464,
// windowsize 64: an 8.4 MB ring) holds almost nothing until its client answers, and gives it back
// when it ends; transfers are capped overall and per client address, with an ERROR and a log
// line for the refused one while the others are served, and at a cap the oldest transfer whose
// client never answered gives way first; a session's lifetime is bounded; ring
// growth past the first slots stays within a budget. Distinct client addresses are 127.0.0.x
// on loopback: a socket may bind any of them, and the real clients (tftp-hpa, atftp) send from
// 127.0.0.1.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { NO_BOOT_HOOKS } from '../../services/mtftp/boot-hooks.ts';
import { TftpRoot } from '../../services/mtftp/tftp-root.ts';
import { loadNativeLink } from '../../services/mtftp/native-link.ts';
import { TftpServer } from '../../services/mtftp/tftp-server.ts';
import { makeTestSite, waitFor } from '../helpers/env.ts';
import { ack, ensureNativeBuilt, logged, md5, md5File, putFile, rrq, run, ScriptedClient, startService, testSendPath, type RunResult } from './helpers.ts';

const LARGE = { blksize: '65464', windowsize: '64', tsize: '0' };
/** A file larger than the ring such options make (2 × 64 blocks of 65468 bytes). */
const BIG_SIZE = 12 * 1024 * 1024;
const MB = 1024 * 1024;

const children: ChildProcess[] = [];
const cleanups: (() => void | Promise<void>)[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const f of cleanups.reverse()) await f();
});

/** `n` scripted clients on 127.0.0.(first..), one request each; resolves once every one has its first answer. */
async function openClients(n: number, first: number): Promise<ScriptedClient[]> {
  const clients: ScriptedClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = await ScriptedClient.open(`127.0.${(first + i) >> 8}.${(first + i) & 0xff}`);
    clients.push(c);
    cleanups.push(() => c.close());
  }
  return clients;
}

type Received = NonNullable<Awaited<ReturnType<ScriptedClient['next']>>>;

function opcode(got: { msg: Buffer } | null): number {
  return got === null ? -1 : got.msg.readUInt16BE(0);
}

function errorText(got: { msg: Buffer } | null): string {
  return got === null ? '(nothing)' : `${got.msg.readUInt16BE(2)} ${got.msg.subarray(4, got.msg.length - 1).toString('latin1')}`;
}

/**
 * After an OACK from `serverPort`: ACK 0, then receive as an RFC 7440 client does (ACK each
 * window's last block, the last in-order block at a gap or after a second of silence: a 64 KiB
 * datagram can overflow the socket's receive buffer); returns the bytes.
 */
async function finishDownload(client: ScriptedClient, serverPort: number, blockSize: number, windowSize = 1, firstData?: Received): Promise<Buffer> {
  try {
    client.socket.setRecvBufferSize(4 * MB); // capped by net.core.rmem_max
  } catch {
    // the gap handling below copes
  }
  const chunks: Buffer[] = [];
  let expected = 1;
  let inWindow = 0;
  let silences = 0;
  const sendAck = (): Promise<void> => {
    inWindow = 0;
    return client.send(ack((expected - 1) & 0xffff), serverPort);
  };
  let pending = firstData ?? null;
  if (pending === null) await sendAck();
  for (;;) {
    const got = pending ?? (await client.next(1000));
    pending = null;
    if (got === null) {
      assert.ok(++silences < 30, 'download stalled');
      await sendAck();
      continue;
    }
    if (got.rinfo.port !== serverPort) continue;
    assert.equal(opcode(got), 3, `expected DATA, got ${errorText(got)}`);
    if (got.msg.readUInt16BE(2) !== (expected & 0xffff)) {
      if (inWindow > 0) await sendAck(); // a gap: go back to what we have
      continue;
    }
    chunks.push(got.msg.subarray(4));
    expected++;
    inWindow++;
    if (got.msg.length - 4 < blockSize) {
      await sendAck();
      return Buffer.concat(chunks);
    }
    if (inWindow === windowSize) await sendAck();
  }
}

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

test('(a) 100 large-option requests that never ACK leave the mtftp process small, and it stays small after they time out', async () => {
  ensureNativeBuilt();
  // retries = 1 and timeout 1: an unanswered OACK ends after 1 + 2 s, with an ERROR to the client.
  const site = await makeTestSite('[mtftp]\nretries = 1\n[log]\nlevel = "info"', 'netboot-mtftp-bounds');
  cleanups.push(() => site.cleanup());
  putFile(site.config.paths.tftpRoot, 'big.bin', BIG_SIZE);
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/mtftp/main.ts', '--config', site.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  // Port 0: the port the kernel picked, from the service's log line.
  const tftpPort = await waitFor('mtftp listening', () => {
    const line = out.split('\n').find((l) => l.includes('"TFTP listening"'));
    return line === undefined ? undefined : (JSON.parse(line) as { port: number }).port;
  }, 30000, 50);
  const pid = child.pid as number;
  // One warm-up transfer, so code and buffers of the path are already paid for in the baseline.
  const warm = await run('atftp', ['--get', '-r', 'big.bin', '-l', join(site.dir, 'warm'), '--option', 'blksize 1432', '127.0.0.1', String(tftpPort)], { timeoutMs: 60000 });
  assert.equal(warm.code, 0, warm.stderr);
  const idle = rssMb(pid);

  // 100 addresses, one request each (within the default per-client cap), every one answered with an OACK.
  const N = 100;
  const clients = await openClients(N, 2);
  let peak = idle;
  const sample = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 50);
  try {
    for (const c of clients) await c.send(rrq('big.bin', 'octet', { ...LARGE, timeout: '1' }), tftpPort);
    const first = await Promise.all(clients.map((c) => c.next(30000)));
    assert.ok(first.every((g) => opcode(g) === 6), 'every request got its OACK');
    // Each session times out without an answer and says so: that is when its memory is free.
    const second = await Promise.all(clients.map((c) => c.next(30000)));
    assert.ok(second.every((g) => opcode(g) === 5), `every session ended with an ERROR: ${second.map(errorText).slice(0, 3).join('; ')}`);
  } finally {
    clearInterval(sample);
  }
  // The bound: 64 KiB of slots per unanswered request (6.4 MB for 100), the rest is sockets and
  // objects. Before: about 8 MB per request (+780 MB for 100), never given back.
  assert.ok(peak - idle < 64, `RSS grew ${Math.round(peak - idle)} MB for ${N} unanswered requests (idle ${Math.round(idle)} MB)`);
  const back = await waitFor('RSS back near idle', () => (rssMb(pid) - idle < 24 ? rssMb(pid) : undefined), 30000, 250);
  assert.ok(back - idle < 24);
  child.kill('SIGTERM');
});

test('(a) buffer bytes: 64 KiB per unanswered request, a window and a read once the client answers, all back at the end', async () => {
  const svc = await startService({ mtftp: { retries: 1 } });
  cleanups.push(() => svc.stop());
  const data = putFile(svc.root, 'big.bin', BIG_SIZE);
  const N = 200;
  const clients = await openClients(N, 2);
  for (const c of clients) await c.send(rrq('big.bin', 'octet', { ...LARGE, timeout: '1' }), svc.port);
  const oacks = await Promise.all(clients.map((c) => c.next(30000)));
  assert.ok(oacks.every((g) => opcode(g) === 6));
  await waitFor('first slots read', () => (svc.service.bufferBytes >= N * 65468 ? true : undefined));
  assert.ok(svc.service.bufferBytes <= N * 64 * 1024, `${svc.service.bufferBytes} bytes held for ${N} unanswered requests`);
  // A client that answers (blksize 65464, windowsize 4): its ring grows to a window and a read
  // (4 + 3 blocks) with ACK 0, and it gets the whole file.
  const answering = await ScriptedClient.open('127.0.3.1');
  cleanups.push(() => answering.close());
  await answering.send(rrq('big.bin', 'octet', { blksize: '65464', windowsize: '4', timeout: '5' }), svc.port);
  const oack = await answering.next(10000);
  assert.equal(opcode(oack), 6);
  const before = svc.service.bufferBytes;
  assert.ok(before <= (N + 1) * 64 * 1024);
  const serverPort = oack?.rinfo.port as number;
  await answering.send(ack(0), serverPort);
  const data1 = await answering.next(10000);
  assert.equal(opcode(data1), 3);
  assert.ok(svc.service.bufferBytes >= before + 6 * 65468, `grew from ${before} to ${svc.service.bufferBytes} bytes on ACK 0`);
  answering.drain();
  const got = await finishDownload(answering, serverPort, 65464, 4);
  assert.equal(md5(got), md5(data), 'the answering client got the file');
  // The unanswered ones time out; nothing is held after.
  const ends = await Promise.all(clients.map((c) => c.next(30000)));
  assert.ok(ends.every((g) => opcode(g) === 5));
  await waitFor('sessions gone', () => (svc.service.activeTransfers === 0 ? true : undefined), 10000);
  assert.equal(svc.service.bufferBytes, 0);
});

test('(b) past max_transfers_per_client and max_transfers a request gets an ERROR and a log line; everyone else is served', async () => {
  const svc = await startService({ mtftp: { maxTransfers: 3, maxTransfersPerClient: 2 } });
  cleanups.push(() => svc.stop());
  const data = putFile(svc.root, 'mid.bin', 300_000);
  const out = join(svc.site.dir, 'dl');
  const hpa = (dest: string): Promise<RunResult> => run('tftp', ['-m', 'binary', '127.0.0.1', String(svc.port), '-c', 'get', 'mid.bin', dest], { timeoutMs: 30000 });

  // Two held transfers from 127.0.0.2 (answered: ACK 0, DATA 1 received, then nothing for a
  // while; timeout 30 keeps them): its cap is reached, and neither may be evicted.
  const opts = { blksize: '1432', timeout: '30' };
  const hold = async (c: ScriptedClient): Promise<{ port: number; first: Received }> => {
    await c.send(rrq('mid.bin', 'octet', opts), svc.port);
    const oack = await c.next();
    assert.equal(opcode(oack), 6);
    await c.send(ack(0), oack?.rinfo.port as number);
    const first = await c.next();
    assert.ok(first !== null && opcode(first) === 3);
    return { port: oack?.rinfo.port as number, first };
  };
  const a1 = await ScriptedClient.open('127.0.0.2');
  const a2 = await ScriptedClient.open('127.0.0.2');
  const a3 = await ScriptedClient.open('127.0.0.2');
  cleanups.push(() => a1.close(), () => a2.close(), () => a3.close());
  const h1 = await hold(a1);
  const h2 = await hold(a2);
  await a3.send(rrq('mid.bin', 'octet', opts), svc.port);
  const refused = await a3.next();
  assert.equal(opcode(refused), 5);
  assert.match(errorText(refused), /^0 server busy: too many transfers from your address/);
  const line = logged(svc.log, 'request refused', (r) => String(r.reason).includes('max_transfers_per_client = 2'));
  assert.equal(line.length, 1);
  assert.equal(line[0]?.peer, `127.0.0.2:${a3.port}`);

  // Another address is served meanwhile, by a real client.
  assert.equal((await hpa(`${out}-1`)).code, 0);
  assert.equal(md5File(`${out}-1`), md5(data));

  // A third transfer from 127.0.0.3 fills max_transfers: anyone new is refused, from any address.
  const b1 = await ScriptedClient.open('127.0.0.3');
  const c1 = await ScriptedClient.open('127.0.0.4');
  cleanups.push(() => b1.close(), () => c1.close());
  await hold(b1);
  await c1.send(rrq('mid.bin', 'octet', opts), svc.port);
  const full = await c1.next();
  assert.match(errorText(full), /^0 server busy: too many transfers, try again later/);
  assert.equal(logged(svc.log, 'request refused', (r) => String(r.reason).includes('max_transfers = 3')).length, 1);
  // A flood of refusals costs no more lines (one per kind per interval, and a summary after).
  for (let i = 0; i < 50; i++) await c1.send(rrq(`mid.bin`, 'octet', opts), svc.port);
  for (let i = 0; i < 50; i++) assert.equal(opcode(await c1.next()), 5);
  const refusedLines = logged(svc.log, 'request refused');
  assert.equal(refusedLines.filter((r) => r.notLogged === undefined).length, 2, 'one line per kind');
  assert.ok(refusedLines.length <= 3, 'and at most a summary of the flood');
  // tftp-hpa exits 0 after an ERROR; it prints it.
  const hpaRefused = await hpa(`${out}-2`);
  assert.match(hpaRefused.stdout + hpaRefused.stderr, /server busy: too many transfers/, 'a real client is refused too while the server is full');

  // The transfers running go on: the held ones complete with the right content.
  assert.equal(md5(await finishDownload(a1, h1.port, 1432, 1, h1.first)), md5(data));
  assert.equal(md5(await finishDownload(a2, h2.port, 1432, 1, h2.first)), md5(data));
  // And with room again, a real client is served (atftp, blksize and windowsize).
  await waitFor('slots freed', () => (svc.service.activeTransfers <= 1 ? true : undefined));
  const r = await run('atftp', ['--get', '-r', 'mid.bin', '-l', `${out}-3`, '--option', 'blksize 1432', '--option', 'windowsize 8', '127.0.0.1', String(svc.port)], { timeoutMs: 30000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(md5File(`${out}-3`), md5(data));
});

test('(b) at a cap, the oldest transfer whose client never answered gives way: forged requests cannot lock real clients out', async () => {
  const svc = await startService({ mtftp: { maxTransfers: 4, maxTransfersPerClient: 2 } });
  cleanups.push(() => svc.stop());
  const data = putFile(svc.root, 'mid.bin', 300_000);
  const opts = { blksize: '1432', timeout: '30' };
  // Four requests that are never answered (as from forged addresses) fill max_transfers.
  const forged = await openClients(4, 2); // 127.0.0.2 .. 127.0.0.5
  for (const c of forged) {
    await c.send(rrq('mid.bin', 'octet', opts), svc.port);
    assert.equal(opcode(await c.next()), 6);
  }
  // A real client is served: the oldest unanswered one (127.0.0.2) gives way, told so.
  const dest = join(svc.site.dir, 'dl');
  const r = await run('tftp', ['-m', 'binary', '127.0.0.1', String(svc.port), '-c', 'get', 'mid.bin', dest], { timeoutMs: 30000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(md5File(dest), md5(data));
  assert.equal(errorText(await forged[0]!.next()), '0 server busy, try again later');
  const evicted = logged(svc.log, 'unanswered transfer evicted');
  assert.equal(evicted.length, 1);
  assert.equal(evicted[0]?.peer, `127.0.0.2:${forged[0]!.port}`);
  assert.equal(evicted[0]?.reason, 'evicted: its client never answered, [mtftp] max_transfers = 4 reached');
  assert.equal(logged(svc.log, 'transfer ended early').length, 0, 'an eviction is not logged twice');
  // Per client: a third request from 127.0.0.9 evicts the older unanswered one of that address only.
  const x1 = await ScriptedClient.open('127.0.0.9');
  const x2 = await ScriptedClient.open('127.0.0.9');
  const x3 = await ScriptedClient.open('127.0.0.9');
  cleanups.push(() => x1.close(), () => x2.close(), () => x3.close());
  await x1.send(rrq('mid.bin', 'octet', opts), svc.port);
  assert.equal(opcode(await x1.next()), 6); // the 4th slot
  await x2.send(rrq('mid.bin', 'octet', opts), svc.port);
  assert.equal(opcode(await x2.next()), 6); // server full: 127.0.0.3 gave way
  assert.equal(errorText(await forged[1]!.next()), '0 server busy, try again later');
  await x3.send(rrq('mid.bin', 'octet', opts), svc.port);
  assert.equal(opcode(await x3.next()), 6); // 127.0.0.9 at its cap: x1 gave way, not 127.0.0.4
  assert.equal(errorText(await x1.next()), '0 server busy, try again later');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([forged[2]!.drain().length, forged[3]!.drain().length, x2.drain().length], [0, 0, 0]);
  assert.equal(svc.service.activeTransfers, 4);
});

test('(c) a transfer still running after max_session_s is abandoned, with an ERROR and the reason logged', async () => {
  const svc = await startService({ mtftp: { maxSessionS: 1 } });
  cleanups.push(() => svc.stop());
  putFile(svc.root, 'mid.bin', 300_000);
  // timeout 30: nothing but the lifetime can end these within the test.
  const opts = { blksize: '1432', timeout: '30' };
  const waiting = await ScriptedClient.open('127.0.0.2'); // never answers the OACK
  const started = await ScriptedClient.open('127.0.0.3'); // takes DATA 1, then stops
  cleanups.push(() => waiting.close(), () => started.close());
  await waiting.send(rrq('mid.bin', 'octet', opts), svc.port);
  await started.send(rrq('mid.bin', 'octet', opts), svc.port);
  assert.equal(opcode(await waiting.next()), 6);
  const oack = await started.next();
  assert.equal(opcode(oack), 6);
  await started.send(ack(0), oack?.rinfo.port as number);
  assert.equal(opcode(await started.next()), 3);
  for (const c of [waiting, started]) {
    const end = await c.next(20000);
    assert.equal(opcode(end), 5, 'the session ended with an ERROR');
    assert.equal(errorText(end), '0 transfer took too long');
  }
  const lines = logged(svc.log, 'transfer ended early', (r) => r.reason === 'session lifetime exceeded (1 s)');
  assert.equal(lines.length, 2);
  assert.equal(svc.service.activeTransfers, 0);
});

test('ring growth past the first slots stays within the buffer budget: past it a transfer ends with ERROR 3, the others go on', async () => {
  const log = createMemoryLogger('debug');
  const site = await makeTestSite('', 'netboot-mtftp-budget');
  cleanups.push(() => site.cleanup());
  const data = putFile(site.config.paths.tftpRoot, 'big.bin', 3 * MB);
  // blksize 65464, windowsize 4: a ring of one slot (64 KiB) until the client answers, then a
  // window and a read (7 slots, 458 KB), at most 8. 700 KB: one answered ring fits, two do not.
  const server = new TftpServer({
    bind: '127.0.0.1',
    port: 0,
    root: new TftpRoot(site.config.paths.tftpRoot),
    limits: { maxBlockSize: 65464, maxWindowSize: 64, timeoutMs: 1000, retries: 3 },
    hooks: NO_BOOT_HOOKS,
    native: loadNativeLink(),
    log,
    sendPath: testSendPath(),
    bufferBudgetBytes: 700_000,
  });
  await server.start();
  cleanups.push(() => server.stop());
  const [c1, c2] = await openClients(2, 2);
  assert.ok(c1 !== undefined && c2 !== undefined);
  const opts = { blksize: '65464', windowsize: '4', timeout: '5' };
  await c1.send(rrq('big.bin', 'octet', opts), server.port);
  await c2.send(rrq('big.bin', 'octet', opts), server.port);
  const o1 = await c1.next();
  const o2 = await c2.next();
  assert.equal(opcode(o1), 6);
  assert.equal(opcode(o2), 6);
  assert.equal(server.bufferBytes, 2 * 65468);
  // The first to answer gets its window; the second cannot have one and is told so.
  await c1.send(ack(0), o1?.rinfo.port as number);
  assert.equal(opcode(await c1.next()), 3);
  assert.equal(server.bufferBytes, 8 * 65468);
  await c2.send(ack(0), o2?.rinfo.port as number);
  const refused = await c2.next();
  assert.equal(errorText(refused), '3 server busy: out of transfer buffer memory, try again later');
  assert.ok(server.bufferBytes <= 700_000);
  await waitFor('refusal logged', () => logged(log, 'transfer ended early', (r) => String(r.reason).startsWith('transfer buffer budget spent')).length === 1 || undefined);
  // The first one goes on to the end, whole; then nothing is held.
  c1.drain();
  assert.equal(md5(await finishDownload(c1, o1?.rinfo.port as number, 65464, 4)), md5(data));
  await waitFor('sessions gone', () => (server.activeTransfers === 0 ? true : undefined));
  assert.equal(server.bufferBytes, 0);
});
