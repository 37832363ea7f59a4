import { test } from 'node:test';
import assert from 'node:assert/strict';
import { negotiate } from '../../protocols/tftp/options.ts';
import { lastBlockFor, REQUEST_CROSSING_MS, TransferMachine, wireBlock, type Step } from '../../protocols/tftp/transfer.ts';

const LIMITS = { maxBlockSize: 8192, maxWindowSize: 32, timeoutMs: 1000 };
const opt = (name: string, value: string) => ({ name, value });

test('negotiation: accepted options echo in request order, with the client spelling', () => {
  const n = negotiate([opt('TSIZE', '0'), opt('blksize', '1432'), opt('WindowSize', '4'), opt('timeout', '3')], LIMITS, 12345);
  assert.deepEqual(n.reply, [opt('TSIZE', '12345'), opt('blksize', '1432'), opt('WindowSize', '4'), opt('timeout', '3')]);
  assert.equal(n.blockSize, 1432);
  assert.equal(n.windowSize, 4);
  assert.equal(n.timeoutMs, 3000);
  assert.deepEqual(n.ignored, []);
});

test('negotiation: values above our limits are answered with the limit (RFC 2348, 7440)', () => {
  const n = negotiate([opt('blksize', '65464'), opt('windowsize', '65535')], LIMITS, 1);
  assert.deepEqual(n.reply, [opt('blksize', '8192'), opt('windowsize', '32')]);
});

test('negotiation: invalid or unknown options are left out of the OACK, with a reason', () => {
  const table: [string, string, string][] = [
    ['blksize', '7', 'blksize must be 8 to 65464'],
    ['blksize', '65465', 'blksize must be 8 to 65464'],
    ['blksize', 'abc', 'blksize must be 8 to 65464'],
    ['windowsize', '0', 'windowsize must be 1 to 65535'],
    ['timeout', '0', 'timeout must be 1 to 255 seconds'],
    ['timeout', '256', 'timeout must be 1 to 255 seconds'],
    ['tsize', '-1', 'tsize must be a decimal number'],
    ['msftwindow', '31416', 'Microsoft variable window is not implemented; RFC 7440 windowsize is'],
    ['multicast', '', 'unknown option'],
  ];
  for (const [name, value, reason] of table) {
    const n = negotiate([opt(name, value)], LIMITS, 100);
    assert.deepEqual(n.reply, [], `${name}=${value}`);
    assert.deepEqual(n.ignored, [{ name, value, reason }]);
    assert.equal(n.blockSize, 512);
    assert.equal(n.windowSize, 1);
    assert.equal(n.timeoutMs, 1000);
  }
});

test('negotiation: a duplicate option is ignored, the first one counts', () => {
  const n = negotiate([opt('blksize', '1024'), opt('BLKSIZE', '2048')], LIMITS, 1);
  assert.deepEqual(n.reply, [opt('blksize', '1024')]);
  assert.equal(n.ignored[0]?.reason, 'duplicate option, first one used');
});

test('negotiation: tsize is not acknowledged when the size is unknown', () => {
  assert.deepEqual(negotiate([opt('tsize', '0')], LIMITS, null).reply, []);
});

function sent(m: TransferMachine, step: Step): string {
  assert.equal(step.kind, 'send');
  assert.equal(step.timer, 'restart');
  return m.sendOack ? 'OACK' : `${m.sendFirst}..${m.sendLast}`;
}

test('lock-step without options: DATA 1, then one block per ACK, complete on the last ACK', () => {
  const m = new TransferMachine({ lastBlock: 3, windowSize: 1, retries: 3, oack: false, timeoutMs: 100, maxTimeoutMs: 1000 });
  assert.equal(sent(m, m.start()), '1..1');
  assert.equal(sent(m, m.ack(1)), '2..2');
  assert.equal(sent(m, m.ack(2)), '3..3');
  const end = m.ack(3);
  assert.deepEqual(end, { kind: 'complete', timer: 'stop' });
  assert.equal(m.phase, 'complete');
});

test('OACK first; ACK 0 starts the data; other ACKs before it are stale', () => {
  const m = new TransferMachine({ lastBlock: 10, windowSize: 4, retries: 3, oack: true, timeoutMs: 100, maxTimeoutMs: 1000 });
  assert.equal(sent(m, m.start()), 'OACK');
  assert.equal(m.ack(1).kind, 'stale');
  assert.equal(sent(m, m.ack(0)), '1..4');
  assert.equal(sent(m, m.ack(4)), '5..8');
  assert.equal(sent(m, m.ack(8)), '9..10');
  assert.equal(m.ack(10).kind, 'complete');
});

