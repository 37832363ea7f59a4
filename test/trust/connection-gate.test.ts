// The connection gate's rules on fake sockets: per-address refusal, overall refusal, and the
// busiest address giving way (never a proved connection) so a newcomer from elsewhere gets in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { RateLimitedLog } from '../../platform/runtime/log-limit.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { ConnectionGate } from '../../platform/trust/connection-gate.ts';

class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string) {
    super();
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }
}

function gate(maxConnections: number, maxConnectionsPerAddress: number) {
  const log = createMemoryLogger();
  return { log, gate: new ConnectionGate({ maxConnections, maxConnectionsPerAddress }, new RateLimitedLog(log, 1000), 'test port') };
}

const open = (g: ConnectionGate, address: string): FakeSocket => {
  const s = new FakeSocket(address);
  g.admit(s as unknown as Socket);
  return s;
};

test('per address and overall bounds; the busiest address gives way to a newcomer', () => {
  const { gate: g, log } = gate(4, 3);
  const a = [open(g, '10.0.0.1'), open(g, '10.0.0.1'), open(g, '10.0.0.1')];
  assert.equal(open(g, '10.0.0.1').destroyed, true, 'fourth from one address');
  assert.match(String(log.records.at(-1)!.reason), /more than 3 connections from one address/);
  assert.equal(open(g, '10.0.0.2').destroyed, false);
  assert.equal(g.count, 4);
  // Full: 10.0.0.2 (holding 1) may not take 10.0.0.1's place, it would hold as many.
  const third = open(g, '10.0.0.3');
  assert.equal(third.destroyed, false, 'a newcomer holding none gets in');
  assert.equal(a[0]!.destroyed, true, "the busiest address's oldest gave way");
  assert.equal(g.count, 4);
  assert.equal(open(g, '10.0.0.2').destroyed, true, 'no address may push out one holding as many');
  assert.match(String(log.records.at(-1)!.reason), /4 connections open/);
  // Closed connections free their place.
  a[1]!.destroy();
  assert.equal(g.count, 3);
  assert.equal(open(g, '10.0.0.2').destroyed, false);
});

test('a proved connection never gives way', () => {
  const { gate: g } = gate(2, 2);
  const a = [open(g, '10.0.0.1'), open(g, '10.0.0.1')];
  for (const s of a) g.prove(s as unknown as Socket);
  assert.equal(open(g, '10.0.0.9').destroyed, true);
  assert.equal(a.some((s) => s.destroyed), false);
});

test('refusals are logged at a bounded rate, with the count of those left out', () => {
  let now = 0;
  const log = createMemoryLogger();
  const limited = new RateLimitedLog(log, 2, 1000, () => now);
  for (let i = 0; i < 50; i++) limited.warn('refused', { i });
  assert.equal(log.records.length, 2);
  now = 1000;
  limited.warn('refused', { i: 50 });
  assert.equal(log.records.length, 3);
  assert.equal(log.records[2]!.suppressedBefore, 48);
});
