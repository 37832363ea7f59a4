// Behaviour of the SBS module that callers rely on, beyond the corpus: defaults, normalisation,
// input forms, the order of `issued`, and the builders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDocument, sbsFileName } from '../../sbs/build.ts';
import { SbsError } from '../../sbs/errors.ts';
import { normalizeMac } from '../../sbs/mac.ts';
import { parseSbs } from '../../sbs/parse.ts';
import { newInstructionId, serializeSbs } from '../../sbs/serialize.ts';
import { issuedOrderKey, rfc3339Problem } from '../../sbs/time.ts';
import type { SbsDocument } from '../../sbs/types.ts';

const ID = '77aa417a-c9d7-4154-8f79-97ef95ead2bc';
const envelope = (kind: string, issued = '2026-11-21T10:00:00Z') => ({ sbs: 1, id: ID, kind, issued });

function invalid(doc: unknown): { field: string; problem: string } {
  try {
    parseSbs(typeof doc === 'string' ? doc : JSON.stringify(doc));
  } catch (err) {
    assert.ok(err instanceof SbsError);
    return { field: err.field, problem: err.problem };
  }
  assert.fail('accepted');
}

test('defaults are filled in: unknown is local, responseDelayMs 0, once true', () => {
  const doc = parseSbs(JSON.stringify({ ...envelope('config'), config: { respond: 'all', bootFiles: {} } }));
  assert.equal(doc.kind, 'config');
  if (doc.kind !== 'config') return;
  assert.deepEqual(doc.config.unknown, { type: 'local' });
  assert.equal(doc.config.responseDelayMs, 0);
  assert.equal('menu' in doc.config, false);
  const client = parseSbs(JSON.stringify({ ...envelope('client'), client: { mac: '52:54:00:12:34:56', action: { type: 'boot', image: 'x' } } }));
  assert.deepEqual(client.kind === 'client' && client.client.action, { type: 'boot', image: 'x', once: true });
});

test('MACs in every accepted form normalise to lower case with colons', () => {
  for (const mac of ['52:54:00:AB:cd:0F', '52-54-00-ab-CD-0f', '52-54-00-AB-CD-0F']) {
    assert.equal(normalizeMac(mac), '52:54:00:ab:cd:0f', mac);
    const doc = parseSbs(JSON.stringify({ ...envelope('client-remove'), mac }));
    assert.equal(doc.kind === 'client-remove' && doc.mac, '52:54:00:ab:cd:0f');
  }
  for (const mac of ['52:54:00:ab:cd', '525400abcd0f', '52:54-00:ab:cd:0f', '52:54:00:ab:cd:0g', '', '52:54:00:ab:cd:0f\n']) {
    assert.equal(normalizeMac(mac), null, JSON.stringify(mac));
  }
});

test('the instruction id and UUIDs are compared case-insensitively: they come out lower case', () => {
  const doc = parseSbs(JSON.stringify({ ...envelope('predefined-computer'), id: ID.toUpperCase(), computer: { mac: '52:54:00:12:34:56', uuid: 'ABCDEF01-2345-6789-ABCD-EF0123456789', name: 'n' } }));
  assert.equal(doc.id, ID);
  assert.equal(doc.kind === 'predefined-computer' && doc.computer.uuid, 'abcdef01-2345-6789-abcd-ef0123456789');
});

test('input may be a Buffer or a string, each with or without a BOM; anything else is an SbsError', () => {
  const text = JSON.stringify({ ...envelope('client-remove'), mac: '52:54:00:12:34:56' });
  const expected = parseSbs(text);
  assert.deepEqual(parseSbs(`\uFEFF${text}`), expected);
  assert.deepEqual(parseSbs(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])), expected);
  assert.deepEqual(parseSbs(new Uint8Array(Buffer.from(text)) as Buffer), expected);
  for (const bad of [undefined, null, 42, {}, [text]]) {
    assert.throws(() => parseSbs(bad as unknown as string), (e: unknown) => e instanceof SbsError && e.problem === 'must be a Buffer or a string');
  }
});

