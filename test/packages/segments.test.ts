// Large image files stored as segments shared between versions (packages/segments.ts): a new
// version costs what changed on the owner and on a replica, on a filesystem without reflinks
// (the test folders are on ext4 here); damage in a segment is found and repaired; segments no
// version uses are collected.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { packagesRoot, segmentsDir, versionDir } from '../../packages/layout.ts';
import type { ChunkRef } from '../../packages/manifest.ts';
import { readFileRange, segmentAt, segmentNames, segmentsOf, SEGMENT_MAX_CHUNKS } from '../../packages/segments.ts';
import { waitFor } from '../helpers/env.ts';
import { InProcessNode, makeSites, waitReady } from './sites.ts';

const RULE = { segments: { minFileBytes: 1024 * 1024 } };
const MIB = 1024 * 1024;

test('segments: cut after a digest ending in a multiple of 8, at most 16 chunks, found by offset', () => {
  const chunks: ChunkRef[] = Array.from({ length: 400 }, (_, i) => ({ digest: createHash('sha256').update(String(i)).digest('hex'), size: 1000 + i }));
  const segs = segmentsOf(chunks);
  assert.equal(segs.reduce((n, s) => n + s.chunks.length, 0), 400);
  let off = 0;
  for (const s of segs) {
    assert.equal(s.offset, off);
    assert.ok(s.chunks.length <= SEGMENT_MAX_CHUNKS);
    const last = s.chunks.at(-1)!;
    assert.ok(parseInt(last.digest[63]!, 16) % 8 === 0 || s.chunks.length === SEGMENT_MAX_CHUNKS || s === segs.at(-1));
    for (const c of s.chunks.slice(0, -1)) assert.notEqual(parseInt(c.digest[63]!, 16) % 8, 0);
    assert.equal(segmentAt(segs, s.offset), s);
    assert.equal(segmentAt(segs, s.offset + s.size - 1), s);
    off += s.size;
  }
  assert.equal(segmentAt(segs, off), null);
  // A change to one chunk changes the segments around it only.
  const changed = [...chunks];
  changed[200] = { digest: createHash('sha256').update('other').digest('hex'), size: 1200 };
  const before = new Set(segs.map((s) => s.name));
  const fresh = segmentsOf(changed).filter((s) => !before.has(s.name));
  assert.ok(fresh.length >= 1 && fresh.length <= 3, `${fresh.length} new segments`);
});

/** Disk blocks used under `dir` (each inode once). */
function diskBytes(dir: string, seen = new Set<number>()): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const st = lstatSync(p);
    if (e.isDirectory()) n += diskBytes(p, seen);
    else if (!seen.has(st.ino)) {
      seen.add(st.ino);
      n += st.blocks * 512;
    }
  }
  return n;
}

function patch(file: string, at: number, data: Buffer): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, data, 0, data.length, at);
  closeSync(fd);
}

let env: Awaited<ReturnType<typeof makeSites>>;
let A: InProcessNode;
let B: InProcessNode;
let src: string;

before(async () => {
  env = await makeSites(['a', 'b'], { extra: '[packages]\nscrub_interval_ms = 0\ngc_grace_ms = 0\n' });
  [A, B] = (await Promise.all(env.sites.map((s) => new InProcessNode(s, RULE).start()))) as [InProcessNode, InProcessNode];
  src = join(env.sites[0]!.dir, 'src');
  mkdirSync(src);
  // 24 MiB: random data, with 4 MiB of zeros in the middle (free space), and a small file.
  const img = Buffer.concat([randomBytes(10 * MIB), Buffer.alloc(4 * MIB), randomBytes(10 * MIB)]);
  writeFileSync(join(src, 'disk.img'), img);
  writeFileSync(join(src, 'disk.json'), '{"small":true}\n');
  await waitFor('links up', () => [A, B].every((n) => n.describe().links.every((l) => l.connected)) || undefined);
});

after(async () => {
  await Promise.all([A, B].map((n) => n?.stop()));
  env?.cleanup();
});

