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
import { keyTextProblem, modeProblem } from '../../platform/trust/key-check.ts';
import { NETBOOT_BIN } from '../helpers/process.ts';
import { configCheck } from './helpers.ts';

const counting = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const ascii = Buffer.from('correct horse battery staple, twice over!');

test('the rule: what a key looks like (table)', () => {
  const table: [string, string, string | null][] = [
    ['openssl rand -hex 32', randomBytes(32).toString('hex'), null],
    ['head -c 32 /dev/urandom | base64', `${randomBytes(32).toString('base64')}\n`, null],
    ['64 random bytes, base64 wrapped at 76', randomBytes(64).toString('base64').replace(/(.{76})/, '$1\n'), null],
    ['base64url', randomBytes(48).toString('base64url'), null],
    ['64 hex zeros', '0'.repeat(64), 'is the same byte (0x00) 32 times'],
    ['all 0xff in base64', Buffer.alloc(32, 0xff).toString('base64'), 'is the same byte (0xff) 32 times'],
    ['16 random bytes', randomBytes(16).toString('hex'), 'holds 16 bytes of key, needs at least 32'],
    ['counting', counting.toString('hex'), 'is a counting sequence, not random bytes'],
    ['a repeated block', Buffer.concat([counting.subarray(3, 11), counting.subarray(3, 11), counting.subarray(3, 11), counting.subarray(3, 11)]).toString('hex'), 'is a 8-byte pattern repeated, not random bytes'],
    ['few distinct bytes (the first 40 digits of pi as bytes)', Buffer.from([...'3141592653589793238462643383279502884197'].map(Number)).toString('hex'), 'has only 10 distinct byte values (at least 16; random bytes have about 30 in 32)'],
    ['a phrase in base64', ascii.toString('base64'), 'decodes to printable text (a phrase in base64 or hex), not random bytes'],
    ['a phrase in hex', ascii.toString('hex'), 'decodes to printable text (a phrase in base64 or hex), not random bytes'],
    ['a passphrase', 'correct horse battery staple and more words to make it long', 'is not hex or base64 text (a passphrase is not a key)'],
    ['one word', 'supercalifragilisticexpialidocioussupercalifragilistic', 'is not base64 of random bytes (it lacks upper- or lower-case letters: a word or phrase?)'],
    ['empty', '\n', 'is not hex or base64 text (a passphrase is not a key)'],
  ];
  for (const [what, text, want] of table) {
    assert.equal(keyTextProblem(text), want, what);
  }
});

test('the rule: who may read it', () => {
  assert.equal(modeProblem(0o100600), null);
  assert.equal(modeProblem(0o100400), null);
  assert.equal(modeProblem(0o100640), 'is readable or writable by group or others (mode 0640)');
  assert.equal(modeProblem(0o100604), 'is readable or writable by group or others (mode 0604)');
  assert.equal(modeProblem(0o100620), 'is readable or writable by group or others (mode 0620)');
});

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
