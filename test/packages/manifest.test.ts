import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { decodeManifest, decodeManifestTop, encodeManifest, manifestDigest, splitParts, type ChunkRef, type Manifest } from '../../packages/manifest.ts';

const D1 = 'a'.repeat(64);
const D2 = 'b'.repeat(64);
const base: Manifest = {
  format: 1, hash: 'sha256', package: 'win11', kind: 'image', owner: 'site-a', createdAt: '2026-01-02T03:04:05.000Z',
  dirs: [{ path: 'boot', mode: 0o755 }, { path: 'boot/efi', mode: 0o700 }],
  files: [
    { path: 'boot/efi/bootx64.efi', size: 3, mode: 0o644, chunks: [{ digest: D1, size: 3 }] },
    { path: 'a.img', size: 100, mode: 0o600, chunks: [{ digest: D1, size: 60 }, { digest: D2, size: 40 }] },
    { path: 'empty', size: 0, mode: 0o644, chunks: [] },
  ],
};

function withRaw(mutate: (raw: Record<string, any>) => void): Buffer {
  const raw = JSON.parse(encodeManifest(base).body.toString());
  mutate(raw);
  return Buffer.from(JSON.stringify(raw));
}

test('canonical encoding: key and file order do not change the bytes, and the digest is the SHA-256 of them', () => {
  const shuffled: Manifest = { ...base, files: [...base.files].reverse(), dirs: [...base.dirs].reverse() };
  assert.deepEqual(encodeManifest(shuffled).body, encodeManifest(base).body);
  assert.equal(manifestDigest(base), createHash('sha256').update(encodeManifest(base).body).digest('hex'));
  const text = encodeManifest(base).body.toString();
  assert.ok(text.indexOf('"a.img"') < text.indexOf('"boot/efi/bootx64.efi"'));
  assert.ok(!/\s/.test(text.replace(/"[^"]*"/g, '')), 'no whitespace outside strings');
});

test('decode(encode(m)) gives m back (files sorted by path)', () => {
  const back = decodeManifest(encodeManifest(base).body);
  assert.equal(back.package, 'win11');
  assert.deepEqual(back.files.map((f) => f.path), ['a.img', 'boot/efi/bootx64.efi', 'empty']);
  assert.deepEqual(encodeManifest(back).body, encodeManifest(base).body);
});

test('a manifest from the network is refused when it could write outside its folder or lies about sizes', () => {
  const cases: Array<[string, (raw: Record<string, any>) => void, RegExp]> = [
    ['dot-dot path', (r) => (r.files[0].path = '../etc/passwd'), /files\[0\]: bad path/],
    ['absolute path', (r) => (r.files[0].path = '/etc/passwd'), /files\[0\]: bad path/],
    ['dot segment', (r) => (r.files[0].path = 'boot/./x'), /files\[1\]: bad path|files\[0\]: bad path/],
    ['unlisted parent', (r) => (r.files[0].path = 'nowhere/x'), /nowhere\/x: parent directory not listed/],
    ['sizes', (r) => (r.files[0].size = 99), /chunk sizes add up to 100, not 99/],
    ['digest', (r) => (r.files[0].chunks[0].digest = 'xyz'), /bad digest/],
    ['hash name', (r) => (r.hash = 'md5'), /unsupported hash "md5"/],
    ['kind', (r) => (r.kind = 'movie'), /kind: must be image, driver or preboot/],
    ['duplicate', (r) => r.files.push({ ...r.files[0] }), /duplicate path a.img/],
    ['mode', (r) => (r.files[0].mode = 0o4755), /files\[0\]\.mode: not an integer in range/],
  ];
  for (const [what, mutate, message] of cases) {
    assert.throws(() => decodeManifest(withRaw(mutate)), (err: Error & { code?: string }) => err.code === 'MANIFEST_MALFORMED' && message.test(err.message), what);
  }
  assert.throws(() => decodeManifest(Buffer.from('{nope')), /manifest: not JSON/);
});

const digestOf = (i: number): string => createHash('sha256').update(`chunk ${i}`).digest('hex');

test('a long chunk list travels as content-defined parts; changing one chunk changes one or two parts', () => {
  const chunks: ChunkRef[] = Array.from({ length: 15_000 }, (_, i) => ({ digest: digestOf(i), size: 65536 }));
  const m: Manifest = { ...base, dirs: [], files: [{ path: 'disk.img', size: 15_000 * 65536, mode: 0o644, chunks }] };
  const enc = encodeManifest(m);
  assert.ok(enc.body.length < 8000, `the manifest itself is small (${enc.body.length} bytes)`);
  assert.ok(enc.parts.size > 20 && enc.parts.size < 150, `${enc.parts.size} parts`);
  assert.deepEqual(decodeManifest(enc.body, (d) => enc.parts.get(d) ?? null), m);
  assert.throws(() => decodeManifest(enc.body), /part [0-9a-f]{64} not held/);
  const forged = new Map(enc.parts);
  const first = [...forged.keys()][0]!;
  forged.set(first, Buffer.from(forged.get(first)!.toString().replace(/ 65536\n/, ' 65535\n')));
  assert.throws(() => decodeManifest(enc.body, (d) => forged.get(d) ?? null), /does not match its digest/);
  // One chunk changed in the middle: the parts before and after it are the same blobs.
  const edited = chunks.map((c, i) => (i === 7000 ? { digest: digestOf(-1), size: 65536 } : c));
  const enc2 = encodeManifest({ ...m, files: [{ ...m.files[0]!, chunks: edited }] });
  const changed = [...enc2.parts.keys()].filter((d) => !enc.parts.has(d));
  assert.ok(changed.length >= 1 && changed.length <= 2, `${changed.length} parts changed`);
  // An insertion shifts no part boundaries except around it (content-defined, not every N entries).
  const inserted = [...chunks.slice(0, 100), { digest: digestOf(-2), size: 100 }, ...chunks.slice(100)];
  const enc3 = encodeManifest({ ...m, files: [{ ...m.files[0]!, size: m.files[0]!.size + 100, chunks: inserted }] });
  assert.ok([...enc3.parts.keys()].filter((d) => !enc.parts.has(d)).length <= 2);
  assert.equal(splitParts(chunks).flat().length, chunks.length);
  assert.ok(decodeManifestTop(enc.body).files[0]!.parts!.every((p) => p.chunks <= 1024));
});
