// A disk image as a package version: import a raw disk file into the package store, import it
// again after a change (only new chunks written, the rest hard-linked from the previous
// version), export back to a sparse file with the same table and files; a damaged chunk in the
// store is never deployed; the manifest is an ordinary one.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportImageFile, importImageFile } from '../../images/image-file.ts';
import { PackageImageWriter, readPackageImage } from '../../images/package-image.ts';
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
  assert.ok(second.bytesStored >= MiB && second.bytesStored <= 1.5 * MiB, `stored ${second.bytesStored}`);
  // The first version's pack is the same inode in the second: shared chunks are stored once.
  const pack1 = store.manifest(first.digest)!.files.find((f) => f.path.startsWith('packs/'))!.path;
  const packs2 = store.manifest(second.digest)!.files.filter((f) => f.path.startsWith('packs/')).map((f) => f.path);
  assert.ok(packs2.includes(pack1));
  assert.equal(packs2.length, 2);
  const inPack = (v: string) => statSync(join(versionDir(store.root, 'lab-gold', v), pack1));
  assert.equal(inPack(first.digest).ino, inPack(second.digest).ino);
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
  const { image } = await readPackageImage(store, 'lab-gold');
  const victim = image.partitions[1]!.chunks.find((c) => c.digest !== sha(Buffer.alloc(c.length)) && c.offset > 4 * MiB)!;
  for (const loc of store.db.chunkLocations(victim.digest)) {
    const file = join(versionDir(store.root, loc.package, loc.version), loc.path);
    chmodSync(file, 0o644);
    const fd = openSync(file, 'r+');
    writeSync(fd, randomBytes(loc.size), 0, loc.size, loc.offset);
    closeSync(fd);
  }
  await assert.rejects(exportImageFile(store, 'lab-gold', undefined, join(dir, 'bad.img')), { code: 'CHUNK_MISSING', message: new RegExp(victim.digest) });
});

test('a capture interrupted half-way publishes nothing: no new version, no ref change, no staging left', async () => {
  const before = store.db.getRef('lab-gold');
  const writer = new PackageImageWriter(store, 'lab-gold');
  const bytes = randomBytes(64 * 1024);
  await writer.put(sha(bytes), bytes);
  assert.equal(await writer.has(sha(bytes)), true);
  await writer.abort();
  assert.deepEqual(store.db.getRef('lab-gold'), before);
  assert.equal(existsSync(writer.staging), false);
  assert.equal(store.db.chunkLocations(sha(bytes)).length, 0);
  await assert.rejects(writer.put('0'.repeat(64), bytes), { code: 'CHUNK_CORRUPT' });
});
