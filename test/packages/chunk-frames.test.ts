import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FrameParser, encodeFrameHeader, MAX_FRAME_DATA } from '../../packages/chunk-frames.ts';

const D1 = 'ab'.repeat(32);
const D2 = 'cd'.repeat(32);
const D3 = 'ef'.repeat(32);

test('frames round-trip however the stream is split: data, deflated data, and "not held"', () => {
  const a = randomBytes(1000);
  const c = randomBytes(70_000);
  const stream = Buffer.concat([encodeFrameHeader(D1, a.length), a, encodeFrameHeader(D2, null), encodeFrameHeader(D3, c.length, true), c]);
  for (const step of [1, 5, 36, 37, 4096, stream.length]) {
    const p = new FrameParser();
    const frames = [];
    for (let off = 0; off < stream.length; off += step) frames.push(...p.push(stream.subarray(off, off + step)));
    p.end();
    assert.deepEqual(frames.map((f) => [f.digest, f.data?.length ?? null, f.deflated]), [[D1, 1000, false], [D2, null, false], [D3, 70_000, true]], `step ${step}`);
    assert.deepEqual(frames[0]!.data, a);
    assert.deepEqual(frames[2]!.data, c);
  }
});

test('a response cut inside a frame, or a frame larger than any chunk, is an error', () => {
  const p = new FrameParser();
  p.push(Buffer.concat([encodeFrameHeader(D1, 100), Buffer.alloc(50)]));
  assert.throws(() => p.end(), /response ended inside a frame \(86 bytes left over\)/);
  const q = new FrameParser();
  assert.throws(() => q.push(encodeFrameHeader(D1, MAX_FRAME_DATA + 1)), /exceeds/);
});
