// MBR and GPT codecs: an annotated MBR fixture, GPT tables made by sfdisk (the reference) decoded
// and re-encoded to the same bytes, a table moved onto a larger disk (sgdisk -v agrees it is
// valid), the exact errors of bad input, and a fuzz (FUZZ_SEED=n replays).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProtocolError } from '../../platform/runtime/errors.ts';
import { crc32 } from 'node:zlib';
import { decodeMbr, encodeMbr } from '../../protocols/disk/mbr.ts';
import { decodeGptHeader, encodeGpt, fitGpt } from '../../protocols/disk/gpt.ts';
import { decodePartitionTable, headBytesNeeded } from '../../protocols/disk/partition-table.ts';
import { fuzzSeed, prng } from '../helpers/fuzz.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function annotatedMbr(): Buffer {
  const b = Buffer.alloc(512);
  b.writeUInt32LE(0x12345678, 440); // disk signature
  // entry 1 at 0x1BE: active, CHS 20 21 00, type 83 (Linux), CHS fe ff ff, LBA 2048, 204800 sectors
  hex('80 202100 83 feffff 00080000 00200300').copy(b, 0x1be);
  // entry 2 at 0x1CE: inactive, type 07 (NTFS), LBA 206848, 1048576 sectors
  hex('00 feffff 07 feffff 00280300 00001000').copy(b, 0x1ce);
  b[510] = 0x55; b[511] = 0xaa;
  return b;
}

