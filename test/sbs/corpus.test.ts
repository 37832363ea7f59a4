// Every rule of the SBS v1 spec, as files: valid documents parse to their pinned result and
// survive a round trip; invalid documents fail with exactly their pinned field and problem.
// UPDATE_TESTDATA=1 rewrites the `.parsed.json` files (review the diff before committing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SbsError } from '../../sbs/errors.ts';
import { parseSbs } from '../../sbs/parse.ts';
import { serializeSbs } from '../../sbs/serialize.ts';
import { INVALID_DIR, VALID_DIR, invalidExpectations, sbsFiles } from './corpus.ts';

const update = process.env.UPDATE_TESTDATA === '1';

test('every valid corpus document parses to its pinned result', () => {
  const files = sbsFiles(VALID_DIR);
  assert.ok(files.length >= 40, `only ${files.length} valid documents`);
  for (const name of files) {
    const doc = parseSbs(readFileSync(join(VALID_DIR, name)));
    const goldenPath = join(VALID_DIR, name.replace(/\.sbs$/, '.parsed.json'));
    if (update) writeFileSync(goldenPath, `${JSON.stringify(doc, null, 2)}\n`);
    assert.ok(existsSync(goldenPath), `${name}: no ${goldenPath} (run with UPDATE_TESTDATA=1)`);
    assert.deepEqual(doc, JSON.parse(readFileSync(goldenPath, 'utf8')), name);
  }
});

test('valid documents survive serialize → parse unchanged, and serializing is stable', () => {
  for (const name of sbsFiles(VALID_DIR)) {
    const doc = parseSbs(readFileSync(join(VALID_DIR, name)));
    const text = serializeSbs(doc);
    assert.ok(text.endsWith('}\n'), name);
    assert.deepEqual(parseSbs(text), doc, name);
    assert.equal(serializeSbs(parseSbs(text)), text, name);
    assert.deepEqual(parseSbs(Buffer.from(text)), doc, `${name} as a Buffer`);
  }
});

test('every invalid corpus document is rejected with its pinned field and problem', () => {
  const expected = invalidExpectations();
  const files = sbsFiles(INVALID_DIR);
  assert.deepEqual(Object.keys(expected).sort(), files, 'expected.json and the invalid files must list the same documents');
  for (const name of files) {
    const want = expected[name]!;
    assert.throws(
      () => parseSbs(readFileSync(join(INVALID_DIR, name))),
      (err: unknown) => {
        assert.ok(err instanceof SbsError, `${name}: threw ${String(err)}`);
        assert.deepEqual({ field: err.field, problem: err.problem }, want, name);
        assert.equal(err.code, 'SBS_INVALID');
        assert.equal(err.message, `${want.field}: ${want.problem}`);
        return true;
      },
      name,
    );
  }
});
