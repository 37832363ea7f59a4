// What a hostile or broken network does to the service: forged packets from other ports,
// garbage datagrams, a client that stops ACKing, a client that refuses the OACK, shutdown
// with transfers running; and the boot hooks the PXE server relies on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../helpers/env.ts';
import type { BootHooks, FetchedInfo } from '../../services/mtftp/boot-hooks.ts';
import { ack, logged, md5, md5File, putFile, rrq, run, ScriptedClient, scriptedDownload, startService, type RunningService } from './helpers.ts';
import { REQUEST_CROSSING_MS } from '../../protocols/tftp/transfer.ts';

const fetched: FetchedInfo[] = [];
const asked: string[] = [];
let outside = '';
const generated = Buffer.from('#!ipxe\nchain http://example/boot\n');
/** A generated script of more than one default block (a long menu). */
const generatedLong = Buffer.from(`#!ipxe\n${'echo a long menu line\n'.repeat(30)}`);

const hooks: BootHooks = {
  async resolveVirtual(path, client) {
    asked.push(path);
    if (path === 'netboot/aa-bb/boot.ipxe') return { type: 'content', data: generated };
    if (path === 'netboot/aa-bb/menu/0.ipxe') return { type: 'content', data: generatedLong };
    if (path === 'netboot/aa-bb/image.bin') return { type: 'file', path: join(outside, 'image.bin') };
    if (path === 'netboot/aa-bb/relative') return { type: 'file', path: 'one.bin' };
    if (path === 'netboot/throws') throw new Error('server exploded');
    return { type: 'none', reason: `no boot action for ${client.address}` };
  },
  fetched: (info) => void fetched.push(info),
};

let svc: RunningService;
const data = new Map<string, Buffer>();

before(async () => {
  svc = await startService({ hooks, mtftp: { timeoutMs: 200, retries: 3 } });
  outside = mkdtempSync(join(tmpdir(), 'netboot-mtftp-pkg-'));
  data.set('one.bin', putFile(svc.root, 'one.bin', 1));
  data.set('mid.bin', putFile(svc.root, 'mid.bin', 300_000));
  data.set('big.bin', putFile(svc.root, 'big.bin', 4_000_000));
  data.set('netboot/shadowed', putFile(svc.root, 'netboot/shadowed', 10));
  const image = randomBytes(50_000);
  writeFileSync(join(outside, 'image.bin'), image);
  data.set('image.bin', image);
});

after(async () => {
  await svc.stop();
  rmSync(outside, { recursive: true, force: true });
});

test('a forged ERROR (and ACK, and garbage) from another port does not disturb a transfer', async () => {
  const legit = await ScriptedClient.open();
  const forger = await ScriptedClient.open();
  try {
    await legit.send(rrq('mid.bin', 'octet', { blksize: '1024' }), svc.port);
    const oack = await legit.next();
    assert.ok(oack !== null && oack.msg.readUInt16BE(0) === 6);
    const serverPort = oack.rinfo.port;
    // Forged packets aimed at the transfer's port from the same host, another port.
    await forger.send(Buffer.from([0, 5, 0, 0, 0x62, 0x79, 0x65, 0]), serverPort);
    await forger.send(ack(0), serverPort);
    await forger.send(Buffer.from([1]), serverPort);
    await forger.send(randomBytes(700), serverPort);
    // The real client carries on as if nothing happened.
    await legit.send(ack(0), serverPort);
    const chunks: Buffer[] = [];
    for (let block = 1; ; block++) {
      const got = await legit.next();
      assert.ok(got !== null, `no DATA ${block}`);
      assert.equal(got.msg.readUInt16BE(0), 3);
      assert.equal(got.msg.readUInt16BE(2), block);
      chunks.push(got.msg.subarray(4));
      await legit.send(ack(block), serverPort);
      if (got.msg.length - 4 < 1024) break;
    }
    assert.equal(md5(Buffer.concat(chunks)), md5(data.get('mid.bin') as Buffer));
    assert.equal((await forger.next(200)) ?? null, null, 'the forger got nothing back');
  } finally {
    legit.close();
    forger.close();
  }
});