test('crc32 of "123456789" is CBF43926', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('MBR fixture: decoded field by field, encoded back to the same bytes', () => {
  const bytes = annotatedMbr();
  const m = decodeMbr(bytes);
  assert.equal(m.diskSignature, 0x12345678);
  assert.deepEqual(m.entries.map((e) => [e.number, e.status, e.type, e.firstLba, e.sectors]), [[1, 0x80, 0x83, 2048, 204800], [2, 0, 0x07, 206848, 1048576]]);
  assert.deepEqual(encodeMbr(m), bytes);
  const t = decodePartitionTable(bytes, 512);
  assert.equal(t.kind, 'mbr');
  assert.deepEqual(t.partitions.map((p) => [p.number, p.startBytes, p.sizeBytes, p.type]), [[1, 1048576, 104857600, '83'], [2, 105906176, 536870912, '07']]);
});

test('MBR errors are named exactly', () => {
  const b = annotatedMbr();
  b[511] = 0;
  assert.throws(() => decodeMbr(b), { message: 'mbr: no boot signature 55 AA at byte 510' });
  const ext = annotatedMbr();
  ext[0x1ce + 4] = 0x0f;
  assert.throws(() => decodeMbr(ext), { message: 'mbr: entry 2: extended partition (type 0x0f): logical partitions are not supported' });
  const ov = annotatedMbr();
  ov.writeUInt32LE(4096, 0x1ce + 8);
  assert.throws(() => decodeMbr(ov), { message: 'mbr: entries 1 and 2 overlap' });
  assert.throws(() => decodeMbr(Buffer.alloc(100)), { message: 'mbr: needs 512 bytes, got 100' });
});

function withDisk<T>(sizeBytes: number, script: string, fn: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'gpt-'));
  const path = join(dir, 'disk.img');
  try {
    const fd = openSync(path, 'w');
    ftruncateSync(fd, sizeBytes);
    closeSync(fd);
    execFileSync('sfdisk', ['-q', path], { input: script });
    return fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const GPT_SCRIPT = 'label: gpt\nlabel-id: 0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0\nstart=2048, size=20480, type=C12A7328-F81F-11D2-BA4B-00A0C93EC3B8, name="EFI system"\nstart=22528, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"\n';

test('GPT made by sfdisk: decoded, and encoded back to the same primary and backup bytes', () => {
  withDisk(32 * 1024 * 1024, GPT_SCRIPT, (path) => {
    const disk = readFileSync(path);
    const need = headBytesNeeded(disk.subarray(0, 1024), 512);
    assert.equal(need, 34 * 512);
    const t = decodePartitionTable(disk.subarray(0, need), 512);
    assert.equal(t.kind, 'gpt');
    if (t.kind !== 'gpt') return;
    assert.equal(t.gpt.diskGuid, '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0');
    assert.deepEqual(t.partitions.map((p) => [p.number, p.startBytes, p.type, p.name]), [
      [1, 1048576, 'c12a7328-f81f-11d2-ba4b-00a0c93ec3b8', 'EFI system'],
      [2, 11534336, '0fc63daf-8483-4772-8e79-3d69d8477de4', 'root'],
    ]);
    assert.equal(t.partitions[0]!.sizeBytes, 10485760);
    assert.equal(BigInt(t.partitions[1]!.startBytes + t.partitions[1]!.sizeBytes) / 512n - 1n <= t.gpt.lastUsableLba, true);
    const sectors = BigInt(disk.length / 512);
    const enc = encodeGpt(t.gpt, 512, sectors);
    assert.deepEqual(enc.primary, disk.subarray(512, 34 * 512));
    assert.equal(enc.backupOffset, disk.length - 33 * 512);
    assert.deepEqual(enc.backup, disk.subarray(disk.length - 33 * 512));
    const backup = decodeGptHeader(disk.subarray(disk.length - 512));
    assert.equal(backup.currentLba, sectors - 1n);
  });
});

test('GPT moved onto a larger disk: backup at the new end, last partition grown; sgdisk -v finds no problem', () => {
  withDisk(32 * 1024 * 1024, GPT_SCRIPT, (path) => {
    const disk = readFileSync(path);
    const t = decodePartitionTable(disk.subarray(0, 34 * 512), 512);
    if (t.kind !== 'gpt') throw new Error('not gpt');
    const bigger = 48n * 1024n * 1024n / 512n;
    const g = fitGpt(t.gpt, 512, bigger, true, 2048n);
    const enc = encodeGpt(g, 512, bigger);
    const out = Buffer.alloc(Number(bigger) * 512);
    disk.copy(out, 0, 0, 512);
    enc.primary.copy(out, 512);
    enc.backup.copy(out, enc.backupOffset);
    writeFileSync(path, out);
    const verify = execFileSync('sgdisk', ['-v', path], { encoding: 'utf8' });
    assert.match(verify, /No problems found/);
    const again = decodePartitionTable(out.subarray(0, 34 * 512), 512);
    assert.equal(again.partitions[1]!.startBytes + again.partitions[1]!.sizeBytes, Number(bigger * 512n) - 1024 * 1024);
    assert.throws(() => fitGpt(t.gpt, 512, 16n * 1024n * 1024n / 512n, false), /partition 2 ends at LBA/);
  });
});

test('GPT errors are named exactly', () => {
  withDisk(8 * 1024 * 1024, 'label: gpt\nstart=2048, type=L\n', (path) => {
    const disk = readFileSync(path);
    const head = Buffer.from(disk.subarray(0, 34 * 512));
    head[552] = head[552]! ^ 1;
    assert.throws(() => decodePartitionTable(head, 512), { message: 'gpt: header CRC-32 does not match' });
    const head2 = Buffer.from(disk.subarray(0, 34 * 512));
    head2[1084] = head2[1084]! ^ 1;
    assert.throws(() => decodePartitionTable(head2, 512), { message: 'gpt: entry array CRC-32 does not match' });
    assert.throws(() => decodePartitionTable(disk.subarray(0, 1024), 512), { message: 'gpt: entry array at LBA 2 is not inside the 1024 bytes given' });
  });
});

test('fuzz: mutated tables decode or throw ProtocolError, and what decodes re-encodes stably', (t) => {
  const seed = fuzzSeed();
  t.diagnostic(`FUZZ_SEED=${seed}`);
  const rnd = prng(seed);
  const gptDisk = withDisk(4 * 1024 * 1024, 'label: gpt\nstart=2048, size=2048, type=L\nstart=4096, type=L\n', (p) => readFileSync(p));
  const bases = [annotatedMbr(), Buffer.from(gptDisk.subarray(0, 34 * 512))];
  for (let i = 0; i < 3000; i++) {
    const base = bases[i % 2]!;
    const b = Buffer.from(base);
    const flips = 1 + Math.floor(rnd() * 8);
    for (let k = 0; k < flips; k++) {
      // Mostly where the structures are: MBR entries, GPT header and first entries.
      const region = rnd() < 0.5 ? 0x1be + Math.floor(rnd() * 66) : 512 + Math.floor(rnd() * 1024);
      b[Math.min(region, b.length - 1)] = Math.floor(rnd() * 256);
    }
    if (rnd() < 0.3 && i % 2 === 1) {
      // Fix the CRCs so the decoder's deeper checks are reached too.
      const hdr = b.subarray(512, 1024);
      const count = hdr.readUInt32LE(80), size = hdr.readUInt32LE(84);
      if (count * size <= 32 * 512 && count > 0) hdr.writeUInt32LE(crc32(b.subarray(1024, 1024 + count * size)), 88);
      hdr.writeUInt32LE(0, 16);
      const hb = Math.min(Math.max(hdr.readUInt32LE(12), 0), 512);
      hdr.writeUInt32LE(crc32(hdr.subarray(0, hb)), 16);
    }
    const cut = rnd() < 0.1 ? b.subarray(0, Math.floor(rnd() * b.length)) : b;
    let table;
    try {
      table = decodePartitionTable(cut, 512);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw new Error(`case ${i} (FUZZ_SEED=${seed}): ${String(err)}`);
      continue;
    }
    if (table.kind === 'mbr') assert.deepEqual(decodeMbr(encodeMbr(table.mbr)), table.mbr);
    else {
      const enc = encodeGpt(table.gpt, 512, table.gpt.lastUsableLba + 2n + BigInt(Math.ceil((table.gpt.entryCount * table.gpt.entryBytes) / 512)));
      const again = decodePartitionTable(Buffer.concat([cut.subarray(0, 512), enc.primary]), 512);
      assert.deepEqual(again.partitions, table.partitions);
    }
  }
});
