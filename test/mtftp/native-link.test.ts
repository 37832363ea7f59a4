// The native link (native/udp-link) on real loopback sockets: every block of a run arrives once,
// in order, byte for byte, over GSO and sendmmsg (runs across the ring's end, past 64 segments,
// short last packets); the predicted turn fires only on exactly the armed datagram, once; the
// choice of send path; page-cache reads into the ring; the request socket. The addon must be built (npm ci does it): a missing build fails here.
// The failure paths a loopback socket never takes (an allocation that fails, GSO failing part-way,
// an error on the request socket) are reached through the addon's test-only faults
// (NETBOOT_NATIVE_FAULTS=1, set here before the addon loads).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockRing, FileSource, MemorySource, type CachedReader } from '../../services/mtftp/block-ring.ts';
import { chooseSendPath, loadNativeLink, NativeLinks, type NativeSupport } from '../../services/mtftp/native-link.ts';
import { bindSocket, DgramLink, type LinkEvents, type TransferLink } from '../../services/mtftp/transfer-link.ts';
import { ensureNativeBuilt } from './helpers.ts';
import { lastBlockFor, wireBlock } from '../../protocols/tftp/transfer.ts';
import { writeAck } from '../../protocols/tftp/tftp-codec.ts';

ensureNativeBuilt();
process.env.NETBOOT_NATIVE_FAULTS = '1';
const support = loadNativeLink();
/** The addon's test-only fault switch (native/common/nb_common.h). */
const injectFault = (name: 'alloc' | 'gso', after: number, times = 1): void => (support as unknown as { addon: { injectFault(n: string, a: number, t: number): void } }).addon.injectFault(name, after, times);

test('the addon is built and this kernel takes UDP_SEGMENT', () => {
  assert.ok(support.ok, support.ok ? '' : `${support.reason}: run npm ci (or node native/build.mjs)`);
  assert.equal(support.gso, true);
});

test('send path choice: auto takes the best, a missing native path asked for is an error', () => {
  const addon = (support.ok ? support.addon : {}) as never;
  const withGso: NativeSupport = { ok: true, addon, gso: true };
  const noGso: NativeSupport = { ok: true, addon, gso: false };
  const absent: NativeSupport = { ok: false, reason: 'native/udp-link not built (test)' };
  assert.deepEqual(chooseSendPath('auto', withGso), { kind: 'gso', reason: 'native addon, kernel has UDP_SEGMENT' });
  assert.deepEqual(chooseSendPath('auto', noGso), { kind: 'sendmmsg', reason: 'native addon; kernel lacks UDP_SEGMENT' });
  assert.deepEqual(chooseSendPath('auto', absent), { kind: 'dgram', reason: 'native/udp-link not built (test)' });
  assert.equal(chooseSendPath('sendmmsg', withGso).kind, 'sendmmsg');
  assert.equal(chooseSendPath('dgram', withGso).kind, 'dgram');
  assert.equal(chooseSendPath('dgram', absent).kind, 'dgram');
  assert.throws(() => chooseSendPath('gso', noGso), /send_path = "gso": this kernel refuses UDP_SEGMENT/);
  assert.throws(() => chooseSendPath('gso', absent), /send_path = "gso": native\/udp-link not built/);
  assert.throws(() => chooseSendPath('sendmmsg', absent), /send_path = "sendmmsg": native\/udp-link not built/);
});

test('only the native link offers lock-step turns (TransferLink.turns); the node:dgram link has none to fake', { skip: !support.ok && 'addon not built' }, async () => {
  assert.ok(support.ok);
  const socket = await bindSocket('127.0.0.1', 0, { address: '127.0.0.1', port: 9 });
  const dgram: TransferLink = new DgramLink(socket, { address: '127.0.0.1', port: 9 });
  const native = new NativeLinks(support.addon, true).open('127.0.0.1', { address: '127.0.0.1', port: 9 });
  try {
    assert.equal(dgram.turns, undefined);
    assert.equal(typeof native.turns.arm, 'function');
  } finally {
    dgram.close();
    native.close();
  }
});

interface Client {
  readonly socket: Socket;
  readonly got: Buffer[];
  waitFor(n: number): Promise<void>;
}