test('OACK refused by the client with ERROR 8: the transfer ends quietly (EDK2 tsize probe)', () => {
  const m = new TransferMachine({ lastBlock: 10, windowSize: 4, retries: 3, oack: true, timeoutMs: 100, maxTimeoutMs: 1000 });
  m.start();
  assert.deepEqual(m.error(8, 'tsize probe'), { kind: 'refused', timer: 'stop' });
  assert.equal(m.phase, 'refused');
  assert.equal(m.ack(0).kind, 'stale');
});

test('ERROR from the client during data aborts with its code and message', () => {
  const m = new TransferMachine({ lastBlock: 10, windowSize: 1, retries: 3, oack: false, timeoutMs: 100, maxTimeoutMs: 1000 });
  m.start();
  assert.equal(m.error(0, 'user cancelled').kind, 'aborted');
  assert.equal(m.abortReason, 'client sent ERROR 0 "user cancelled"');
});

test('window with a lost block: an ACK mid-window restarts the window right after it (go-back-N)', () => {
  const m = new TransferMachine({ lastBlock: 100, windowSize: 8, retries: 3, oack: false, timeoutMs: 100, maxTimeoutMs: 1000 });
  assert.equal(sent(m, m.start()), '1..8');
  // Block 4 was lost: the client acknowledges 3.
  assert.equal(sent(m, m.ack(3)), '4..11');
  assert.equal(m.high, 11);
  // Late blocks 5..8 make the client repeat ACK 3: acknowledged already, no resend.
  assert.deepEqual(m.ack(3), { kind: 'duplicate', timer: 'keep' });
  assert.deepEqual(m.ack(3), { kind: 'duplicate', timer: 'keep' });
  assert.equal(sent(m, m.ack(11)), '12..19');
});

test('duplicate ACKs in lock-step never trigger a resend (no Sorcerer\'s Apprentice)', () => {
  const m = new TransferMachine({ lastBlock: 100, windowSize: 1, retries: 3, oack: false, timeoutMs: 100, maxTimeoutMs: 1000 });
  m.start();
  assert.equal(sent(m, m.ack(1)), '2..2');
  // DATA 2 was delayed: the client's timer resends ACK 1, several times.
  for (let i = 0; i < 5; i++) assert.equal(m.ack(1).kind, 'duplicate');
  assert.equal(sent(m, m.ack(2)), '3..3');
  // A very old ACK and one for a block never sent are stale.
  assert.equal(m.ack(1).kind, 'stale');
  assert.equal(m.ack(50).kind, 'stale');
});

test('timeout resends everything outstanding from the first unacknowledged block, then gives up', () => {
  const m = new TransferMachine({ lastBlock: 100, windowSize: 4, retries: 2, oack: false, timeoutMs: 100, maxTimeoutMs: 1000 });
  m.start();
  assert.equal(sent(m, m.ack(2)), '3..6');
  assert.equal(sent(m, m.timeout()), '3..6');
  assert.equal(sent(m, m.timeout()), '3..6');
  assert.deepEqual(m.timeout(), { kind: 'aborted', timer: 'stop' });
  assert.equal(m.abortReason, 'no acknowledgement after 2 retransmissions');
  assert.equal(m.retransmits, 2);
});

test('the OACK is repeated when the client repeats its request, not on our timer alone', () => {
  const m = new TransferMachine({ lastBlock: 100, windowSize: 1, retries: 2, oack: true, timeoutMs: 100, maxTimeoutMs: 1000 });
  assert.equal(sent(m, m.start()), 'OACK');
  // Our timer: maybe the client's ACK 0 was lost; its own timer will resend it. Just wait.
  assert.deepEqual(m.timeout(), { kind: 'wait', timer: 'restart' });
  // A repeat that arrives right after our OACK crossed it: the client will get that OACK.
  assert.equal(m.requestRepeated(REQUEST_CROSSING_MS - 1).kind, 'stale');
  // The client asks again later: it never got the OACK.
  assert.equal(sent(m, m.requestRepeated(REQUEST_CROSSING_MS)), 'OACK');
  assert.deepEqual(m.timeout(), { kind: 'wait', timer: 'restart' });
  assert.deepEqual(m.timeout(), { kind: 'aborted', timer: 'stop' });
  // Once data flows, a late repeated request changes nothing.
  const d = new TransferMachine({ lastBlock: 100, windowSize: 1, retries: 2, oack: true, timeoutMs: 100, maxTimeoutMs: 1000 });
  d.start();
  d.ack(0);
  assert.equal(d.requestRepeated(10_000).kind, 'stale');
});

