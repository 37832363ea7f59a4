// Key files (issue 16 item 9): refused when others may read them or when weak, with the fix in the
// message; by the pure rule, by `netboot config check`, and at start (the service exits 1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readKeyFile } from '../../platform/trust/peer-auth.ts';
import { NETBOOT_BIN } from '../helpers/process.ts';
import { configCheck } from './helpers.ts';

function keyDir(): { dir: string; write: (name: string, text: string, mode?: number) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-keys-'));
  return {
    dir,
    write: (name, text, mode = 0o600) => {
      const path = join(dir, name);
      writeFileSync(path, text, { mode });
      chmodSync(path, mode);
      return path;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

test('readKeyFile (what every service uses at start) refuses weak and readable keys with the fix', () => {
  const k = keyDir();
  try {
    const good = k.write('good.key', randomBytes(32).toString('base64'));
    assert.equal(readKeyFile(good).length, 32);
    const open = k.write('open.key', randomBytes(32).toString('base64'), 0o644);
    assert.throws(() => readKeyFile(open), { code: 'PEER_KEY_WEAK', message: `key file ${open} is readable or writable by group or others (mode 0644); fix: chmod 600 ${open} (owned by the user netboot runs as)` });
    const zeros = k.write('zeros.key', '0'.repeat(64));
    assert.throws(() => readKeyFile(zeros), (e: Error) => e.message.includes('is the same byte (0x00) 32 times') && e.message.includes(`fix: write a new one: head -c 32 /dev/urandom | base64 > ${zeros}`));
    const phrase = k.write('phrase.key', Buffer.from('open sesame open sesame open sesame!').toString('base64'));
    assert.throws(() => readKeyFile(phrase), /has only 9 distinct byte values/);
    assert.throws(() => readKeyFile(join(k.dir, 'missing.key')), { code: 'PEER_KEY_UNREADABLE' });
  } finally {
    k.cleanup();
  }
});

test('config check reads the key files and reports every problem in the file\'s words', async () => {
  const k = keyDir();
  try {
    const site = k.write('site.key', '0'.repeat(64), 0o644);
    const peerKey = k.write('b.key', randomBytes(32).toString('hex'));
    const text = `[site]\nid = "a"\nkey_file = "${site}"\n[[peers]]\nid = "b"\naddress = "10.0.0.2"\nkey_file = "${peerKey}"\n[[peers]]\nid = "c"\naddress = "10.0.0.3"\n`;
    const r = await configCheck(text);
    assert.equal(r.code, 1);
    assert.match(r.err, /2 problem\(s\)/);
    assert.ok(r.err.includes(`[site] key_file: is readable or writable by group or others (mode 0644); fix: chmod 600 ${site}`), r.err);
    assert.ok(r.err.includes(`[site] key_file: is the same byte (0x00) 32 times; fix: write a new one`), r.err);
    assert.ok(r.err.includes(`(got ${JSON.stringify(site)})`), r.err);
    chmodSync(site, 0o600);
    writeFileSync(site, randomBytes(32).toString('base64'));
    const ok = await configCheck(text);
    assert.equal(ok.code, 0, ok.err);
  } finally {
    k.cleanup();
  }
});

test('a service with a weak key does not start: it exits non-zero with the reason', () => {
  const k = keyDir();
  try {
    const key = k.write('site.key', Buffer.alloc(32, 7).toString('base64'));
    const conf = k.write('netboot.toml', `[paths]\ndata = "${k.dir}/data"\n[interface]\nport = 0\nbind = "127.0.0.1"\n[site]\nid = "a"\nkey_file = "${key}"\n[[peers]]\nid = "b"\naddress = "127.0.0.1:9"\n`);
    const r = spawnSync(NETBOOT_BIN, ['run', 'interface', '--config', conf], { encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(r.status, 0, r.stdout + r.stderr);
    assert.notEqual(r.status, null, 'the service exited by itself');
    assert.match(r.stdout + r.stderr, /is the same byte \(0x07\) 32 times; fix: write a new one/);
  } finally {
    k.cleanup();
  }
});
