// The first turn after an OACK: the session reads the first blocks while the client answers the
// OACK and arms "on ACK 0, send the first window" on the link, so DATA 1 does not wait for a read
// (or for JS) when ACK 0 arrives. Driven through a link that records what it is armed with and
// reports taken turns as the native link does; machine, ring and codec are the real ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BlockRing, MemorySource } from '../../services/mtftp/block-ring.ts';
import { TftpSession } from '../../services/mtftp/tftp-session.ts';
import type { TurnsTaken, TurnTaker } from '../../services/mtftp/turn-chain.ts';
import { lastBlockFor, TransferMachine } from '../../protocols/tftp/transfer.ts';
import { waitFor } from '../helpers/env.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { SocketlessLink } from './socketless-link.ts';

/** Records what it is armed with, and reports taken turns as the native link does. */
class ArmedLink extends SocketlessLink implements TurnTaker {
  armed: { expects: string[]; firsts: number[]; lasts: number[] } | null = null;
  readonly turns: TurnTaker = this;
  private taken: TurnsTaken | null = null;

  onTurns(handler: TurnsTaken): void {
    this.taken = handler;
  }
  takeProgress(): number {
    return 0;
  }
  arm(expects: Buffer, width: number, _ring: BlockRing, firsts: readonly number[], lasts: readonly number[], steps: number): boolean {
    this.armed = {
      expects: Array.from({ length: steps }, (_, i) => expects.subarray(i * width, (i + 1) * width).toString('hex')),
      firsts: firsts.slice(0, steps),
      lasts: lasts.slice(0, steps),
    };
    return true;
  }
  disarm(): number {
    this.armed = null;
    return 0;
  }

  /** The link took `steps` armed turns on its own; the last one ended the chain. */
  took(steps: number): void {
    this.armed = null;
    this.taken?.(steps, -1, false);
  }
}

/** Until `done` holds: the session reads its blocks asynchronously (a bounded poll, no fixed pause). */
async function until(what: string, done: () => boolean): Promise<void> {
  await waitFor(what, () => (done() ? true : undefined), 5000, 1);
}

for (const windowSize of [1, 4]) {
  test(`window ${windowSize}: after the OACK the first blocks are read and ACK 0's turn is armed; the machine agrees when the link takes it`, async () => {
    const data = randomBytes(10 * 512 + 3);
    const lastBlock = lastBlockFor(data.length, 512);
    const source = new MemorySource(data);
    const machine = new TransferMachine({ lastBlock, windowSize, retries: 3, timeoutMs: 5000, maxTimeoutMs: 5000, oack: true });
    const ring = new BlockRing(source, 512, lastBlock, windowSize);
    const link = new ArmedLink();
    const log = createMemoryLogger('debug');
    const session = new TftpSession({ link, machine, source, ring, oack: [{ name: 'blksize', value: '512' }], log });
    session.start();
    assert.equal(link.packets.length, 1, 'the OACK went out first');
    assert.equal(link.packets[0]!.readUInt16BE(0), 6);
    await until('the file read and a turn armed', () => ring.hi === lastBlock && link.armed !== null);
    assert.equal(ring.hi, lastBlock, 'the file was read while the OACK was out');
    assert.ok(link.armed !== null, 'a chain is armed in the OACK phase');
    assert.equal(link.armed.expects[0], '00040000', 'its first turn waits for ACK 0');
    assert.equal(link.armed.firsts[0], 1);
    assert.equal(link.armed.lasts[0], windowSize);
    const steps = link.armed.firsts.length;
    const reached = link.armed.lasts[steps - 1];
    link.took(steps);
    assert.equal(machine.phase, 'data');
    assert.equal(machine.high, reached, 'the machine replayed every turn the link took');
    assert.deepEqual(link.sent, [], 'no block went out through JS');
    assert.equal(log.records.filter((r) => r.level === 'warn').length, 0, 'every replayed turn matched the machine');
    // The rest as plain ACKs: the transfer completes.
    for (let n = machine.high; n <= lastBlock && machine.phase === 'data'; n = machine.high) {
      link.armed = null;
      link.ack(n);
    }
    assert.equal((await session.done).outcome, 'complete');
  });
}

test('an ERROR 8 answering the OACK ends the transfer quietly though a turn was armed', async () => {
  const data = randomBytes(3000);
  const source = new MemorySource(data);
  const lastBlock = lastBlockFor(data.length, 512);
  const machine = new TransferMachine({ lastBlock, windowSize: 1, retries: 3, timeoutMs: 5000, maxTimeoutMs: 5000, oack: true });
  const link = new ArmedLink();
  const session = new TftpSession({ link, machine, source, ring: new BlockRing(source, 512, lastBlock, 1), oack: [{ name: 'tsize', value: '3000' }], log: createMemoryLogger('debug') });
  session.start();
  await until('a turn armed', () => link.armed !== null);
  assert.ok(link.armed !== null);
  const err = Buffer.from([0, 5, 0, 8, 0]);
  link.events?.datagram(err, err.length);
  assert.equal((await session.done).outcome, 'refused');
});
