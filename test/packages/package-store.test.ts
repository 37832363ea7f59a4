import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { readyPackagePath } from '../../packages/layout.ts';
import { PackageStore, type CorruptChunk } from '../../packages/package-store.ts';
import type { FeedRecord } from '../../packages/package-db.ts';

const progress = () => ({ filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 });

test('publishing moves the ref only after the version is in place; old versions go after the grace period', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-store-'));
  const store = new PackageStore(join(dir, 'data'), 'site-a', createMemoryLogger());
  try {
    const records: FeedRecord[] = [];
    store.onRecord = (r) => {
      if (r.type === 'ref') assert.ok(readyPackagePath(join(dir, 'data'), 'pxe') !== null, 'the version is on disk before its ref is announced');
      records.push(r);
    };
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src/ipxe.efi'), randomBytes(200_000));
    const first = await store.publish(join(dir, 'src'), 'pxe', 'preboot', progress());
    assert.equal(first.ref.seq, 1);
    assert.equal(first.ref.owner, 'site-a');
    const v1 = readyPackagePath(join(dir, 'data'), 'pxe')!;
    assert.deepEqual(readFileSync(join(v1, 'ipxe.efi')), readFileSync(join(dir, 'src/ipxe.efi')));
    writeFileSync(join(dir, 'src/ipxe.efi'), randomBytes(1000));
    const second = await store.publish(join(dir, 'src'), 'pxe', 'preboot', progress());
    assert.equal(second.ref.seq, 2);
    const v2 = readyPackagePath(join(dir, 'data'), 'pxe')!;
    assert.notEqual(v1, v2);
    assert.ok(existsSync(v1), 'the old version is kept during the grace period');
    assert.deepEqual(await store.collectGarbage(Date.now(), 60_000), []);
    const removed = await store.collectGarbage(Date.now() + 60_000, 60_000);
    assert.deepEqual(removed.filter((r) => r.includes('/versions/')), [`pxe/versions/${first.ref.digest}`]);
    assert.ok(!existsSync(v1));
    assert.deepEqual(records.filter((r) => r.type === 'ref').map((r) => (r.type === 'ref' ? r.ref.seq : 0)), [1, 2]);
    assert.ok(records.every((r, i) => i === 0 || r.logSeq > records[i - 1]!.logSeq), 'log positions increase');
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a stored chunk that no longer matches its digest is reported and never returned', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-store-'));
  const store = new PackageStore(join(dir, 'data'), 'site-a', createMemoryLogger());
  try {
    mkdirSync(join(dir, 'src'));
    const content = randomBytes(40_000);
    writeFileSync(join(dir, 'src/f'), content);
    const { ref } = await store.publish(join(dir, 'src'), 'p', 'driver', progress());
    const digest = store.manifest(ref.digest!)!.files[0]!.chunks[0]!.digest;
    assert.deepEqual(await store.readChunk(digest), content);
    const corrupt: CorruptChunk[] = [];
    store.onCorrupt = (c) => corrupt.push(c);
    const fd = openSync(join(readyPackagePath(join(dir, 'data'), 'p')!, 'f'), 'r+');
    writeSync(fd, Buffer.from([content[100]! ^ 1]), 0, 1, 100);
    closeSync(fd);
    assert.equal(await store.readChunk(digest), null);
    assert.deepEqual(corrupt.map((c) => [c.package, c.path, c.reason]), [['p', 'f', 'content does not match its digest']]);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('changes of `current` apply in the order asked, even when not awaited one by one', async () => {
  // Damage takes a package out of service at once, outside the work queue, possibly while a
  // repair is switching `current` back: whichever was asked last must be what is left.
  const dir = mkdtempSync(join(tmpdir(), 'netboot-store-'));
  const data = join(dir, 'data');
  const store = new PackageStore(data, 'site-a', createMemoryLogger());
  try {
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src/f'), randomBytes(40_000));
    const { ref } = await store.publish(join(dir, 'src'), 'p', 'driver', progress());
    for (let i = 0; i < 20; i++) {
      await Promise.all([store.reactivate('p', ref.digest!), store.deactivate('p')]);
      assert.equal(readyPackagePath(data, 'p'), null, `round ${i}: taken out of service last, so out of service`);
      await Promise.all([store.deactivate('p'), store.reactivate('p', ref.digest!)]);
      assert.ok(readyPackagePath(data, 'p') !== null, `round ${i}: put back last, so in service`);
    }
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
