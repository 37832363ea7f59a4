// A disk image as a package version: import a raw disk file into the package store, import it
// again after a change (only new chunks written, the rest hard-linked from the previous
// version), export back to a sparse file with the same table and files; a damaged chunk in the
// store is never deployed; the manifest is an ordinary one.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportImageFile, importImageFile } from '../../images/image-file.ts';
import { readPackageImage } from '../../images/package-image.ts';
import { readyPackagePath, versionDir } from '../../packages/layout.ts';
import { PackageStore } from '../../packages/package-store.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { e2fsckClean, extCat, gptDisk, makeTree, MiB, sha, sh, type GptDisk } from './disks.ts';

let dir: string;
let store: PackageStore;
let src: GptDisk;
let hashes: Map<string, string>;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'imaging-pkg-'));
  store = new PackageStore(join(dir, 'data'), 'site-a', createMemoryLogger());
  hashes = makeTree(join(dir, 'tree'), 20, 400 * 1024);
  src = gptDisk(join(dir, 'vm.img'), 64 * MiB, join(dir, 'tree'));
});

after(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('import, import again after a change, export: only new chunks written, files equal, inventory kept', async (t) => {
  const first = await importImageFile(store, src.path, 'lab-gold');
  assert.equal(first.seq, 1);
  assert.ok(readyPackagePath(join(dir, 'data'), 'lab-gold') !== null);
  const m1 = store.manifest(first.digest)!;
  assert.equal(m1.kind, 'image');
  assert.ok(m1.files.some((f) => f.path === 'disk.json'));
  const { image } = await readPackageImage(store, 'lab-gold');
  assert.equal(image.inventory.madeBy, 'import');
  assert.equal(image.inventory.os?.name, 'Debian GNU/Linux');

  const extra = randomBytes(MiB);
  writeFileSync(join(dir, 'extra.bin'), extra);
  sh('debugfs', ['-w', '-R', `write ${join(dir, 'extra.bin')} /extra.bin`, `${src.path}?offset=${src.rootStart}`]);
  const second = await importImageFile(store, src.path, 'lab-gold');
  t.diagnostic(`second import: ${second.bytesStored} bytes new in ${second.chunksStored} chunks of ${second.chunksTotal}`);
  assert.equal(second.seq, 2);
  assert.ok(second.bytesStored >= MiB && second.bytesStored <= 6 * MiB, `stored ${second.bytesStored}`);
  // Unchanged chunks are the same inodes in both versions.
  const v2 = new Set((await readPackageImage(store, 'lab-gold', second.digest)).image.partitions[1]!.chunks.map((c) => c.digest));
  const shared = (await readPackageImage(store, 'lab-gold', first.digest)).image.partitions[1]!.chunks.find((c) => v2.has(c.digest))!.digest;
  const path = (v: string) => join(versionDir(store.root, 'lab-gold', v), 'chunks', shared.slice(0, 2), shared);
  assert.equal(statSync(path(first.digest)).ino, statSync(path(second.digest)).ino);

  const out = join(dir, 'export.img');
  const r = await exportImageFile(store, 'lab-gold', undefined, out);
  assert.equal(r.digest, second.digest);
  assert.ok(statSync(out).blocks * 512 < 64 * MiB, 'the export is sparse');
  assert.equal(sh('sfdisk', ['-d', out]).replace(/export\.img/g, 'X'), sh('sfdisk', ['-d', src.path]).replace(/vm\.img/g, 'X'));
  assert.match(e2fsckClean(out, src.rootStart), /files/);
  for (const [name, h] of hashes) assert.equal(sha(extCat(out, src.rootStart, name)), h, name);
  assert.equal(sha(extCat(out, src.rootStart, 'extra.bin')), sha(extra));
  // The older version exports too, without the extra file.
  const old = await exportImageFile(store, 'lab-gold', first.digest, join(dir, 'old.img'));
  assert.equal(old.digest, first.digest);
  assert.equal(sha(extCat(join(dir, 'old.img'), src.rootStart, 'marker.txt')), hashes.get('marker.txt'));
  assert.equal(extCat(join(dir, 'old.img'), src.rootStart, 'extra.bin').length, 0);
});

test('a chunk damaged in the store is not deployed: the export fails naming it', async () => {
  const { image, digest } = await readPackageImage(store, 'lab-gold');
  const victim = image.partitions[1]!.chunks.find((c) => c.digest !== sha(Buffer.alloc(c.length)) && c.offset > 4 * MiB)!;
  const file = join(versionDir(store.root, 'lab-gold', digest), 'chunks', victim.digest.slice(0, 2), victim.digest);
  chmodSync(file, 0o644);
  writeFileSync(file, randomBytes(victim.length));
  await assert.rejects(exportImageFile(store, 'lab-gold', undefined, join(dir, 'bad.img')), { code: 'CHUNK_MISSING', message: new RegExp(victim.digest) });
});
