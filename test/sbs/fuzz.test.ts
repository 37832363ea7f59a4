// 100,000 random and mutated documents: parseSbs returns a document (which then survives a
// round trip) or throws an SbsError, never anything else. The JSON reader is also checked
// against JSON.parse on the same texts. FUZZ_SEED=n replays a run; the seed is in every failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SbsError } from '../../sbs/errors.ts';
import { decodeUtf8, parseJson } from '../../sbs/json.ts';
import { parseSbs } from '../../sbs/parse.ts';
import { serializeSbs } from '../../sbs/serialize.ts';
import { INVALID_DIR, VALID_DIR, sbsFiles } from './corpus.ts';
import { fuzzSeed, prng } from '../helpers/fuzz.ts';

const SEED = fuzzSeed();
const ROUNDS = 100_000;

const rand = prng(SEED);
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

const validTexts = sbsFiles(VALID_DIR).map((n) => readFileSync(join(VALID_DIR, n)));
const allTexts = [...validTexts, ...sbsFiles(INVALID_DIR).map((n) => readFileSync(join(INVALID_DIR, n)))];
const validValues = validTexts.map((b) => JSON.parse(decodeUtf8(b)) as unknown);

const TOKENS = ['{', '}', '[', ']', ',', ':', '"', '\\', 'true', 'false', 'null', '-', '0', '1', '1e9', '.5', ' ', '\n', '\uFEFF', '"x-a"', '"sbs"', '"id"', '"kind"', '"mac"', '"\\u0000"', '"\\ud800"', '\u00e9', '\u{1F600}'];
const NAMES = ['sbs', 'id', 'kind', 'issued', 'replicateTo', 'client', 'mac', 'uuid', 'name', 'action', 'type', 'image', 'once', 'imageId', 'config', 'respond', 'unknown', 'responseDelayMs', 'bootFiles', 'menu', 'prompt', 'timeoutSec', 'items', 'label', 'arch', 'kernel', 'initrd', 'cmdline', 'wim', 'bcd', 'sdi', 'bootFile', 'package', 'clients', 'images', 'computers', 'x-note', 'X-note', '__proto__', 'constructor', 'bios', 'efi-x64', ''];
const VALUES: unknown[] = [null, true, false, 0, -0, 1, -1, 1.5, 10000, 10001, 256, 2 ** 53, '', ' ', 'x', '..', '/vmlinuz', 'a\\b', 'a\u0000b', 'line\nfeed', '52:54:00:12:34:56', '52-54-00-AB-CD-EF', '77aa417a-c9d7-4154-8f79-97ef95ead2bc', '2026-11-21T10:00:00Z', '2016-12-31T23:59:60Z', '2026-02-29T00:00:00Z', 'local', 'boot', 'menu', 'wait', 'linux', 'winpe', 'nbp', 'all', 'bios', 'client', 'config', 'images', 'host:490', '[::1]:1', 'a'.repeat(300), [], {}, ['bios'], ['bios', 'bios'], { type: 'local' }, { type: 'menu' }];

function randomBytes(): Buffer {
  return Buffer.from(Array.from({ length: int(64) }, () => (rand() < 0.7 ? pick([...'{}[],:" \n01-tfnux\\e.']).charCodeAt(0) : int(256))));
}

function tokenSoup(): Buffer {
  return Buffer.from(Array.from({ length: int(30) }, () => pick(TOKENS)).join(''));
}

function byteMutation(): Buffer {
  let b = Buffer.from(pick(allTexts));
  for (let n = 1 + int(4); n > 0; n--) {
    const at = int(b.length + 1);
    switch (int(5)) {
      case 0: if (b.length > 0) b[Math.min(at, b.length - 1)] = int(256); break;
      case 1: b = Buffer.concat([b.subarray(0, at), Buffer.from(pick(TOKENS)), b.subarray(at)]); break;
      case 2: b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(16)))]); break;
      case 3: b = b.subarray(0, at); break;
      default: {
        const other = pick(allTexts);
        const from = int(other.length);
        b = Buffer.concat([b.subarray(0, at), other.subarray(from, from + int(40)), b.subarray(at)]);
      }
    }
  }
  return b;
}

/** Every object and array inside `v` (with `v` itself), to pick one to mutate. */
function containers(v: unknown, out: (Record<string, unknown> | unknown[])[] = []): (Record<string, unknown> | unknown[])[] {
  if (typeof v === 'object' && v !== null) {
    out.push(v as Record<string, unknown>);
    for (const child of Object.values(v)) containers(child, out);
  }
  return out;
}