test('a 100 KB change: the owner writes and the replica builds only the segments around it; both versions take little more disk than one', { timeout: 120_000 }, async () => {
  const v1 = await A.service.publish(src, 'img', 'image');
  await waitReady(B, 'img', v1.digest!, 60_000);
  const bRoot = packagesRoot(B.site.config.paths.data);
  const aRoot = packagesRoot(A.site.config.paths.data);
  assert.ok(!existsSync(join(versionDir(aRoot, 'img', v1.digest!), 'disk.img')), 'the large file is not a plain file in the version');
  assert.ok(existsSync(join(versionDir(bRoot, 'img', v1.digest!), 'disk.json')), 'small files stay plain files');
  const one = diskBytes(join(bRoot, 'img'));
  assert.ok(one < 21 * MIB, `v1 uses ${one} bytes on B (zeros stay holes)`);

  patch(join(src, 'disk.img'), 5 * MIB + 1234, randomBytes(60 * 1024));
  patch(join(src, 'disk.img'), 17 * MIB + 99, randomBytes(40 * 1024));
  const aLogs = A.log.records.length;
  const bLogs = B.log.records.length;
  const v2 = await A.service.publish(src, 'img', 'image');
  const published = A.log.records.slice(aLogs).find((r) => r.msg === 'package published')!;
  assert.ok(Number(published.segmentsWritten) <= 8, `owner wrote ${published.segmentsWritten} segments`);
  assert.ok(Number(published.segmentBytesWritten) < 4 * MIB, `owner wrote ${published.segmentBytesWritten} bytes`);
  await waitReady(B, 'img', v2.digest!, 60_000);
  const ready = B.log.records.slice(bLogs).find((r) => r.msg === 'package ready' && r.digest === v2.digest)!;
  assert.ok(Number(ready.sharedSegments) > 20, `B shared ${ready.sharedSegments} segments`);
  assert.ok(Number(ready.newSegments) <= 8, `B wrote ${ready.newSegments} segments`);
  assert.equal(ready.linkedFiles, 1);
  assert.equal(ready.verifiedChunks, 1, 'nothing held was hashed again but the small file hard-linked from v1');

  // B's v2, read through the segments, is the source's bytes.
  const m = B.service.manifest(v2.digest!)!;
  const f = m.files.find((x) => x.path === 'disk.img')!;
  const h = createHash('sha256');
  let off = 0;
  for (const c of f.chunks) {
    const data = await readFileRange(versionDir(bRoot, 'img', v2.digest!), f, true, off, c.size);
    assert.ok(data !== null);
    h.update(data);
    off += c.size;
  }
  assert.equal(h.digest('hex'), createHash('sha256').update(readFileSync(join(src, 'disk.img'))).digest('hex'));

  // Both versions on B (v1 kept until collected): at most what changed more than one. With
  // gc_grace_ms = 0, v1 and its own segments go at the next collection.
  const both = diskBytes(join(bRoot, 'img'));
  assert.ok(both - one < 4 * MIB, `v2 added ${both - one} bytes on B`);
  const wanted = segmentNames(RULE.segments, m);
  await waitFor('old segments collected on B', () => {
    const held = readdirSync(segmentsDir(bRoot, 'img'));
    return held.length === wanted.size && held.every((n) => wanted.has(n)) ? true : undefined;
  }, 20_000);
  const verified = (await B.service.verify({ id: 'img' })) as { problems: unknown[] };
  assert.deepEqual(verified.problems, []);
});

test('a damaged segment is found by verify and repaired from the owner', { timeout: 60_000 }, async () => {
  const digest = B.status('img')!.digest!;
  const bRoot = packagesRoot(B.site.config.paths.data);
  const m = B.service.manifest(digest)!;
  const f = m.files.find((x) => x.path === 'disk.img')!;
  const seg = segmentsOf(f.chunks).find((s) => s.chunks.length > 2 && s.offset > 0)!;
  patch(join(segmentsDir(bRoot, 'img'), seg.name), 100, Buffer.from('damage'));
  const r = (await B.service.verify({ id: 'img' })) as { problems: Array<{ path: string; reason: string }> };
  assert.equal(r.problems.length, 1);
  assert.equal(r.problems[0]!.path, 'disk.img');
  assert.match(r.problems[0]!.reason, /1 chunk\(s\) do not match/);
  await waitReady(B, 'img', digest);
  await waitFor('repaired', async () => (((await B.service.verify({ id: 'img' })) as { problems: unknown[] }).problems.length === 0 ? true : undefined), 20_000);
});

test('a segment changed behind our back is seen by the watcher and repaired', { timeout: 60_000 }, async () => {
  const digest = B.status('img')!.digest!;
  const bRoot = packagesRoot(B.site.config.paths.data);
  const f = B.service.manifest(digest)!.files.find((x) => x.path === 'disk.img')!;
  const seg = segmentsOf(f.chunks).filter((s) => s.chunks.length > 2).at(-1)!;
  const before = B.logged('package file damaged; repairing it').length;
  patch(join(segmentsDir(bRoot, 'img'), seg.name), 5000, Buffer.from('behind our back'));
  await waitFor('damage seen', () => (B.logged('package file damaged; repairing it').length > before ? true : undefined), 20_000);
  assert.equal(B.logged('package file damaged; repairing it').at(-1)!.path, 'disk.img');
  await waitReady(B, 'img', digest);
  await waitFor('repaired', async () => (((await B.service.verify({ id: 'img' })) as { problems: unknown[] }).problems.length === 0 ? true : undefined), 20_000);
});
