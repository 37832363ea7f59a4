// Hashing on worker threads gives exactly the single-thread SHA-256 (zero spans included, shared
// and ordinary buffers, odd lengths); and the imaging code still works as one esbuild bundle (the
// shape the agent ships in the preboot environment): capture and deploy of a disk file with the
// workers started from that one file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openDisk } from '../../images/block-device.ts';
import { captureDisk } from '../../images/capture.ts';
import { MemoryChunkStore } from '../../images/chunk-store.ts';
import { allChunks } from '../../images/disk-image.ts';
import { digestHex, HashPool, type Span } from '../../images/hash-pool.ts';
import { gptDisk, makeTree, MiB, sparseFile } from './disks.ts';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const root = resolve(import.meta.dirname, '../..');
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'imaging-hash-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** 4 MiB: random chunks, all-zero chunks, odd lengths, a chunk zero but for its last byte. */
function sample(into: Buffer): Span[] {
  randomBytes(into.length).copy(into);
  const spans: Span[] = [];
  let at = 0;
  for (let i = 0; at < into.length; i++) {
    const length = Math.min(into.length - at, i % 5 === 0 ? 65536 : i % 5 === 1 ? 4096 + i : i % 5 === 2 ? 65536 : 1 + ((i * 7919) % 65536));
    if (i % 5 === 2) into.fill(0, at, at + length);
    if (i % 7 === 3) into.fill(0, at, at + length - 1);
    spans.push({ start: at, length });
    at += length;
  }
  return spans;
}

test('worker threads give the same digests as SHA-256 on one thread, zero spans included', async () => {
  const pool = new HashPool(2);
  const inline = new HashPool(0);
  try {
    for (const shared of [true, false]) {
      const buf = shared ? Buffer.from(new SharedArrayBuffer(4 * MiB)) : Buffer.alloc(4 * MiB);
      const spans = sample(buf);
      const want = spans.map((s) => sha(buf.subarray(s.start, s.start + s.length)));
      assert.ok(spans.some((s) => buf.subarray(s.start, s.start + s.length).every((b) => b === 0)), 'some spans are all zero');
      assert.deepEqual(await pool.hashSpans(buf, spans), want, shared ? 'shared buffer' : 'ordinary buffer');
      assert.deepEqual(await inline.hashSpans(buf, spans), want);
      assert.deepEqual(spans.map((s) => digestHex(buf.subarray(s.start, s.start + s.length))), want);
      // Spans that do not start at 0 of an ordinary buffer (copied into shared memory from their first byte).
      const tail = spans.slice(3);
      assert.deepEqual(await pool.hashSpans(buf, tail), want.slice(3));
      const list = spans.map((s) => Buffer.from(buf.subarray(s.start, s.start + s.length)));
      assert.deepEqual(await pool.hashBuffers(list), want);
      // Views into one shared buffer, out of order and with gaps (hashed in place, not copied).
      if (shared) {
        const order = [...spans.keys()].filter((k) => k % 3 !== 1).reverse();
        assert.deepEqual(await pool.hashBuffers(order.map((k) => buf.subarray(spans[k]!.start, spans[k]!.start + spans[k]!.length))), order.map((k) => want[k]));
      }
    }
    assert.equal(pool.threads, 2);
    assert.ok(pool.bytesOnWorkers > 0, 'the workers hashed');
    assert.equal(inline.bytesOnWorkers, 0);
  } finally {
    await pool.close();
    await inline.close();
  }
});

test('a closed pool hashes inline, and still right', async () => {
  const pool = new HashPool(2);
  await pool.close();
  const buf = Buffer.alloc(MiB, 1);
  assert.deepEqual(await pool.hashSpans(buf, [{ start: 0, length: MiB }]), [sha(buf)]);
});

test('close() while the workers start and hash: it returns, the work in flight is still answered right, nothing holds the process', async () => {
  // Run in a child so a close() that leaves its caller behind shows as an exit with no answer.
  const root = resolve(import.meta.dirname, '../..');
  const script = `
import { createHash } from 'node:crypto';
import { HashPool } from ${JSON.stringify(join(root, 'images/hash-pool.ts'))};
const buf = Buffer.from(new SharedArrayBuffer(8 * 1024 * 1024));
for (let i = 0; i < buf.length; i += 4096) buf[i] = i % 251;
const spans = Array.from({ length: 128 }, (_, i) => ({ start: i * 65536, length: 65536 }));
const want = spans.map((s) => createHash('sha256').update(buf.subarray(s.start, s.start + s.length)).digest('hex'));
for (let round = 0; round < 20; round++) {
  const pool = new HashPool(2);
  const p = pool.hashSpans(buf, spans);
  await pool.close();
  const got = await p;
  if (got.join() !== want.join()) throw new Error('wrong digests in round ' + round);
}
console.log('done');
`;
  const file = join(dir, 'close.mts');
  writeFileSync(file, script);
  const out = execFileSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(out.trim(), 'done');
});

