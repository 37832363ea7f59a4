import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeManifest } from '../../packages/manifest.ts';
import { buildVersion, type PublishProgress } from '../../packages/publish.ts';

const newProgress = (): PublishProgress => ({ filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 });

test('a published version is a byte-exact copy whose manifest names every chunk by its SHA-256', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-publish-'));
  try {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'drivers/net'), { recursive: true });
    mkdirSync(join(src, 'empty-dir'));
    writeFileSync(join(src, 'disk.img'), randomBytes(3 * 1024 * 1024 + 17));
    writeFileSync(join(src, 'drivers/net/e1000.inf'), 'small file');
    writeFileSync(join(src, 'zero'), '');
    writeFileSync(join(src, 'sparse.img'), Buffer.concat([Buffer.alloc(12 * 1024 * 1024), Buffer.from('end')]));
    chmodSync(join(src, 'drivers/net/e1000.inf'), 0o640);
    const progress = newProgress();
    const built = await buildVersion(src, join(dir, 'stage'), { package: 'p1', kind: 'image', owner: 'a', createdAt: new Date().toISOString() }, progress);
    assert.equal(built.digest, createHash('sha256').update(built.encoded.body).digest('hex'));
    assert.deepEqual(decodeManifest(built.encoded.body, (d) => built.encoded.parts.get(d) ?? null), built.manifest);
    const total = 3 * 1024 * 1024 + 17 + 10 + 12 * 1024 * 1024 + 3;
    assert.deepEqual(progress, { filesDone: 4, filesTotal: 4, bytesDone: total, bytesTotal: total });
    assert.ok(statSync(join(dir, 'stage/sparse.img')).blocks * 512 <= 4 * 1024 * 1024 + 8192, 'runs of zeros are not written: they stay holes');
    assert.deepEqual(built.manifest.dirs.map((d) => d.path), ['drivers', 'drivers/net', 'empty-dir']);
    for (const f of built.manifest.files) {
      const copy = readFileSync(join(dir, 'stage', f.path));
      assert.deepEqual(copy, readFileSync(join(src, f.path)), f.path);
      assert.equal(statSync(join(dir, 'stage', f.path)).mode & 0o777, f.mode);
      let off = 0;
      for (const c of f.chunks) {
        assert.equal(createHash('sha256').update(copy.subarray(off, off + c.size)).digest('hex'), c.digest);
        off += c.size;
      }
      assert.equal(off, f.size);
    }
    const img = built.manifest.files.find((f) => f.path === 'disk.img')!;
    assert.ok(img.chunks.length > 10, 'a large file is cut into many chunks');
    assert.equal(built.manifest.files.find((f) => f.path === 'drivers/net/e1000.inf')!.chunks.length, 1, 'a small file is one chunk');
    assert.equal(built.manifest.files.find((f) => f.path === 'drivers/net/e1000.inf')!.mode, 0o640);
    assert.deepEqual(built.manifest.files.find((f) => f.path === 'zero')!.chunks, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a source with a symlink is refused, naming it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-publish-'));
  try {
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src/a'), 'x');
    symlinkSync('/etc/passwd', join(dir, 'src/link'));
    await assert.rejects(buildVersion(join(dir, 'src'), join(dir, 'stage'), { package: 'p', kind: 'driver', owner: 'a', createdAt: new Date().toISOString() }, newProgress()),
      (err: Error & { code?: string }) => err.code === 'PACKAGE_SOURCE' && /not allowed: link/.test(err.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