async function client(): Promise<Client> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  socket.setRecvBufferSize(4 * 1024 * 1024);
  const got: Buffer[] = [];
  let want = 0;
  let wake: (() => void) | null = null;
  socket.on('message', (m) => {
    got.push(m);
    if (got.length >= want && wake !== null) wake();
  });
  return {
    socket,
    got,
    waitFor(n) {
      want = n;
      if (got.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`got ${got.length} of ${n} datagrams`)), 5000);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    },
  };
}

/** A ring over `size` random bytes with every block resident (read from 1 on). */
async function fullRing(size: number, blockSize: number, windowSize: number): Promise<{ ring: BlockRing; data: Buffer; lastBlock: number }> {
  const data = randomBytes(size);
  const lastBlock = lastBlockFor(size, blockSize);
  const ring = new BlockRing(new MemorySource(data), blockSize, lastBlock, windowSize);
  return { ring, data, lastBlock };
}

function expectBlock(pkt: Buffer, n: number, data: Buffer, blockSize: number): void {
  assert.equal(pkt.readUInt16BE(0), 3, `block ${n}: opcode`);
  assert.equal(pkt.readUInt16BE(2), wireBlock(n), `block ${n}: number`);
  assert.ok(pkt.subarray(4).equals(data.subarray((n - 1) * blockSize, n * blockSize)), `block ${n}: payload`);
}

const NO_EVENTS: LinkEvents = { datagram() {}, error(err) { throw err; }, writable() {} };

