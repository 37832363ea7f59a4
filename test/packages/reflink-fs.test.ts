// Package versions on a filesystem with reflinks (a loop-mounted XFS made with reflink=1; needs
// root and xfsprogs, installed by .ci/run): the owner publishes a large image file from a
// reflinked snapshot and hashes again only what changed; a replica clones a plain file from the
// previous version and takes its unchanged chunks as they are. The same plain-file change on a
// loop-mounted ext4 (no reflinks) takes the fallback: copied in runs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packagesRoot, readyPackagePath, versionDir } from '../../packages/layout.ts';
import { readFileRange } from '../../packages/segments.ts';
import { waitFor } from '../helpers/env.ts';
import { InProcessNode, makeSites, waitReady } from './sites.ts';

const MIB = 1024 * 1024;
const RULE = { segments: { minFileBytes: MIB } };
const outer = mkdtempSync(join(tmpdir(), 'netboot-xfs-'));
const mnt = join(outer, 'mnt');
const ext4 = join(outer, 'ext4');
const savedTmp = process.env.TMPDIR;
const mounts: string[] = [];

function patch(file: string, at: number, data: Buffer): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, data, 0, data.length, at);
  closeSync(fd);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function pair(onXfs: boolean): Promise<{ A: InProcessNode; B: InProcessNode; src: string; stop(): Promise<void> }> {
  process.env.TMPDIR = onXfs ? mnt : ext4;
  try {
    const env = await makeSites(['a', 'b'], { extra: '[packages]\nscrub_interval_ms = 0\n' });
    const [A, B] = (await Promise.all(env.sites.map((s) => new InProcessNode(s, RULE).start()))) as [InProcessNode, InProcessNode];
    await waitFor('links up', () => [A, B].every((n) => n.describe().links.every((l) => l.connected)) || undefined);
    const src = join(env.sites[0]!.dir, 'src');
    mkdirSync(src);
    return { A, B, src, stop: async () => {
      await Promise.all([A.stop(), B.stop()]);
      env.cleanup();
    } };
  } finally {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  }
}

before(() => {
  const img = join(outer, 'xfs.img');
  execFileSync('truncate', ['-s', '1G', img]);
  execFileSync('mkfs.xfs', ['-q', '-m', 'reflink=1', img]);
  mkdirSync(mnt);
  execFileSync('mount', ['-o', 'loop', img, mnt]);
  mounts.push(mnt);
  const img4 = join(outer, 'ext4.img');
  execFileSync('truncate', ['-s', '256M', img4]);
  execFileSync('mkfs.ext4', ['-q', '-F', img4]);
  mkdirSync(ext4);
  execFileSync('mount', ['-o', 'loop', img4, ext4]);
  mounts.push(ext4);
});

after(() => {
  for (const m of mounts) {
    try {
      execFileSync('umount', [m]);
    } catch {
      execFileSync('umount', ['-l', m]); // a file still closing: detach now, freed when it is
    }
  }
  rmSync(outer, { recursive: true, force: true });
});

test('XFS: republishing a large image file hashes only what changed; the replica shares the rest', { timeout: 120_000 }, async () => {
  const { A, B, src, stop } = await pair(true);
  try {
    assert.equal(A.logged('packages serving')[0]?.reflinks, true);
    const img = join(src, 'disk.img');
    writeFileSync(img, Buffer.concat([randomBytes(12 * MIB), Buffer.alloc(4 * MIB), randomBytes(8 * MIB)]));
    const v1 = await A.service.publish(src, 'img', 'image');
    const p1 = A.logged('package published').at(-1)!;
    assert.equal(p1.snapshots, 'reflinked');
    assert.deepEqual(p1.largeFiles, { extents: 0, whole: 1 });
    await waitReady(B, 'img', v1.digest!, 60_000);

    patch(img, 3 * MIB + 777, randomBytes(60 * 1024));
    patch(img, 20 * MIB + 5, randomBytes(40 * 1024));
    const v2 = await A.service.publish(src, 'img', 'image');
    const p2 = A.logged('package published').at(-1)!;
    assert.deepEqual(p2.largeFiles, { extents: 1, whole: 0 });
    assert.ok(Number(p2.bytesHashed) < 3 * MIB, `hashed ${p2.bytesHashed} bytes of ${24 * MIB}`);
    assert.ok(Number(p2.segmentsWritten) <= 8, `wrote ${p2.segmentsWritten} segments`);
    await waitReady(B, 'img', v2.digest!, 60_000);

    // Both sides hold exactly the source's bytes, read through the segments.
    const want = sha(readFileSync(img));
    for (const n of [A, B]) {
      const m = n.service.manifest(v2.digest!)!;
      const f = m.files[0]!;
      const parts: Buffer[] = [];
      let off = 0;
      for (const c of f.chunks) {
        parts.push((await readFileRange(versionDir(packagesRoot(n.site.config.paths.data), 'img', v2.digest!), f, true, off, c.size))!);
        off += c.size;
      }
      assert.equal(sha(Buffer.concat(parts)), want, n.id);
    }
    // Nothing changed: nothing read again, no new version.
    await A.service.publish(src, 'img', 'image');
    const p3 = A.logged('package unchanged: same content as the current version, nothing written').at(-1);
    assert.ok(p3 !== undefined);
  } finally {
    await stop();
  }
});

async function plainFileChange(onXfs: boolean): Promise<Record<string, unknown>> {
  const { A, B, src, stop } = await pair(onXfs);
  try {
    const file = join(src, 'boot.wim');
    writeFileSync(file, randomBytes(8 * MIB));
    const v1 = await A.service.publish(src, 'pe', 'preboot');
    await waitReady(B, 'pe', v1.digest!, 60_000);
    patch(file, 2 * MIB, randomBytes(100 * 1024));
    const v2 = await A.service.publish(src, 'pe', 'preboot');
    await waitReady(B, 'pe', v2.digest!, 60_000);
    const dir = readyPackagePath(B.site.config.paths.data, 'pe')!;
    assert.equal(sha(readFileSync(join(dir, 'boot.wim'))), sha(readFileSync(file)), 'a plain file MTFTP can serve');
    return B.logged('package ready').find((r) => r.digest === v2.digest)!;
  } finally {
    await stop();
  }
}

test('XFS: a replica clones a changed plain file from the previous version and does not hash its unchanged chunks again', { timeout: 60_000 }, async () => {
  const r = await plainFileChange(true);
  assert.ok(Number(r.sharedChunks) > 90, `shared ${r.sharedChunks}`);
  assert.equal(r.runChunks, 0);
  assert.equal(r.verifiedChunks, 0);
});

test('ext4 (no reflinks): the same change is copied from the previous version in runs', { timeout: 60_000 }, async () => {
  const r = await plainFileChange(false);
  assert.equal(r.sharedChunks, 0);
  assert.ok(Number(r.runChunks) > 90, `copied ${r.runChunks} in runs`);
});
