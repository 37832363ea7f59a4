// The used-block parsers against the tools' own counts, on image files: ext4 (1 KiB and 4 KiB
// blocks, flex_bg with BLOCK_UNINIT groups) against dumpe2fs's free block count, FAT16 and FAT32
// against partclone.fat's map of used extents, NTFS against partclone.ntfs's; a partition with no
// file system we know is taken whole, and says so.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { totalLength } from '../../images/extents.ts';
import { fsUsage } from '../../images/used-blocks.ts';
import { makeTree, MiB, sh, sparseFile } from './disks.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'used-blocks-'));
  makeTree(join(dir, 'tree'), 6, 700 * 1024);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function usage(path: string) {
  const fd = openSync(path, 'r');
  try {
    return await fsUsage(async (o, l) => {
      const b = Buffer.alloc(l);
      readSync(fd, b, 0, l, o);
      return b;
    }, statSync(path).size);
  } finally {
    closeSync(fd);
  }
}

/** Bytes partclone's domain map (-D) marks used ("+"). */
function partcloneUsed(tool: string, path: string): number {
  const map = join(dir, `map-${tool}-${Math.random().toString(36).slice(2)}`);
  try {
    execFileSync(tool, ['-D', '-s', path, '-o', map], { stdio: 'ignore', timeout: 60_000 });
  } catch {
    // exit status not trusted: the map is read
  }
  let n = 0;
  for (const line of readFileSync(map, 'utf8').split('\n')) {
    const m = /^0x([0-9A-F]+)\s+0x([0-9A-F]+)\s+\+/i.exec(line);
    if (m !== null) n += Number.parseInt(m[2]!, 16);
  }
  return n;
}

for (const blockBytes of [1024, 4096]) {
  test(`ext4 with ${blockBytes}-byte blocks: used bytes are dumpe2fs's block count minus free blocks`, async () => {
    const img = sparseFile(join(dir, `ext4-${blockBytes}.img`), 600 * MiB);
    sh('mkfs.ext4', ['-q', '-F', '-b', String(blockBytes), '-L', 'data', '-d', join(dir, 'tree'), img]);
    const h = sh('dumpe2fs', ['-h', img]);
    const count = Number(/Block count:\s+(\d+)/.exec(h)![1]);
    const free = Number(/Free blocks:\s+(\d+)/.exec(h)![1]);
    assert.match(sh('dumpe2fs', [img]), /BLOCK_UNINIT/, 'the test covers uninitialised groups');
    const u = await usage(img);
    assert.deepEqual([u.fs, u.label, u.blockBytes, u.whole], ['ext4', 'data', blockBytes, false]);
    assert.equal(totalLength(u.used), (count - free) * blockBytes);
  });
}

for (const bits of [16, 32]) {
  test(`FAT${bits}: used bytes match partclone.fat's map`, async () => {
    const img = sparseFile(join(dir, `fat${bits}.img`), (bits === 16 ? 64 : 300) * MiB);
    sh('mkfs.vfat', ['-F', String(bits), '-n', `F${bits}`, img]);
    sh('mcopy', ['-s', '-i', img, join(dir, 'tree/data'), '::/']);
    const u = await usage(img);
    assert.deepEqual([u.fs, u.label, u.whole], [`fat${bits}`, `F${bits}`, false]);
    assert.equal(totalLength(u.used), partcloneUsed('partclone.fat', img));
  });
}

test('NTFS: used bytes match partclone.ntfs\'s map, plus the backup boot sector', async () => {
  const img = sparseFile(join(dir, 'ntfs.img'), 64 * MiB);
  sh('mkntfs', ['-Q', '-q', '-F', '-L', 'DATA', img]);
  writeFileSync(join(dir, 'n.bin'), randomBytes(2 * MiB));
  sh('ntfscp', ['-f', img, join(dir, 'n.bin'), 'n.bin']);
  const u = await usage(img);
  assert.deepEqual([u.fs, u.label, u.whole], ['ntfs', 'DATA', false]);
  const pc = partcloneUsed('partclone.ntfs', img);
  assert.ok(totalLength(u.used) - pc >= 0 && totalLength(u.used) - pc <= u.blockBytes, `ours ${totalLength(u.used)}, partclone ${pc}`);
});

test('no file system we know: taken whole, and the reason is given', async () => {
  const img = join(dir, 'random.img');
  writeFileSync(img, randomBytes(2 * MiB));
  const u = await usage(img);
  assert.deepEqual([u.fs, u.whole, totalLength(u.used)], [null, true, 2 * MiB]);
  assert.match(u.note ?? '', /not recognised .*taken whole/);
});
