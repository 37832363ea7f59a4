// The regf (registry hive) reader: a hive made by the test-side writer (regf-writer.ts) is first
// read by libhivex's own tools (hivexget, hivexsh), so the fixture is known-good, then by ours:
// the same keys through lh, lf, li and ri lists, the same values (inline, in a cell, in big
// data), names compared case-insensitively. Malformed hives give the exact reason; truncated and
// bit-flipped ones (200 rounds, FUZZ_SEED=n replays) give a ProtocolError or a reason, never
// another throw. The Windows version read from CurrentVersion: Windows 11 told by its build.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProtocolError } from '../../platform/runtime/errors.ts';
import { baseBlockChecksum, decodeHive, findKey, keyNode, keyValues, readKeyValues, subkeys, valueDword, valueText } from '../../protocols/registry/regf.ts';
import { windowsVersion } from '../../images/windows-version.ts';
import { fuzzSeed, prng } from '../helpers/fuzz.ts';
import { dword, sz, writeHive } from './regf-writer.ts';
import { BIG, softwareKeys } from './software-hive.ts';

let dir: string;
let hive: Buffer;
let file: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'regf-'));
  hive = writeHive(softwareKeys());
  file = join(dir, 'SOFTWARE');
  writeFileSync(file, hive);
});

after(() => rmSync(dir, { recursive: true, force: true }));

const hivexget = (...args: string[]): string => execFileSync('hivexget', [file, ...args], { encoding: 'utf8', maxBuffer: 16 << 20, timeout: 30_000 });
const hivexsh = (script: string): string => execFileSync('hivexsh', [file], { encoding: 'utf8', input: script, timeout: 30_000 });

test('the fixture is a hive libhivex reads: keys through ri, lf, li and lh lists, values inline, in cells and in big data', () => {
  const key = 'Microsoft\\Windows NT\\CurrentVersion';
  assert.equal(hivexget(key, 'ProductName').trim(), 'Windows 10 Pro');
  assert.equal(hivexget(key, 'EditionID').trim(), 'Professional');
  assert.equal(hivexget(key, 'CurrentBuildNumber').trim(), '22631');
  assert.equal(hivexget(key, 'UBR').trim(), '2861');
  assert.equal(hivexget(key, 'SystemRoot').trim(), 'C:\\WINDOWS');
  const regedit = hivexget(key);
  const big = /"DigitalProductId4"=hex\(3\):([0-9a-f,\\\s]+)/.exec(regedit);
  assert.ok(big !== null, 'the big data value is listed');
  assert.deepEqual(Buffer.from(big[1]!.replace(/[,\\\s]/g, ''), 'hex'), BIG.data);
  assert.deepEqual(hivexsh('ls\n').trim().split('\n'), ['Classes', 'Microsoft', 'Policies']);
  assert.deepEqual(hivexsh('cd Microsoft\nls\n').trim().split('\n'), ['Cryptography', 'Edge', 'Office', 'Windows', 'Windows NT']);
  assert.deepEqual(hivexsh('cd Classes\nls\n').trim().split('\n'), ['*', '.txt']);
  assert.deepEqual(hivexsh('cd Microsoft\\Windows NT\nls\n').trim().split('\n'), ['CurrentVersion', 'Ölfeld']);
});

test('our reader: the same keys and values; names case-insensitive; UTF-16 and Latin-1 names', () => {
  const h = decodeHive(hive);
  assert.equal(h.clean, true);
  const names = (path: string[]) => subkeys(h, findKey(h, path)!).map((o) => keyNode(h, o).name);
  assert.deepEqual(names([]), ['Classes', 'Microsoft', 'Policies']);
  assert.deepEqual(names(['microsoft']), ['Cryptography', 'Edge', 'Office', 'Windows', 'Windows NT']);
  assert.deepEqual(names(['CLASSES']), ['*', '.txt']);
  assert.deepEqual(names(['Microsoft', 'windows nt']), ['CurrentVersion', 'Ölfeld']);
  assert.notEqual(findKey(h, ['Microsoft', 'Windows NT', 'ÖLFELD']), null);
  assert.equal(findKey(h, ['Microsoft', 'Windows NT', 'Nothing']), null);
  const values = keyValues(h, findKey(h, ['Microsoft', 'Windows NT', 'CurrentVersion'])!);
  const by = new Map(values.map((v) => [v.name, v]));
  assert.equal(valueText(by.get('ProductName')!), 'Windows 10 Pro');
  assert.equal(valueText(by.get('SystemRoot')!), 'C:\\WINDOWS');
  assert.equal(valueDword(by.get('UBR')!), 2861);
  assert.equal(valueText(by.get('UBR')!), null);
  assert.deepEqual(by.get('DigitalProductId4')!.data, BIG.data);
  const r = readKeyValues(hive, ['MICROSOFT', 'Windows NT', 'currentversion']);
  assert.ok('values' in r);
  assert.equal(valueText(r.values.get('editionid')!), 'Professional');
});