for (const gso of [true, false]) {
  const kind = gso ? 'GSO' : 'sendmmsg';

  test(`${kind}: a run across the ring's end, past 64 segments, ending in a short block, arrives whole and in order`, { skip: !support.ok && 'addon not built' }, async () => {
    assert.ok(support.ok);
    const c = await client();
    const links = new NativeLinks(support.addon, gso);
    const link = links.open('127.0.0.1', { address: '127.0.0.1', port: c.socket.address().port });
    link.listen(NO_EVENTS);
    try {
      // 300 blocks of 1468, the last one short; window 40: the ring holds 180 slots.
      const { ring, data, lastBlock } = await fullRing(299 * 1468 + 77, 1468, 40);
      assert.equal(ring.capacity, 180);
      await ring.read(1);
      await ring.read(1);
      assert.equal(link.kind, gso ? 'gso' : 'sendmmsg');
      assert.equal(link.sendBlocks(ring, 1, 150), 150); // slots 0..149: three GSO sends of 44 segments and one of 18
      await c.waitFor(150);
      c.got.forEach((p, i) => expectBlock(p, i + 1, data, 1468));
      await ring.read(151);
      await ring.read(151);
      assert.equal(ring.hi, lastBlock);
      assert.equal(link.sendBlocks(ring, 151, lastBlock), 150); // slots 150..179, then 0..119
      await c.waitFor(lastBlock);
      c.got.slice(150).forEach((p, i) => expectBlock(p, 151 + i, data, 1468));
      assert.equal((c.got[lastBlock - 1] as Buffer).length, 4 + 77);
    } finally {
      link.close();
      c.socket.close();
    }
  });

  test(`${kind}: blksize 8192 runs (7 segments per GSO send) and an empty final block`, { skip: !support.ok && 'addon not built' }, async () => {
    assert.ok(support.ok);
    const c = await client();
    const link = new NativeLinks(support.addon, gso).open('127.0.0.1', { address: '127.0.0.1', port: c.socket.address().port });
    link.listen(NO_EVENTS);
    try {
      const { ring, data, lastBlock } = await fullRing(20 * 8192, 8192, 32);
      await ring.read(1);
      await ring.read(1); // 16 blocks per read at 8192
      assert.equal(ring.hi, 21);
      assert.equal(link.sendBlocks(ring, 1, lastBlock), lastBlock);
      await c.waitFor(lastBlock);
      c.got.slice(0, 20).forEach((p, i) => expectBlock(p, i + 1, data, 8192));
      assert.equal((c.got[20] as Buffer).length, 4);
    } finally {
      link.close();
      c.socket.close();
    }
  });

  test(`${kind}: a chain of turns is taken without JS on exactly the armed datagrams, in order, once`, { skip: !support.ok && 'addon not built' }, async () => {
    assert.ok(support.ok);
    const c = await client();
    // Each report as one record: the turns taken, and the datagram that ended the chain if any.
    const seen: { bytes: string; steps: number; lastSent: number }[] = [];
    let wake: (() => void) | null = null;
    let turns: { steps: number; lastSent: number } | null = null;
    const link = new NativeLinks(support.addon, gso).open('127.0.0.1', { address: '127.0.0.1', port: c.socket.address().port });
    link.listen({
      ...NO_EVENTS,
      datagram: (buf, length) => {
        seen.push({ bytes: buf.subarray(0, length).toString('hex'), steps: turns?.steps ?? 0, lastSent: turns?.lastSent ?? -1 });
        turns = null;
        wake?.();
      },
    });
    link.turns.onTurns((steps, lastSent, datagramFollows) => {
      if (datagramFollows) {
        turns = { steps, lastSent };
        return;
      }
      seen.push({ bytes: '', steps, lastSent });
      wake?.();
    });
    const toServer = (n: number, extra = 0): Promise<void> => {
      const b = Buffer.alloc(4 + extra);
      writeAck(b, n);
      return new Promise((r) => c.socket.send(b, link.localPort, '127.0.0.1', () => r()));
    };
    /** Until the link has reported `n` times. */
    const reports = (n: number): Promise<void> =>
      new Promise((resolve, reject) => {
        if (seen.length >= n) return resolve();
        const t = setTimeout(() => reject(new Error(`${seen.length} of ${n} reports`)), 5000);
        wake = () => {
          if (seen.length < n) return;
          clearTimeout(t);
          resolve();
        };
      });
    const acks = (...ns: number[]): Buffer => {
      const b = Buffer.alloc(4 * ns.length);
      ns.forEach((n, i) => writeAck(b.subarray(4 * i), n));
      return b;
    };
    try {
      const { ring, data } = await fullRing(64 * 1024, 1024, 8);
      await ring.read(1);
      const chain = (): boolean => link.turns.arm(acks(8, 16, 24), 4, ring, [9, 17, 25], [16, 24, 32], 3);
      assert.equal(chain(), true);
      // A different ACK ends the chain and reaches JS; nothing is sent.
      await toServer(7);
      await reports(1);
      assert.deepEqual(seen, [{ bytes: '00040007', steps: 0, lastSent: -1 }]);
      await toServer(8);
      await reports(2);
      assert.equal(seen.length, 2);
      assert.equal(c.got.length, 0);
      // Armed again: ACK 8 and ACK 16 are turns taken in the link alone (no event)...
      chain();
      await toServer(8);
      await c.waitFor(8);
      assert.equal(link.turns.takeProgress(), 1);
      await toServer(16);
      await c.waitFor(16);
      assert.equal(seen.length, 2);
      c.got.forEach((p, i) => expectBlock(p, 9 + i, data, 1024));
      // ...a longer datagram with the same first bytes is not the armed one: it ends the chain
      // and arrives with the one turn not reported yet.
      await toServer(24, 1);
      await reports(3);
      assert.deepEqual(seen[2], { bytes: '0004001800', steps: 1, lastSent: -1 });
      await toServer(24);
      await reports(4);
      assert.deepEqual(seen[3], { bytes: '00040018', steps: 0, lastSent: -1 });
      assert.equal(c.got.length, 16);
      // The last turn of a chain is reported at once, with no datagram.
      link.turns.arm(acks(32), 4, ring, [33], [40], 1);
      await toServer(32);
      await c.waitFor(24);
      await reports(5);
      assert.deepEqual(seen[4], { bytes: '', steps: 1, lastSent: -1 });
      c.got.slice(16).forEach((p, i) => expectBlock(p, 33 + i, data, 1024));
      assert.equal(link.turns.disarm(), 0);
    } finally {
      link.close();
      c.socket.close();
    }
  });
}

test('a link refuses a run outside its ring buffer and calls on a closed link', { skip: !support.ok && 'addon not built' }, async () => {
  assert.ok(support.ok);
  const c = await client();
  const link = new NativeLinks(support.addon, true).open('127.0.0.1', { address: '127.0.0.1', port: c.socket.address().port });
  link.listen(NO_EVENTS);
  const { ring } = await fullRing(10 * 512, 512, 4);
  await ring.read(1);
  // slot 9 of a 10-slot ring plus 5 blocks would run past the buffer: arm refuses (not one run).
  assert.equal(link.turns.arm(Buffer.alloc(4), 4, ring, [10], [14], 1), false);
  link.close();
  assert.equal(link.sendBlocks(ring, 1, 2), 0);
  link.close(); // twice is fine
  c.socket.close();
});

