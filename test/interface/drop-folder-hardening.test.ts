// The SBS drop folder against hostile entries (issue 16 items 6, 7 and 8): an oversize file is
// set aside as `too large` without being read; every entry that is not a regular `*.sbs` file is
// reported once and left alone; a name that is not UTF-8 is set aside under a safe name; a
// symbolic link is never followed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../platform/runtime/atomic-file.ts';
import { loadConfig } from '../../platform/runtime/config.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { DropFolder, type ReadyFile, type Rejection } from '../../state/drop-folder.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { makeTestSite, waitFor } from '../helpers/env.ts';

const MIB = 1024 * 1024;
let n = 0;
const newId = (): string => `22222222-3333-4444-8555-${String(++n).padStart(12, '0')}`;
const clientJson = (mac: string, action: object = { type: 'wait' }): string =>
  JSON.stringify({ sbs: 1, id: newId(), kind: 'client', issued: new Date().toISOString(), client: { mac, action } });

interface Folder {
  readonly dir: string;
  readonly sbs: string;
  readonly rejectedDir: string;
  readonly folder: DropFolder;
  readonly log: ReturnType<typeof createMemoryLogger>;
  readonly applied: ReadyFile[];
  readonly rejected: Rejection[];
  /** Waits until `name` has been applied and moved to the store (the folder is alive and moving). */
  applied_(name: string): Promise<void>;
  leftAlone(name: string): Record<string, unknown>[];
}

