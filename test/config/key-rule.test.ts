// The pure rule of platform/trust/key-check.ts: what a key file's text and mode must be.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { keyTextProblem, modeProblem } from '../../platform/trust/key-check.ts';

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
