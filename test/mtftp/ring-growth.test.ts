// A budgeted BlockRing (issue 16): small until the client answers, then a window and a read,
// then growing with each block acknowledged, every resident block intact across each move; the
// budget's bytes come back on release. And the refusal log's rate limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { BlockRing, MemorySource, PRE_ACK_BYTES, RingBudget } from '../../services/mtftp/block-ring.ts';
import { RefusalLog } from '../../services/mtftp/refusal-log.ts';
import { lastBlockFor, wireBlock } from '../../protocols/tftp/transfer.ts';
import { waitFor } from '../helpers/env.ts';

function expectBlock(ring: BlockRing, n: number, data: Buffer, blockSize: number): void {
  const pkt = ring.packet(n);
  assert.equal(pkt.readUInt16BE(0), 3, `block ${n}: opcode`);
  assert.equal(pkt.readUInt16BE(2), wireBlock(n), `block ${n}: number`);
  assert.ok(pkt.subarray(4).equals(data.subarray((n - 1) * blockSize, n * blockSize)), `block ${n}: payload`);
}

test('blksize 65464 windowsize 64: one slot until the client answers, then 67, then all 128 as blocks are acknowledged', async () => {
  const blockSize = 65464;
  const data = randomBytes(300 * blockSize + 11);
  const lastBlock = lastBlockFor(data.length, blockSize);
  const budget = new RingBudget(64 * 1024 * 1024);
  const ring = new BlockRing(new MemorySource(data), blockSize, lastBlock, 64, undefined, budget);
  const stride = blockSize + 4;
  assert.deepEqual([ring.capacity, ring.minCapacity, ring.maxCapacity, ring.chunk], [1, 67, 128, 3]);
  assert.equal(budget.usedBytes, stride);
  assert.ok(ring.bytes <= Math.max(PRE_ACK_BYTES, stride));
  // Unanswered: one read of the one slot, then nothing more, however often it is asked.
  assert.ok(ring.grow(1, false));
  assert.ok(ring.wantsRead(1));
  await ring.read(1);
  assert.equal(ring.hi, 1);
  assert.ok(ring.grow(1, false));
  assert.equal(ring.wantsRead(1), false);
  assert.equal(budget.usedBytes, stride);
  // ACK 0: a window and a read; block 1 moved along.
  assert.ok(ring.grow(1, true));
  assert.equal(ring.capacity, 67);
  assert.equal(budget.usedBytes, 67 * stride);
  expectBlock(ring, 1, data, blockSize);
  while (ring.wantsRead(1)) await ring.read(1);
  assert.equal(ring.hi, 67);
  // Blocks 1..60 acknowledged: it may double now; what is resident and unacknowledged moves, intact.
  assert.ok(ring.grow(61, true));
  assert.equal(ring.capacity, 128);
  assert.equal(budget.usedBytes, 128 * stride);
  for (let n = 61; n <= 67; n++) expectBlock(ring, n, data, blockSize);
  // Then it runs as before, across the ring's end, to the last (short) block.
  for (let base = 61; base <= lastBlock; base += 20) {
    while (ring.wantsRead(base)) await ring.read(base);
    for (let n = base; n <= Math.min(lastBlock, base + 63); n++) expectBlock(ring, n, data, blockSize);
  }
  assert.equal(ring.hi, lastBlock);
  assert.equal(ring.packetLength(lastBlock), 4 + 11);
  ring.release();
  assert.equal(budget.usedBytes, 0);
  assert.equal(ring.bytes, 0);
  ring.release(); // twice is fine
  assert.equal(budget.usedBytes, 0);
});

test('a budget that cannot cover a window and a read: grow says so; growth past that is only what fits', async () => {
  const blockSize = 8192;
  const stride = blockSize + 4;
  const data = randomBytes(200 * blockSize);
  const lastBlock = lastBlockFor(data.length, blockSize);
  // window 32, chunk 16: first 7 slots (under 64 KiB), least after the answer 48, most 64.
  const budget = new RingBudget(60 * stride);
  const a = new BlockRing(new MemorySource(data), blockSize, lastBlock, 32, undefined, budget);
  const b = new BlockRing(new MemorySource(data), blockSize, lastBlock, 32, undefined, budget);
  assert.deepEqual([a.capacity, a.minCapacity, a.maxCapacity], [7, 48, 64]);
  assert.ok(a.grow(1, true));
  assert.equal(a.capacity, 48, 'doubling to 64 does not fit; the least does');
  assert.equal(b.grow(1, true), false, 'the second cannot have its least');
  assert.equal(b.capacity, 7);
  assert.ok(a.grow(40, true), 'past the least, it takes what fits');
  assert.equal(a.capacity, 53);
  b.release();
  assert.ok(a.grow(40, true));
  assert.equal(a.capacity, 60, 'now as far as the budget goes');
  a.release();
  assert.equal(budget.usedBytes, 0);
});

test('a ring without a budget is whole from the start (as the native-link and session tests build it)', () => {
  const ring = new BlockRing(new MemorySource(Buffer.alloc(300 * 1468)), 1468, 301, 40);
  assert.equal(ring.capacity, 180);
  assert.ok(ring.grow(1, false));
  assert.equal(ring.capacity, 180);
});

test('the refusal log: the first of a kind at once, then one line per interval with how many were not logged', async () => {
  const log = createMemoryLogger('debug');
  const refusals = new RefusalLog(log, 200);
  for (let i = 0; i < 100; i++) refusals.refused('max_transfers', 'request refused', { peer: `10.0.0.1:${i}`, reason: 'full' });
  refusals.refused('max_transfers_per_client', 'request refused', { peer: '10.0.0.2:1', reason: 'client full' });
  assert.deepEqual(
    log.records.map((r) => [r.peer, r.notLogged]),
    [['10.0.0.1:0', undefined], ['10.0.0.2:1', undefined]],
  );
  const summary = await waitFor('summary line', () => log.records.find((r) => r.notLogged !== undefined), 10000);
  assert.deepEqual([summary.peer, summary.notLogged, summary.reason], ['10.0.0.1:99', 99, 'full']);
  assert.equal(log.records.length, 3);
  refusals.close();
});