test('as one esbuild bundle (ESM, node18): capture and deploy of a disk file hash on workers, same digests as inline', async (t) => {
  makeTree(join(dir, 'tree'), 8, 700 * 1024 + 17);
  const src = gptDisk(join(dir, 'src.img'), 48 * MiB, join(dir, 'tree'));
  const out = sparseFile(join(dir, 'out.img'), 48 * MiB);
  const entry = join(dir, 'entry.ts');
  writeFileSync(entry, `
import { openDisk } from ${JSON.stringify(join(root, 'images/block-device.ts'))};
import { captureDisk } from ${JSON.stringify(join(root, 'images/capture.ts'))};
import { deployImage } from ${JSON.stringify(join(root, 'images/deploy.ts'))};
import { MemoryChunkStore } from ${JSON.stringify(join(root, 'images/chunk-store.ts'))};
import { allChunks } from ${JSON.stringify(join(root, 'images/disk-image.ts'))};
import { HashPool } from ${JSON.stringify(join(root, 'images/hash-pool.ts'))};
const [src, out] = process.argv.slice(2);
const pool = new HashPool(2);
const store = new MemoryChunkStore();
const s = await openDisk(src, 'r');
const cap = await captureDisk(s, { sink: store, madeBy: 'capture', probeOs: false, hashPool: pool });
await s.close();
const t = await openDisk(out, 'r+');
const d1 = await deployImage(t, cap.image, { source: store, grow: false, hashPool: pool });
const d2 = await deployImage(t, cap.image, { source: store, grow: false, hashPool: pool });
await t.close();
console.log(JSON.stringify({ node: process.version, threads: pool.threads, onWorkers: pool.bytesOnWorkers, digests: allChunks(cap.image).map((c) => c.digest), written: [d1.chunksWritten, d2.chunksWritten], skipped: d2.chunksSkipped }));
await pool.close();
`);
  const bundle = join(dir, 'agent.mjs');
  execFileSync(join(root, 'node_modules/.bin/esbuild'), [entry, '--bundle', '--platform=node', '--format=esm', '--target=node18', `--outfile=${bundle}`, '--log-level=error'], { timeout: 120_000 });
  // IMAGING_BUNDLE_NODE: another node binary to run the bundle with (e.g. Debian's Node 18, as in LinuxPE).
  const nodeBin = process.env.IMAGING_BUNDLE_NODE || process.execPath;
  const got = JSON.parse(execFileSync(nodeBin, [bundle, src.path, out], { encoding: 'utf8', timeout: 120_000 })) as { threads: number; onWorkers: number; digests: string[]; written: number[]; skipped: number; node: string };
  t.diagnostic(`bundle ran on node ${got.node}`);
  assert.equal(got.threads, 2);
  assert.ok(got.onWorkers > 0, 'the bundle hashed on its workers');
  // The same capture in this process, hashed inline.
  const disk = await openDisk(src.path, 'r');
  const here = await captureDisk(disk, { sink: new MemoryChunkStore(), madeBy: 'capture', probeOs: false, hashThreads: 0 }).finally(() => disk.close());
  assert.deepEqual(got.digests, allChunks(here.image).map((c) => c.digest));
  assert.ok(got.written[0]! > 0);
  assert.equal(got.written[1], 0, 'the second deploy found everything in place');
  assert.equal(got.skipped, allChunks(here.image).length - here.image.head.chunks.length);
  // What the bundle deployed is the source's used data: the same capture of the target.
  const outDisk = await openDisk(out, 'r');
  const again = await captureDisk(outDisk, { sink: new MemoryChunkStore(), madeBy: 'capture', probeOs: false }).finally(() => outDisk.close());
  assert.deepEqual(allChunks(again.image).map((c) => c.digest), got.digests);
  assert.ok(readFileSync(out).length === 48 * MiB);
});