test('without an OACK, a repeated request gets the first window again until the client acknowledges anything', () => {
  const m = new TransferMachine({ lastBlock: 100, windowSize: 4, retries: 2, oack: false, timeoutMs: 100, maxTimeoutMs: 1000 });
  assert.equal(sent(m, m.start()), '1..4');
  // Right after our DATA 1 the repeat crossed it; later, the client never got it.
  assert.equal(m.requestRepeated(REQUEST_CROSSING_MS - 1).kind, 'stale');
  assert.equal(sent(m, m.requestRepeated(REQUEST_CROSSING_MS)), '1..4');
  assert.equal(m.retransmits, 1);
  assert.equal(sent(m, m.ack(1)), '2..5');
  assert.equal(m.requestRepeated(10_000).kind, 'stale');
});

test('the retransmission interval doubles without progress, up to the cap, and resets on progress', () => {
  const m = new TransferMachine({ lastBlock: 100, windowSize: 8, retries: 10, oack: false, timeoutMs: 100, maxTimeoutMs: 1000 });
  m.start();
  assert.equal(m.timerMs, 100);
  const seen: number[] = [];
  for (let i = 0; i < 6; i++) {
    assert.equal(sent(m, m.timeout()), '1..8');
    seen.push(m.timerMs);
  }
  assert.deepEqual(seen, [200, 400, 800, 1000, 1000, 1000]);
  assert.equal(sent(m, m.ack(8)), '9..16');
  assert.equal(m.timerMs, 100);
  // A duplicate ACK is not progress: the interval stays where the timeouts put it.
  m.timeout();
  assert.equal(m.ack(8).kind, 'duplicate');
  assert.equal(m.timerMs, 200);
});

test('progress resets the retry budget', () => {
  const m = new TransferMachine({ lastBlock: 100, windowSize: 1, retries: 1, oack: true, timeoutMs: 100, maxTimeoutMs: 1000 });
  m.start();
  assert.equal(m.timeout().kind, 'wait');
  assert.equal(sent(m, m.ack(0)), '1..1');
  assert.equal(sent(m, m.timeout()), '1..1');
  assert.equal(sent(m, m.ack(1)), '2..2');
  assert.equal(sent(m, m.timeout()), '2..2');
  assert.equal(m.timeout().kind, 'aborted');
});

test('rollover: block 65536 goes out as 0, ACK 0 after the wrap advances, the last ACK completes', () => {
  const size = 65536 * 512 + 100;
  const last = lastBlockFor(size, 512);
  assert.equal(last, 65537);
  const m = new TransferMachine({ lastBlock: last, windowSize: 1, retries: 3, oack: false, timeoutMs: 100, maxTimeoutMs: 1000 });
  m.start();
  for (let n = 1; n < 65534; n++) m.ack(wireBlock(n));
  assert.equal(sent(m, m.ack(65535 - 1)), '65535..65535');
  assert.equal(sent(m, m.ack(65535)), '65536..65536');
  assert.equal(wireBlock(m.sendFirst), 0);
  // A late duplicate of ACK 65535 is a duplicate, not "block 0 of a new epoch".
  assert.equal(m.ack(65535).kind, 'duplicate');
  assert.equal(sent(m, m.ack(0)), '65537..65537');
  assert.equal(wireBlock(65537), 1);
  assert.equal(m.ack(1).kind, 'complete');
});

test('rollover inside a window: the wire numbers wrap within one window', () => {
  const m = new TransferMachine({ lastBlock: 70000, windowSize: 10, retries: 3, oack: false, timeoutMs: 100, maxTimeoutMs: 1000 });
  m.start();
  while (m.sendLast < 65530) m.ack(wireBlock(m.sendLast));
  assert.equal(sent(m, m.ack(wireBlock(65530))), '65531..65540');
  // The client got up to absolute 65537 (wire 1), then lost 65538: it acknowledges wire 1.
  assert.equal(sent(m, m.ack(1)), '65538..65547');
  assert.equal(m.ack(1).kind, 'duplicate');
  assert.equal(sent(m, m.ack(wireBlock(65547))), '65548..65557');
});

test('a 0-byte file is one empty block; exact multiples end with an empty block', () => {
  assert.equal(lastBlockFor(0, 512), 1);
  assert.equal(lastBlockFor(1, 512), 1);
  assert.equal(lastBlockFor(512, 512), 2);
  assert.equal(lastBlockFor(1024, 512), 3);
});

test('invalid plans are refused', () => {
  assert.throws(() => new TransferMachine({ lastBlock: 0, windowSize: 1, retries: 1, oack: false, timeoutMs: 100, maxTimeoutMs: 1000 }), RangeError);
  assert.throws(() => new TransferMachine({ lastBlock: 1, windowSize: 0, retries: 1, oack: false, timeoutMs: 100, maxTimeoutMs: 1000 }), RangeError);
});