/** A DropFolder on a temp folder that "applies" whatever it hands on by archiving it, as the Interface does. */
async function withFolder(maxFileBytes: number, before: (sbs: string, dir: string) => void, fn: (f: Folder) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-dropfolder-'));
  const sbs = join(dir, 'sbs');
  const store = join(dir, 'store');
  mkdirSync(sbs);
  before(sbs, dir);
  const log = createMemoryLogger();
  const applied: ReadyFile[] = [];
  const rejected: Rejection[] = [];
  const folder: DropFolder = new DropFolder({
    dir: sbs, storeDir: store, settleMs: 20, parseRetryMs: 300, maxFileBytes,
    onReady: (files) => {
      for (const f of files) {
        applied.push(f);
        folder.archive(f);
      }
    },
    onRejected: (r) => rejected.push(r),
  }, log);
  await folder.start();
  const f: Folder = {
    dir, sbs, rejectedDir: join(store, 'rejected'), folder, log, applied, rejected,
    applied_: async (name) => {
      await waitFor(`${name} applied and archived`, () => (applied.some((a) => a.name === name) && !existsSync(join(sbs, name)) ? true : undefined));
    },
    leftAlone: (name) => log.records.filter((r) => r['msg'] === 'SBS folder entry left alone' && r['file'] === name),
  };
  try {
    await fn(f);
  } finally {
    await folder.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function reasonOf(f: Folder, name: string): Promise<{ file: string; field: string; problem: string; nameHex?: string }> {
  const p = join(f.rejectedDir, `${name}.error.json`);
  return waitFor(`the reason for ${name}`, () => (existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : undefined));
}

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}

test('an oversize file is set aside as too large without being read; a file of exactly the limit is applied', async () => {
  const limit = MIB;
  const exact = Buffer.alloc(limit, 0x20);
  Buffer.from(clientJson('52-54-00-00-00-01')).copy(exact);
  await withFolder(limit, (sbs) => {
    // Sparse: 3 GiB on paper, no blocks on disk. Old code retried it every 100 ms forever.
    writeFileSync(join(sbs, 'huge.sbs'), '');
    truncateSync(join(sbs, 'huge.sbs'), 3 * 1024 * MIB);
    writeFileSync(join(sbs, 'over.sbs'), Buffer.alloc(limit + 1));
    writeFileSync(join(sbs, 'exact.sbs'), exact);
  }, async (f) => {
    const huge = await reasonOf(f, 'huge.sbs');
    const over = await reasonOf(f, 'over.sbs');
    assert.match(huge.problem, /^too large: 3221225472 bytes/);
    assert.match(over.problem, /^too large: 1048577 bytes/);
    assert.ok(existsSync(join(f.rejectedDir, 'huge.sbs')) && existsSync(join(f.rejectedDir, 'over.sbs')), 'both moved to rejected/');
    await f.applied_('exact.sbs');
    assert.deepEqual(f.rejected.map((r) => r.name).sort(), ['huge.sbs', 'over.sbs']);
    assert.deepEqual(f.applied.map((a) => a.name), ['exact.sbs']);
    assert.equal(f.log.records.filter((r) => r['msg'] === 'cannot read SBS file; will retry').length, 0);
    // Dropped while running (through the watcher, not the start-up scan): set aside too.
    writeFileSync(join(f.sbs, 'later.sbs'), '');
    truncateSync(join(f.sbs, 'later.sbs'), 2 * limit);
    assert.match((await reasonOf(f, 'later.sbs')).problem, /^too large/);
  });
});

test('every entry that is not a regular *.sbs file is reported once and left alone', async () => {
  await withFolder(MIB, (sbs) => {
    mkfifo(join(sbs, 'pipe.sbs'));
    mkfifo(join(sbs, 'pipe'));
    mkdirSync(join(sbs, 'x.sbs'));
    symlinkSync('/dev/zero', join(sbs, 'zero.sbs'));
    writeFileSync(join(sbs, 'readme.txt'), 'not an instruction');
  }, async (f) => {
    const expected: Record<string, string> = { 'pipe.sbs': 'fifo', pipe: 'fifo', 'x.sbs': 'directory', 'zero.sbs': 'symlink', 'readme.txt': 'file' };
    for (const name of Object.keys(expected)) await waitFor(`the report of ${name}`, () => (f.leftAlone(name).length > 0 ? true : undefined));
    // More scans (the 30 s safety net) and more events repeat nothing.
    f.folder.scan();
    f.folder.scan();
    writeFileSync(join(f.sbs, 'good.sbs'), clientJson('52-54-00-00-00-02'));
    await f.applied_('good.sbs');
    f.folder.scan();
    for (const [name, kind] of Object.entries(expected)) {
      const reports = f.leftAlone(name);
      assert.equal(reports.length, 1, `${name} reported once`);
      assert.equal(reports[0]!['kind'], kind);
      assert.equal(reports[0]!['level'], kind === 'file' ? 'info' : 'warn');
      assert.ok(String(reports[0]!['problem']).length > 0);
    }
    assert.equal(f.leftAlone('zero.sbs')[0]!['target'], '/dev/zero');
    assert.deepEqual(readdirSync(f.sbs).sort(), Object.keys(expected).sort(), 'all left where they were');
    assert.deepEqual(f.rejected, []);
    // Entries made while running are reported as they appear.
    mkdirSync(join(f.sbs, 'y.sbs'));
    mkfifo(join(f.sbs, 'late.sbs'));
    symlinkSync('/dev/zero', join(f.sbs, 'late-link.sbs'));
    for (const name of ['y.sbs', 'late.sbs', 'late-link.sbs']) await waitFor(`the report of ${name}`, () => (f.leftAlone(name).length > 0 ? true : undefined));
    // A replaced entry is a new one: reported again.
    rmSync(join(f.sbs, 'x.sbs'), { recursive: true });
    symlinkSync('/dev/null', join(f.sbs, 'x.sbs'));
    await waitFor('the new x.sbs reported', () => (f.leftAlone('x.sbs').length === 2 ? true : undefined));
    assert.equal(f.leftAlone('x.sbs')[1]!['kind'], 'symlink');
  });
});

test('a name that is not valid UTF-8 is set aside under a safe name with its bytes in the reason', async () => {
  const bad = Buffer.from([0x6a, 0x6f, 0x62, 0xff, 0x2e, 0x73, 0x62, 0x73]); // "job\xff.sbs"
  const badDir = Buffer.from([0x64, 0xc3, 0x28]); // "d" then an invalid two-byte sequence
  const pathOf = (sbs: string, raw: Buffer): Buffer => Buffer.concat([Buffer.from(`${sbs}/`), raw]);
  await withFolder(MIB, (sbs) => {
    writeFileSync(pathOf(sbs, bad), clientJson('52-54-00-00-00-03'));
    mkdirSync(pathOf(sbs, badDir));
  }, async (f) => {
    const reason = await reasonOf(f, 'job_.sbs');
    assert.equal(reason.nameHex, bad.toString('hex'));
    assert.match(reason.problem, new RegExp(`not valid UTF-8 \\(bytes ${bad.toString('hex')}\\)`));
    assert.equal((await reasonOf(f, 'd__')).nameHex, badDir.toString('hex'));
    assert.deepEqual(readdirSync(f.sbs), [], 'nothing with an unrepresentable name is left');
    assert.ok(lstatSync(join(f.rejectedDir, 'd__')).isDirectory());
    assert.deepEqual(f.applied, [], 'set aside, not applied');
    // Dropped while running: the watcher sees a mangled name; the folder looks at the bytes.
    const late = Buffer.from([0x6c, 0x61, 0x74, 0x65, 0xfe, 0x2e, 0x73, 0x62, 0x73]); // "late\xfe.sbs"
    writeFileSync(pathOf(f.sbs, late), 'x');
    assert.equal((await reasonOf(f, 'late_.sbs')).nameHex, late.toString('hex'));
    assert.deepEqual(f.rejected.map((r) => r.name).sort(), ['d__', 'job_.sbs', 'late_.sbs']);
  });
});

test('a symbolic link is never followed: reported as a link and left alone, its target never read', async () => {
  await withFolder(MIB, (sbs, dir) => {
    // A valid instruction elsewhere: old code applied it and the store kept only the link.
    writeFileSync(join(dir, 'elsewhere.sbs'), clientJson('52-54-00-00-00-04'));
    symlinkSync(join(dir, 'elsewhere.sbs'), join(sbs, 'link.sbs'));
    // A secret (a stand-in for /etc/shadow): old code read it and quoted its first character.
    writeFileSync(join(dir, 'secret'), 'SECRET:$6$salt$hash', { mode: 0o600 });
    symlinkSync(join(dir, 'secret'), join(sbs, 'secret.sbs'));
  }, async (f) => {
    symlinkSync('/etc/shadow', join(f.sbs, 'shadow.sbs')); // while running, through the watcher
    for (const name of ['link.sbs', 'secret.sbs', 'shadow.sbs']) {
      const [report] = await waitFor(`the report of ${name}`, () => (f.leftAlone(name).length > 0 ? f.leftAlone(name) : undefined));
      assert.equal(report!['kind'], 'symlink');
      assert.match(String(report!['problem']), /not followed/);
    }
    writeFileSync(join(f.sbs, 'good.sbs'), clientJson('52-54-00-00-00-05'));
    await f.applied_('good.sbs');
    assert.deepEqual(f.applied.map((a) => a.name), ['good.sbs']);
    assert.deepEqual(f.rejected, []);
    for (const name of ['link.sbs', 'secret.sbs', 'shadow.sbs']) assert.ok(lstatSync(join(f.sbs, name)).isSymbolicLink(), `${name} left alone`);
    assert.ok(existsSync(join(f.dir, 'elsewhere.sbs')), 'the target is untouched');
    assert.equal(f.log.records.some((r) => JSON.stringify(r).includes('SECRET')), false, 'nothing of the target in the log');
  });
});

test('[interface] max_sbs_file_mib defaults to 64 and reaches the Interface\'s folder', async () => {
  const plain = await makeTestSite();
  assert.equal(plain.config.interface.maxSbsFileMib, 64);
  plain.cleanup();
  // Refused, not clamped: 0 would set every file aside; past 256 MiB a document cannot be decoded.
  const dir = mkdtempSync(join(tmpdir(), 'netboot-config-'));
  try {
    for (const bad of [0, 257]) {
      writeFileSync(join(dir, 'netboot.toml'), `[interface]\nmax_sbs_file_mib = ${bad}\n`);
      assert.throws(() => loadConfig(join(dir, 'netboot.toml')), /max_sbs_file_mib/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const site = await makeTestSite('[interface]\nmax_sbs_file_mib = 1\n');
  const log = createMemoryLogger();
  const svc = buildInterface(site.config, log);
  await svc.start();
  try {
    const big = Buffer.alloc(2 * MIB, 0x20);
    Buffer.from(clientJson('52-54-00-00-00-06')).copy(big);
    writeFileAtomic(join(site.config.paths.sbs, 'big.sbs'), big);
    const p = join(site.config.paths.sbsStore, 'rejected', 'big.sbs.error.json');
    const reason = await waitFor('big.sbs set aside', () => (existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : undefined));
    assert.match(reason.problem, /^too large: 2097152 bytes; the limit is 1 MiB/);
  } finally {
    await svc.stop();
    site.cleanup();
  }
});