function structuralMutation(): Buffer {
  const doc = structuredClone(pick(validValues));
  for (let n = 1 + int(3); n > 0; n--) {
    const target = pick(containers(doc));
    const value = rand() < 0.2 ? structuredClone(pick(containers(pick(validValues)))) : structuredClone(pick(VALUES));
    if (Array.isArray(target)) {
      const i = int(target.length + 1);
      if (rand() < 0.3 && target.length > 0) target.splice(Math.min(i, target.length - 1), 1);
      else if (rand() < 0.5 && target.length > 0) target.push(structuredClone(target[int(target.length)]));
      else target[Math.min(i, target.length)] = value;
    } else {
      const keys = Object.keys(target);
      if (rand() < 0.3 && keys.length > 0) delete target[pick(keys)];
      else Object.defineProperty(target, rand() < 0.6 && keys.length > 0 ? pick(keys) : pick(NAMES), { value, enumerable: true, writable: true, configurable: true });
    }
  }
  return Buffer.from(JSON.stringify(doc, null, rand() < 0.5 ? 2 : undefined));
}

const GENERATORS = [randomBytes, tokenSoup, byteMutation, byteMutation, structuralMutation, structuralMutation, structuralMutation];

test(`parseSbs on ${ROUNDS} random and mutated documents: a document or an SbsError (seed ${SEED})`, () => {
  const failures: string[] = [];
  let accepted = 0;
  const problems = new Set<string>();
  for (let round = 0; round < ROUNDS && failures.length < 5; round++) {
    const input = pick(GENERATORS)();
    const where = `seed ${SEED} round ${round} input(base64) ${input.toString('base64')}`;
    let doc;
    try {
      doc = parseSbs(input);
    } catch (err) {
      if (!(err instanceof SbsError)) failures.push(`${where}: threw ${String(err)}`);
      else if (err.code !== 'SBS_INVALID' || err.message !== `${err.field}: ${err.problem}` || err.field === '' || err.problem === '') failures.push(`${where}: malformed SbsError ${err.message}`);
      else if (err.problem.startsWith('cannot be read')) failures.push(`${where}: internal error ${err.message}`);
      else problems.add(err.problem.replace(/ at line .*/, ''));
      continue;
    }
    accepted++;
    try {
      assert.deepEqual(parseSbs(serializeSbs(doc)), doc);
    } catch (err) {
      failures.push(`${where}: accepted but no round trip: ${String(err)}`);
    }
  }
  assert.deepEqual(failures, []);
  // The generators must reach both outcomes and many distinct reasons, or this test proves little.
  assert.ok(accepted > 1000, `only ${accepted} accepted`);
  assert.ok(problems.size > 60, `only ${problems.size} distinct problems`);
  if (process.env.FUZZ_STATS === '1') console.log(`accepted ${accepted}, ${problems.size} distinct problems`);
});

test(`the JSON reader agrees with JSON.parse except where it is stricter on purpose (seed ${SEED})`, () => {
  const stricter = /^(duplicate field|not valid JSON: string is not valid Unicode|nested too deeply)/;
  for (let round = 0; round < 20_000; round++) {
    const input = pick([randomBytes, tokenSoup, byteMutation, structuralMutation])();
    let text: string;
    try {
      text = decodeUtf8(input);
    } catch {
      continue;
    }
    let reference: unknown;
    let referenceOk = true;
    try {
      reference = JSON.parse(text);
    } catch {
      referenceOk = false;
    }
    const where = `seed ${SEED} round ${round} text ${JSON.stringify(text)}`;
    try {
      const mine = parseJson(text);
      assert.ok(referenceOk, `${where}: accepted what JSON.parse refuses`);
      assert.equal(JSON.stringify(mine), JSON.stringify(reference), where);
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      assert.ok(err instanceof SbsError, `${where}: threw ${String(err)}`);
      if (referenceOk) assert.match(err.problem, stricter, where);
    }
  }
});

test('nesting is bounded at 32 levels; deep, huge and long inputs never run out of stack', () => {
  const base = { sbs: 1, id: '77aa417a-c9d7-4154-8f79-97ef95ead2bc', kind: 'client-remove', issued: '2026-11-21T10:00:00Z', mac: '52:54:00:12:34:56' };
  const nested = (levels: number) => JSON.stringify(base).replace(/}$/, `,"x-a":${'['.repeat(levels)}${']'.repeat(levels)}}`);
  assert.equal(parseSbs(nested(31)).kind, 'client-remove'); // the document itself is the 32nd level
  assert.throws(() => parseSbs(nested(32)), (e: unknown) => e instanceof SbsError && e.problem === 'nested too deeply (max 32 levels)' && e.field === `x-a${'[0]'.repeat(31)}`);
  for (const text of ['['.repeat(1_000_000), '{"a":'.repeat(1_000_000)]) {
    assert.throws(() => parseSbs(text), (e: unknown) => e instanceof SbsError && e.problem === 'nested too deeply (max 32 levels)');
  }
  assert.equal(parseSbs(JSON.stringify({ ...base, 'x-pad': 'p'.repeat(5_000_000) })).kind, 'client-remove');
});
