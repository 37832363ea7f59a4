// A full send buffer on a native link (sendBlocks takes fewer blocks than asked, `writable`
// comes later). Loopback never fills a UDP send buffer (the kernel releases it as the datagram is
// handed over) and a real link needs a send buffer smaller than a window, so this drives the
// session through a scripted link that owns no socket: it takes `room` blocks, then none until
// the test says the link is writable again. Everything else (machine, ring, codec) is the real one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BlockRing, MemorySource } from '../../services/mtftp/block-ring.ts';
import { TftpSession } from '../../services/mtftp/tftp-session.ts';
import { lastBlockFor, TransferMachine } from '../../protocols/tftp/transfer.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { SocketlessLink } from './socketless-link.ts';
import { waitFor } from '../helpers/env.ts';

/** Takes `room` blocks, then none until the test says the link is writable again. */
class ScriptedLink extends SocketlessLink {
  room = 0;

  override sendBlocks(ring: BlockRing, first: number, last: number): number {
    const n = Math.min(this.room, last - first + 1);
    this.room -= n;
    return super.sendBlocks(ring, first, first + n - 1);
  }
  writable(room: number): void {
    this.room = room;
    this.events?.writable();
  }
}

/** Until `done` holds: the session reads its blocks asynchronously (a bounded poll, no fixed pause). */
async function until(what: string, done: () => boolean): Promise<void> {
  await waitFor(what, () => (done() ? true : undefined), 5000, 1);
}

test('a window the link could only half take is finished when it is writable; an ACK meanwhile moves it', async () => {
  const data = randomBytes(100 * 512 + 10);
  const lastBlock = lastBlockFor(data.length, 512);
  const source = new MemorySource(data);
  const machine = new TransferMachine({ lastBlock, windowSize: 16, retries: 3, timeoutMs: 5000, maxTimeoutMs: 5000, oack: false });
  const ring = new BlockRing(source, 512, lastBlock, 16);
  const link = new ScriptedLink();
  const session = new TftpSession({ link, machine, source, ring, oack: [], log: createMemoryLogger('debug') });
  link.room = 5;
  session.start();
  await until('the first read', () => link.sent.length >= 5);
  assert.deepEqual(link.sent, [1, 2, 3, 4, 5]);
  // Writable: the rest of the window, and only that.
  link.writable(100);
  assert.deepEqual(link.sent.slice(5), [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  // Full again after 4 of the next window; the client then ACKs 18 (it got 17 and 18): the
  // range still owed becomes 19..34, sent once writable, nothing before 19 again.
  link.room = 4;
  link.ack(16);
  assert.deepEqual(link.sent.slice(16), [17, 18, 19, 20]);
  link.ack(18);
  assert.equal(link.sent.length, 20, 'nothing goes out while the link is full');
  link.writable(1000);
  assert.deepEqual(link.sent.slice(20), Array.from({ length: 16 }, (_, i) => 19 + i));
  // Then to the end, window by window.
  for (let n = 34; n < lastBlock; n = Math.min(n + 16, lastBlock)) {
    link.ack(n);
    await until(`the window after ${n}`, () => (link.sent.at(-1) ?? 0) >= Math.min(n + 16, lastBlock)); // read-ahead
  }
  link.ack(lastBlock);
  const end = await session.done;
  assert.equal(end.outcome, 'complete');
  assert.equal(link.closed, true);
  assert.equal(link.sent.at(-1), lastBlock);
});