test('the request socket (UdpListener): every datagram with its sender, whole or 0 bytes; a taken port is refused; close stops it', { skip: !support.ok && 'addon not built' }, async () => {
  assert.ok(support.ok);
  const links = new NativeLinks(support.addon, true);
  const got: { bytes: string; address: string; port: number }[] = [];
  const errors: Error[] = [];
  const listener = links.listen('127.0.0.1', 0, (buf, length, address, port) => got.push({ bytes: buf.subarray(0, length).toString('hex'), address, port }), (err) => errors.push(err));
  assert.ok(listener.port > 0, 'the kernel chose a port');
  assert.throws(() => links.listen('127.0.0.1', listener.port, () => undefined, () => undefined), (err: Error & { code?: string }) => err.code === 'EADDRINUSE');
  const c = await client();
  const send = (b: Buffer): Promise<void> => new Promise((r) => c.socket.send(b, listener.port, '127.0.0.1', () => r()));
  const big = randomBytes(65000);
  await send(Buffer.from([0, 1, 0x61, 0, 0x6f, 0]));
  await send(Buffer.alloc(0));
  await send(big);
  for (let i = 0; i < 100 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got.map((g) => g.bytes.length / 2), [6, 0, 65000]);
  assert.equal(got[0]!.bytes, '000161006f00');
  assert.equal(got[2]!.bytes, big.toString('hex'));
  for (const g of got) assert.deepEqual([g.address, g.port], ['127.0.0.1', c.socket.address().port]);
  listener.close();
  listener.close(); // twice is fine
  // A barrier, not a pause: a new listener on the released port gets the next datagram; the
  // closed one got nothing.
  const after: string[] = [];
  const again = links.listen('127.0.0.1', listener.port, (buf, length) => after.push(buf.subarray(0, length).toString('hex')), (err) => errors.push(err));
  await send(Buffer.from([1]));
  for (let i = 0; i < 300 && after.length === 0; i++) await new Promise((r) => setTimeout(r, 10)); // bounded poll for the delivery
  again.close();
  assert.deepEqual(after, ['01'], 'the new listener got it');
  assert.equal(got.length, 3, 'nothing after close');
  assert.deepEqual(errors, []);
  c.socket.close();
});

test('ICMP port unreachable ends up as an error event (the peer is gone)', { skip: !support.ok && 'addon not built' }, async () => {
  assert.ok(support.ok);
  const c = await client();
  const port = c.socket.address().port;
  c.socket.close(); // nobody listens there any more
  const errors: string[] = [];
  const link = new NativeLinks(support.addon, true).open('127.0.0.1', { address: '127.0.0.1', port });
  link.listen({ ...NO_EVENTS, error: (err) => errors.push(err.message) });
  link.send(Buffer.from([0, 3, 0, 1]));
  for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  link.close();
  assert.ok(errors.length >= 1, 'no error event');
  assert.match(errors[0] as string, /refused/i);
});