test('malformed datagrams from the client itself are dropped with a reason; the transfer goes on', async () => {
  const c = await ScriptedClient.open();
  try {
    await c.send(rrq('mid.bin'), svc.port);
    const first = await c.next();
    assert.ok(first !== null && first.msg.readUInt16BE(2) === 1);
    const serverPort = first.rinfo.port;
    for (const junk of [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 4, 0]), Buffer.from([0, 9, 1, 2]), Buffer.from([0, 3, 0, 1, 5])]) await c.send(junk, serverPort);
    await c.send(ack(1), serverPort);
    const second = await c.next();
    assert.ok(second !== null);
    assert.equal(second.msg.readUInt16BE(2), 2);
    await c.send(Buffer.from([0, 5, 0, 0, 0x78, 0]), serverPort); // our own abort
    await waitFor('malformed logged', () => (logged(svc.log, 'dropped malformed datagram from client').length >= 3 ? true : undefined), 3000);
    await waitFor('abort logged', () => (logged(svc.log, 'transfer ended early', (r) => String(r.reason).includes('client sent ERROR 0')).length > 0 ? true : undefined), 3000);
  } finally {
    c.close();
  }
});

test('garbage on the TFTP port never stops the service', async () => {
  const c = await ScriptedClient.open();
  try {
    for (let i = 0; i < 2000; i++) {
      await c.send(randomBytes(Math.floor(Math.random() * 64)), svc.port);
      // Sender and service share this event loop: let the service read, or the kernel drops.
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    for (const pkt of [Buffer.from([0, 4, 0, 1]), Buffer.from([0, 3, 0, 1]), Buffer.from([0, 6]), Buffer.from([0, 1, 0x61])]) await c.send(pkt, svc.port);
    // A barrier, not a pause: the service answers this request only after reading everything
    // queued before it on its one socket (sent again while the kernel drops it from a full queue).
    let answer: Awaited<ReturnType<typeof c.next>> = null;
    for (let i = 0; i < 20 && answer === null; i++) {
      await c.send(rrq('one.bin'), svc.port);
      answer = await c.next(500);
    }
    assert.ok(answer !== null, 'the service answers after the garbage');
    await c.send(Buffer.from([0, 5, 0, 0, 0]), answer.rinfo.port);
  } finally {
    c.close();
  }
  const client = await ScriptedClient.open();
  try {
    const { data: got } = await scriptedDownload(client, svc.port, 'mid.bin');
    assert.equal(md5(got), md5(data.get('mid.bin') as Buffer));
  } finally {
    client.close();
  }
  assert.ok(logged(svc.log, 'dropped malformed datagram').length > 0);
});

test('EDK2 style: tsize+windowsize probe, ERROR 8 after the OACK, then the real download', async () => {
  const probe = await ScriptedClient.open();
  try {
    await probe.send(rrq('big.bin', 'octet', { tsize: '0', blksize: '1468', windowsize: '4' }), svc.port);
    const oack = await probe.next();
    assert.ok(oack !== null);
    assert.equal(oack.msg.readUInt16BE(0), 6);
    assert.equal(oack.msg.subarray(2).toString('latin1'), 'tsize\x004000000\x00blksize\x001468\x00windowsize\x004\x00');
    await probe.send(Buffer.from('\x00\x05\x00\x08tsize only\x00', 'latin1'), oack.rinfo.port);
  } finally {
    probe.close();
  }
  await waitFor('refusal logged', () => (logged(svc.log, 'transfer ended by the client after the OACK').length > 0 ? true : undefined), 3000);
  const dest = join(outside, 'edk2.bin');
  const r = await run('atftp', ['--get', '-r', 'big.bin', '-l', dest, '--option', 'tsize 0', '--option', 'blksize 1468', '--option', 'windowsize 4', '127.0.0.1', String(svc.port)]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(md5File(dest), md5(data.get('big.bin') as Buffer));
});

test('a repeated request from the same client port does not start a second transfer', async () => {
  const c = await ScriptedClient.open();
  try {
    await c.send(rrq('mid.bin'), svc.port);
    await c.send(rrq('mid.bin'), svc.port);
    await c.send(rrq('mid.bin'), svc.port);
    const first = await c.next();
    assert.ok(first !== null);
    // The event, not a pause: both repeats were taken as repeats (handled in this process; one
    // more turn of the loop delivers anything they sent to the client's socket).
    const peer = `127.0.0.1:${c.port}`;
    await waitFor('both repeats handled', () => (logged(svc.log, 'repeated request', (x) => x.peer === peer).length >= 2 ? true : undefined), 3000);
    await new Promise((r) => setImmediate(r));
    const others = c.drain().filter((m) => m.rinfo.port !== first.rinfo.port);
    assert.deepEqual(others, [], 'only one transfer port answered');
    await c.send(Buffer.from([0, 5, 0, 0, 0]), first.rinfo.port);
  } finally {
    c.close();
  }
});

test('a repeated request that crossed our OACK gets no second OACK; a later one does', async () => {
  // atftp aborts on a second OACK ("unexpected OACK"): seen when its first RRQ was held ~1 s
  // behind a lost ARP reply and arrived just before its own retry.
  const c = await ScriptedClient.open();
  try {
    const req = rrq('mid.bin', 'octet', { blksize: '1468', windowsize: '4' });
    await c.send(req, svc.port);
    await c.send(req, svc.port);
    const first = await c.next();
    assert.ok(first !== null && first.msg.readUInt16BE(0) === 6, 'an OACK');
    // The event, not a pause: the repeat was handled (one more turn of the loop delivers anything
    // it sent to the client's socket).
    const peer = `127.0.0.1:${c.port}`;
    await waitFor('the repeat handled', () => (logged(svc.log, 'repeated request', (x) => x.peer === peer).length >= 1 ? true : undefined), 3000);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(c.drain().map((m) => m.msg.readUInt16BE(0)), [], 'no second OACK for the crossed repeat');
    // Part of the scenario, not an ordering: the client's next retry comes well after our OACK.
    await new Promise((r) => setTimeout(r, REQUEST_CROSSING_MS + 50));
    // The client really missed it: its next retry, well after our OACK, is answered.
    await c.send(req, svc.port);
    const again = await c.next();
    assert.ok(again !== null && again.msg.readUInt16BE(0) === 6 && again.rinfo.port === first.rinfo.port, 'the OACK again, from the same transfer');
    await c.send(Buffer.from([0, 5, 0, 0, 0]), first.rinfo.port);
  } finally {
    c.close();
  }
});

test('a dead client (no more ACKs) does not hold up another client', async () => {
  const dead = await ScriptedClient.open();
  try {
    await dead.send(rrq('big.bin', 'octet', { blksize: '1428', windowsize: '8' }), svc.port);
    const oack = await dead.next();
    assert.ok(oack !== null);
    await dead.send(ack(0), oack.rinfo.port);
    // The dead client now ignores everything; another client downloads meanwhile.
    const dest = join(outside, 'alive.bin');
    const r = await run('atftp', ['--get', '-r', 'big.bin', '-l', dest, '--option', 'blksize 1468', '--option', 'windowsize 8', '127.0.0.1', String(svc.port)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(md5File(dest), md5(data.get('big.bin') as Buffer));
    // The dead client's transfer was still alive (retransmitting) when the other one finished.
    const deadTransfer = logged(svc.log, 'transfer ended early', (x) => x.peer === `127.0.0.1:${dead.port}`);
    assert.equal(deadTransfer.length, 0, 'the dead transfer had not been given up yet');
    await waitFor('dead transfer given up', () => (logged(svc.log, 'transfer ended early', (x) => x.peer === `127.0.0.1:${dead.port}`).length > 0 ? true : undefined), 8000);
    const retransmitted = dead.drain().filter((m) => m.msg.readUInt16BE(0) === 3 && m.msg.readUInt16BE(2) === 1);
    assert.ok(retransmitted.length >= 2, `block 1 was retransmitted (${retransmitted.length})`);
    const end = logged(svc.log, 'transfer ended early', (x) => x.peer === `127.0.0.1:${dead.port}`)[0];
    assert.match(String(end?.reason), /no acknowledgement after 3 retransmissions/);
  } finally {
    dead.close();
  }
});

test('virtual paths go to the boot hooks; root files never do; fetched() only on completion, only for virtual paths', async () => {
  const c = await ScriptedClient.open();
  try {
    fetched.length = 0;
    asked.length = 0;
    const script = await scriptedDownload(c, svc.port, 'netboot/aa-bb/boot.ipxe');
    assert.equal(script.data.toString(), generated.toString());
    const image = await scriptedDownload(c, svc.port, '\\netboot\\aa-bb\\image.bin', { blksize: '1400' });
    assert.equal(md5(image.data), md5(data.get('image.bin') as Buffer));
    const rel = await scriptedDownload(c, svc.port, 'netboot/aa-bb/relative');
    assert.equal(md5(rel.data), md5(data.get('one.bin') as Buffer));
    const plain = await scriptedDownload(c, svc.port, 'one.bin');
    assert.equal(plain.data.length, 1);
    for (const missing of ['netboot/shadowed', 'netboot/throws', 'netboot/zz/none']) {
      await assert.rejects(scriptedDownload(c, svc.port, missing), /server sent ERROR 1 File not found/);
    }
    assert.deepEqual(asked, ['netboot/aa-bb/boot.ipxe', 'netboot/aa-bb/image.bin', 'netboot/aa-bb/relative', 'netboot/shadowed', 'netboot/throws', 'netboot/zz/none']);
    // one.bin, from the root, is never reported. A barrier, not a pause: a virtual path fetched
    // after it is reported after anything one.bin could have caused.
    await scriptedDownload(c, svc.port, 'netboot/aa-bb/boot.ipxe');
    await waitFor('fetched calls up to the barrier', () => (fetched.length >= 4 ? true : undefined), 3000);
    assert.equal(fetched.pop()?.path, 'netboot/aa-bb/boot.ipxe', 'the barrier came last');
    assert.deepEqual(
      fetched.map((f) => [f.path, f.resolvedPath ?? null, f.bytes, f.address, f.port]),
      [
        ['netboot/aa-bb/boot.ipxe', null, generated.length, '127.0.0.1', c.port],
        ['netboot/aa-bb/image.bin', join(outside, 'image.bin'), 50_000, '127.0.0.1', c.port],
        ['netboot/aa-bb/relative', join(svc.root, 'one.bin'), 1, '127.0.0.1', c.port],
      ],
    );
    assert.ok(fetched.every((f) => f.durationMs >= 0));
    assert.match(String(logged(svc.log, 'request refused', (r) => r.path === 'netboot/throws')[0]?.reason), /server exploded/);
    assert.match(String(logged(svc.log, 'request refused', (r) => r.path === 'netboot/zz/none')[0]?.reason), /no boot action for 127\.0\.0\.1/);
  } finally {
    c.close();
  }
});

test('an aborted or refused transfer is never reported as fetched', async () => {
  fetched.length = 0;
  const c = await ScriptedClient.open();
  try {
    await c.send(rrq('netboot/aa-bb/image.bin', 'octet', { tsize: '0' }), svc.port);
    const oack = await c.next();
    assert.ok(oack !== null);
    await c.send(Buffer.from('\x00\x05\x00\x08no\x00', 'latin1'), oack.rinfo.port);
    await waitFor('refusal', () => (logged(svc.log, 'transfer ended by the client after the OACK', (r) => r.peer === `127.0.0.1:${c.port}`).length > 0 ? true : undefined), 3000);
  } finally {
    c.close();
  }
  assert.deepEqual(fetched, []);
});

test('a generated script under one block comes as DATA 1 at once, options declined; a longer one and files negotiate', async () => {
  const c = await ScriptedClient.open();
  try {
    fetched.length = 0;
    // As iPXE asks: blksize 1432 and tsize.
    await c.send(rrq('netboot/aa-bb/boot.ipxe', 'octet', { blksize: '1432', tsize: '0' }), svc.port);
    const first = await c.next();
    assert.ok(first !== null);
    assert.equal(first.msg.readUInt16BE(0), 3, 'DATA, not OACK');
    assert.equal(first.msg.readUInt16BE(2), 1);
    assert.deepEqual(first.msg.subarray(4), generated);
    await c.send(ack(1), first.rinfo.port);
    await waitFor('the fetched report', () => (fetched.some((f) => f.path === 'netboot/aa-bb/boot.ipxe') ? true : undefined), 3000);
    const started = logged(svc.log, 'transfer started', (r) => r.peer === `127.0.0.1:${c.port}` && r.file === 'netboot/aa-bb/boot.ipxe').at(-1);
    assert.ok(started !== undefined, 'transfer started is logged');
    const ignored = started.ignoredOptions as { name: string; reason: string }[];
    assert.deepEqual(ignored.map((o) => o.name), ['blksize', 'tsize']);
    assert.match(String(ignored[0]?.reason), /one 512-byte block/);

    for (const [file, size] of [['netboot/aa-bb/menu/0.ipxe', generatedLong.length], ['netboot/aa-bb/relative', 1]] as const) {
      await c.send(rrq(file, 'octet', { blksize: '1432', tsize: '0' }), svc.port);
      const oack = await c.next();
      assert.ok(oack !== null);
      assert.equal(oack.msg.readUInt16BE(0), 6, `${file}: OACK`);
      assert.equal(oack.msg.subarray(2).toString('latin1'), `blksize\x001432\x00tsize\x00${size}\x00`);
      await c.send(Buffer.from('\x00\x05\x00\x08done\x00', 'latin1'), oack.rinfo.port);
    }
    const long = await scriptedDownload(c, svc.port, 'netboot/aa-bb/menu/0.ipxe', { blksize: '1432', tsize: '0' });
    assert.deepEqual(long.data, generatedLong);
  } finally {
    c.close();
  }
});

test('shutdown sends ERROR "server shutting down" to every active client', async () => {
  const a = await ScriptedClient.open();
  const b = await ScriptedClient.open();
  try {
    await a.send(rrq('big.bin'), svc.port);
    await b.send(rrq('big.bin', 'octet', { blksize: '1468' }), svc.port);
    const fa = await a.next();
    const fb = await b.next();
    assert.ok(fa !== null && fb !== null);
    await waitFor('two transfers', () => (svc.service.activeTransfers === 2 ? true : undefined), 3000);
    assert.equal(svc.service.status().state, 'serving');
    await svc.service.stop();
    for (const c of [a, b]) {
      const msgs = [...c.drain()];
      const err = msgs.find((m) => m.msg.readUInt16BE(0) === 5) ?? (await c.next(2000));
      assert.ok(err !== null && err !== undefined);
      assert.equal(err.msg.readUInt16BE(0), 5);
      assert.equal(err.msg.readUInt16BE(2), 0);
      assert.equal(err.msg.subarray(4, err.msg.length - 1).toString(), 'server shutting down');
    }
    assert.equal(svc.service.activeTransfers, 0);
    assert.equal(svc.service.status().state, 'stopping');
  } finally {
    a.close();
    b.close();
  }
});
