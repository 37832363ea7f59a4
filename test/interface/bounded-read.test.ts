// readRegularFile, the drop folder's only way to read a file (issue 16 item 8): no link is
// followed, a FIFO does not block, what was opened is judged on its descriptor, and no more than
// one byte past the limit is ever read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRegularFile } from '../../state/folder-entry.ts';

const MIB = 1024 * 1024;
const mkfifo = (path: string): void => void execFileSync('mkfifo', [path]);

test('readRegularFile opens without following links or blocking on a FIFO, and reads at most one byte past the limit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-bounded-read-'));
  try {
    writeFileSync(join(dir, 'ok'), 'abc');
    symlinkSync(join(dir, 'ok'), join(dir, 'link'));
    mkfifo(join(dir, 'fifo'));
    const sparse = join(dir, 'sparse');
    closeSync(openSync(sparse, 'w'));
    truncateSync(sparse, 3 * 1024 * MIB);
    const got = readRegularFile(join(dir, 'ok'), 3);
    assert.equal(got.kind, 'ok');
    assert.equal(got.kind === 'ok' && got.bytes.toString(), 'abc');
    assert.deepEqual(readRegularFile(join(dir, 'ok'), 2), { kind: 'too-large', size: 3 });
    assert.deepEqual(readRegularFile(join(dir, 'link'), 10), { kind: 'not-regular', entry: 'symlink' });
    assert.deepEqual(readRegularFile(join(dir, 'fifo'), 10), { kind: 'not-regular', entry: 'fifo' });
    assert.deepEqual(readRegularFile('/dev/zero', 10), { kind: 'not-regular', entry: 'device' });
    assert.deepEqual(readRegularFile(sparse, 64 * MIB), { kind: 'too-large', size: 3 * 1024 * MIB });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