test('page-cache reads (readCached) fill the ring exactly as thread-pool reads do, across its end', { skip: !support.ok && 'addon not built' }, async () => {
  assert.ok(support.ok);
  const dir = mkdtempSync(join(tmpdir(), 'netboot-ring-'));
  try {
    const data = randomBytes(299 * 1468 + 77);
    const path = join(dir, 'f.bin');
    writeFileSync(path, data);
    readFileSync(path); // in the page cache
    const calls: number[] = [];
    const reader: CachedReader = (...args) => {
      const r = support.addon.readCached(...args);
      calls.push(r);
      return r;
    };
    const fd = openSync(path, 'r');
    const source = new FileSource(fd, data.length);
    const ring = new BlockRing(source, 1468, 300, 40, reader);
    try {
      let base = 1;
      for (let n = 1; n <= 300; n++) {
        while (!ring.has(n, n)) await ring.read(base);
        expectBlock(ring.packet(n).subarray(0, n === 300 ? 81 : 1472), n, data, 1468);
        base = n; // acknowledged up to n - 1: its slot may be refilled
      }
      assert.ok(calls.length >= 4 && calls.every((r) => r > 0), `cached reads: ${calls.join(' ')}`);
      assert.ok(calls.length > (300 - 1) / ring.chunk, 'a chunk across the ring end is two reads');
    } finally {
      await source.close();
    }
    // A descriptor that cannot read is refused with -errno, never a throw or a partial fill.
    assert.ok(support.addon.readCached(fd, Buffer.alloc(2000), 4, 1472, 1, 1468, 0) < 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Open descriptors of this process. */
const openFds = (): number => readdirSync('/proc/self/fd').length;

test('a link or request socket whose allocation fails throws ENOMEM and leaves no socket open', { skip: !support.ok && 'addon not built' }, async () => {
  assert.ok(support.ok);
  const links = new NativeLinks(support.addon, true);
  const fds = openFds();
  injectFault('alloc', 0);
  assert.throws(() => links.open('127.0.0.1', { address: '127.0.0.1', port: 9 }), (err: Error & { code?: string }) => err.code === 'ENOMEM' && /UdpLink/.test(err.message));
  assert.equal(openFds(), fds, 'no descriptor left behind by the link');
  injectFault('alloc', 0);
  assert.throws(() => links.listen('127.0.0.1', 0, () => undefined, () => undefined), (err: Error & { code?: string }) => err.code === 'ENOMEM' && /UdpListener/.test(err.message));
  assert.equal(openFds(), fds, 'no descriptor left behind by the request socket');
  // The fault is spent: both open again.
  const link = links.open('127.0.0.1', { address: '127.0.0.1', port: 9 });
  const listener = links.listen('127.0.0.1', 0, () => undefined, () => undefined);
  link.close();
  listener.close();
  assert.equal(openFds(), fds, 'close releases both at once');
});

test('GSO failing part-way (EIO): sendmmsg sends only the datagrams GSO did not, each once, in order', { skip: !support.ok && 'addon not built', timeout: 10000 }, async () => {
  assert.ok(support.ok);
  const c = await client();
  const link = new NativeLinks(support.addon, true).open('127.0.0.1', { address: '127.0.0.1', port: c.socket.address().port });
  link.listen(NO_EVENTS);
  try {
    // 80 blocks of 128 bytes: GSO sends 64 segments, then 16; the second send fails with EIO.
    const { ring, data, lastBlock } = await fullRing(80 * 128 - 20, 128, 80);
    await ring.read(1);
    assert.equal(lastBlock, 80);
    assert.ok(ring.has(1, 80));
    injectFault('gso', 1);
    assert.equal(link.sendBlocks(ring, 1, 80), 80);
    link.send(Buffer.from('end'));
    // Loopback keeps one socket's datagrams in order: all of the run has arrived once 'end' has.
    await new Promise<void>((resolve) => {
      const seen = (): boolean => c.got.some((p) => p.toString() === 'end');
      const check = (): void => {
        if (!seen()) return;
        c.socket.off('message', check);
        resolve();
      };
      c.socket.on('message', check);
      check();
    });
    assert.equal(c.got.length, 81, `${c.got.length - 81} datagrams sent twice`);
    c.got.slice(0, 80).forEach((p, i) => expectBlock(p, i + 1, data, 128));
    assert.equal((c.got[80] as Buffer).toString(), 'end');
  } finally {
    link.close();
    c.socket.close();
  }
});

test('the request socket keeps serving after a socket error (POLLERR): the error is reported, the next request still arrives', { skip: !support.ok && 'addon not built' }, async () => {
  assert.ok(support.ok);
  const dead = await client();
  const deadPort = dead.socket.address().port;
  dead.socket.close(); // nobody listens there any more
  const rx = Buffer.alloc(2048);
  const got: string[] = [];
  const errors: string[] = [];
  let wake: (() => void) | null = null;
  const listener = new support.addon.UdpListener(
    '127.0.0.1',
    0,
    rx,
    (length) => {
      got.push(rx.subarray(0, length).toString());
      wake?.();
    },
    (message) => {
      errors.push(message);
      wake?.();
    },
  ) as unknown as { port(): number; close(): void; testProvokeError(port: number): void };
  const until = (what: string, done: () => boolean): Promise<void> =>
    new Promise((resolve, reject) => {
      if (done()) return resolve();
      const t = setTimeout(() => reject(new Error(`no ${what}`)), 5000);
      wake = () => {
        if (!done()) return;
        clearTimeout(t);
        resolve();
      };
    });
  const c = await client();
  try {
    listener.testProvokeError(deadPort); // ICMP port unreachable on the error queue: POLLERR
    await until('error event', () => errors.length > 0);
    assert.match(errors[0] as string, /refused/i);
    c.socket.send(Buffer.from('after'), listener.port(), '127.0.0.1');
    await until('request after the error', () => got.includes('after'));
    assert.equal(errors.length, 1, 'one error, reported once');
  } finally {
    listener.close();
    c.socket.close();
  }
});