test('x- members are ignored everywhere and do not appear in the result', () => {
  const doc = parseSbs(JSON.stringify({ ...envelope('client'), 'x-a': 1, client: { 'x-b': [], mac: '52:54:00:12:34:56', action: { type: 'local', 'x-c': {} } } }));
  assert.deepEqual(doc, { ...envelope('client'), client: { mac: '52:54:00:12:34:56', action: { type: 'local' } } });
});

test('a member named __proto__ is an unknown field, and does not change any prototype', () => {
  const text = `{"sbs":1,"id":"${ID}","kind":"client-remove","issued":"2026-11-21T10:00:00Z","mac":"52:54:00:12:34:56","__proto__":{"polluted":true}}`;
  assert.deepEqual(invalid(text), { field: '__proto__', problem: 'unknown field' });
  assert.deepEqual(invalid(text.replace('"__proto__"', '"client":{"__proto__":{"polluted":true}},"x"')), { field: 'client', problem: 'not allowed for kind client-remove' });
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('issuedOrderKey orders instants across offsets, fractions and leap seconds', () => {
  const ordered = [
    '2016-12-31T23:59:59Z',
    '2017-01-01T00:59:59.5+01:00',
    '2016-12-31T23:59:60Z',
    '2017-01-01T00:59:60.5+01:00',
    '2017-01-01T00:00:00Z',
    '2016-12-31T19:00:00.000000001-05:00',
    '2017-01-01T00:00:00.1Z',
  ];
  const keys = ordered.map(issuedOrderKey);
  assert.deepEqual([...keys].sort(), keys);
  assert.equal(issuedOrderKey('2026-11-21T12:00:00+02:00'), issuedOrderKey('2026-11-21t10:00:00z'));
  assert.equal(issuedOrderKey('0000-01-01T00:00:00+23:59') < issuedOrderKey('9999-12-31T23:59:59-23:59'), true);
  assert.equal(rfc3339Problem('2026-11-21T10:00:00Z'), null);
});

test('serializeSbs prints pretty JSON with a newline, and refuses a hand-built invalid document', () => {
  const doc = parseSbs(JSON.stringify({ ...envelope('image-remove'), imageId: 'linuxpe-x64' }));
  const text = serializeSbs(doc);
  assert.equal(text, `{\n  "sbs": 1,\n  "id": "${ID}",\n  "kind": "image-remove",\n  "issued": "2026-11-21T10:00:00Z",\n  "imageId": "linuxpe-x64"\n}\n`);
  const bad = { ...doc, imageId: '../etc' } as SbsDocument;
  assert.throws(() => serializeSbs(bad), (e: unknown) => e instanceof SbsError && e.field === 'imageId');
});

test('newInstructionId gives distinct version 4 GUIDs that parse as ids', () => {
  const ids = new Set(Array.from({ length: 1000 }, newInstructionId));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test('buildDocument validates and normalises; sbsFileName is the compact UTC issued, kind and id', () => {
  const doc = buildDocument('client', { client: { mac: '52-54-00-12-34-56', action: { type: 'wait' } } }, { id: ID, issued: '2026-11-21T12:00:00.5+02:00', replicateTo: ['Site-B:490'] });
  assert.deepEqual(doc, { ...envelope('client', '2026-11-21T12:00:00.5+02:00'), replicateTo: ['site-b:490'], client: { mac: '52:54:00:12:34:56', action: { type: 'wait' } } });
  assert.equal(sbsFileName(doc), '20261121T100000.500Z-client-77aa417a.sbs');
  const fresh = buildDocument('client-remove', { mac: '52:54:00:12:34:56' });
  assert.equal(rfc3339Problem(fresh.issued), null);
  assert.notEqual(fresh.id, buildDocument('client-remove', { mac: '52:54:00:12:34:56' }).id);
  assert.throws(() => buildDocument('client', { client: { mac: 'nope', action: { type: 'wait' } } }), (e: unknown) => e instanceof SbsError && e.field === 'client.mac');
});