test('malformed hives: the exact reason, never a throw', () => {
  const reason = (b: Buffer, path = ['Microsoft']) => {
    const r = readKeyValues(b, path);
    assert.ok('reason' in r);
    return r.reason;
  };
  assert.equal(reason(Buffer.alloc(100)), 'regf: 100 bytes: shorter than a base block and one hbin header');
  const sig = Buffer.from(hive);
  sig.write('regX', 0, 'latin1');
  assert.equal(reason(sig), 'regf: no "regf" signature');
  const sum = Buffer.from(hive);
  sum[0x30] = sum[0x30]! ^ 1;
  assert.equal(reason(sum), 'regf: base block checksum does not match');
  assert.match(reason(hive.subarray(0, hive.length - 4096)), /^regf: truncated: the hive bins need \d+ bytes, the file has \d+$/);
  const root = Buffer.from(hive);
  root.writeUInt32LE(0x7fff0000, 0x24);
  root.writeUInt32LE(baseBlockChecksum(root), 0x1fc);
  assert.equal(reason(root), 'regf: cell offset 2147418112 is past the hive bins');
  assert.equal(reason(hive, ['Microsoft', 'Nothing']), 'no key Microsoft\\Nothing');
});

test('fuzz: truncated and bit-flipped hives (200 rounds) give a ProtocolError or a reason, never another throw', (t) => {
  const seed = fuzzSeed();
  t.diagnostic(`FUZZ_SEED=${seed}`);
  const rnd = prng(seed);
  const path = ['Microsoft', 'Windows NT', 'CurrentVersion'];
  let decoded = 0;
  for (let round = 0; round < 200; round++) {
    let b: Buffer;
    if (round % 4 === 0) b = Buffer.from(hive.subarray(0, Math.floor(rnd() * hive.length)));
    else {
      b = Buffer.from(hive);
      const flips = 1 + Math.floor(rnd() * 16);
      for (let i = 0; i < flips; i++) {
        // Mostly inside the bins (cells, lists, offsets), sometimes in the base block.
        const at = rnd() < 0.85 ? 4096 + Math.floor(rnd() * (b.length - 4096)) : Math.floor(rnd() * 0x200);
        b[at] = b[at]! ^ (1 << Math.floor(rnd() * 8));
      }
      if (round % 2 === 0) b.writeUInt32LE(baseBlockChecksum(b), 0x1fc); // past the checksum: the fields themselves
    }
    try {
      const h = decodeHive(b);
      const key = findKey(h, path);
      if (key !== null) keyValues(h, key);
      decoded++;
    } catch (err) {
      assert.ok(err instanceof ProtocolError, `round ${round} (FUZZ_SEED=${seed}): ${(err as Error).stack}`);
    }
    const r = readKeyValues(b, path);
    assert.ok('values' in r || typeof r.reason === 'string');
    const w = windowsVersion(b);
    assert.ok('reason' in w || 'name' in w);
  }
  t.diagnostic(`${decoded} of 200 still decoded`);
  assert.equal(createHash('sha256').update(hive).digest('hex'), createHash('sha256').update(writeHive(softwareKeys())).digest('hex'), 'the fixture was not changed');
});

test('the Windows version: Windows 11 told by its build; Windows 10 kept; servers as they are; missing values null', () => {
  assert.deepEqual(windowsVersion(hive), { name: 'Windows 11 Pro', version: '23H2 (build 22631.2861)', edition: 'Professional' });
  const w10 = writeHive(softwareKeys([sz('ProductName', 'Windows 10 Enterprise'), sz('EditionID', 'Enterprise'), sz('ReleaseId', '1909'), sz('CurrentBuild', '18363')]));
  assert.deepEqual(windowsVersion(w10), { name: 'Windows 10 Enterprise', version: '1909 (build 18363)', edition: 'Enterprise' });
  const server = writeHive(softwareKeys([sz('ProductName', 'Windows Server 2022 Standard'), sz('EditionID', 'ServerStandard'), sz('DisplayVersion', '21H2'), sz('CurrentBuildNumber', '20348'), dword('UBR', 2113)]));
  assert.deepEqual(windowsVersion(server), { name: 'Windows Server 2022 Standard', version: '21H2 (build 20348.2113)', edition: 'ServerStandard' });
  assert.deepEqual(windowsVersion(writeHive(softwareKeys([sz('CurrentBuildNumber', '26100')]))), { name: null, version: 'build 26100', edition: null });
  assert.deepEqual(windowsVersion(writeHive({ name: 'ROOT' })), { reason: 'no key Microsoft\\Windows NT\\CurrentVersion' });
});
