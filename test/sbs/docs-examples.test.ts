// The administrators' page (docs/sbs.md) shows one example file per kind: each must be valid, of
// the kind it is named after, and every kind netboot accepts must have one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseSbs } from '../../sbs/parse.ts';
import { KINDS } from '../../sbs/types.ts';

const DIR = join(import.meta.dirname, '../../docs/sbs-examples');
const PAGE = readFileSync(join(import.meta.dirname, '../../docs/sbs.md'), 'utf8');

test('every example in docs/sbs-examples is valid and of the kind in its name', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.sbs'));
  for (const file of files) {
    const doc = parseSbs(readFileSync(join(DIR, file)));
    // `<kind>.sbs`, or `<kind>.<variant>.sbs` for a second example of a kind.
    assert.equal(doc.kind, file.split('.')[0], file);
  }
  assert.deepEqual(files.filter((f) => f.split('.').length === 2).map((f) => f.replace(/\.sbs$/, '')).sort(), [...KINDS].sort());
});

test('the JSON blocks on the page are the example files, unchanged', () => {
  const blocks = [...PAGE.matchAll(/```json\n([\s\S]*?)\n```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 5);
  for (const block of blocks) {
    const doc = parseSbs(block);
    const same = readdirSync(DIR).filter((f) => f.split('.')[0] === doc.kind).map((f) => readFileSync(join(DIR, f), 'utf8').trimEnd());
    assert.ok(same.includes(block), `a ${doc.kind} block on the page is none of the example files of that kind`);
  }
});
