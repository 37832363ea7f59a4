// The Signal port's message codec: what it accepts, and the exact reason for what it refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeToSignal } from '../../platform/local/signal-protocol.ts';

test('server-started is decoded', () => {
  assert.deepEqual(decodeToSignal('{"type":"server-started","pid":12,"at":"2026-11-21T10:00:00Z"}'), { type: 'server-started', pid: 12, at: '2026-11-21T10:00:00Z' });
});

for (const [text, reason] of [
  ['', 'signal: message is not JSON'],
  ['[1]', 'signal: message must be a JSON object'],
  ['{"type":"server-stopped"}', 'signal: unknown message type "server-stopped"'],
  ['{"type":"server-started","pid":0,"at":"2026-11-21T10:00:00Z"}', 'signal: server-started: pid must be a positive integer'],
  ['{"type":"server-started","pid":1.5,"at":"2026-11-21T10:00:00Z"}', 'signal: server-started: pid must be a positive integer'],
  ['{"type":"server-started","pid":3,"at":"yesterday"}', 'signal: server-started: at must be an RFC 3339 time'],
  [JSON.stringify({ type: 'server-started', pid: 1, at: 'x'.repeat(5000) }), 'signal: message longer than 4096 bytes'],
] as const) {
  test(`refused: ${text.slice(0, 60) || '(empty)'}`, () => {
    assert.throws(() => decodeToSignal(text), { code: 'SIGNAL_MALFORMED', message: reason });
  });
}
