import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { decodeManifest, encodeManifest, manifestDigest, type Manifest } from '../../images/manifest.ts';

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
  const raw = JSON.parse(encodeManifest(base).toString());
  mutate(raw);
  return Buffer.from(JSON.stringify(raw));
}

test('canonical encoding: key and file order do not change the bytes, and the digest is the SHA-256 of them', () => {
  const shuffled: Manifest = { ...base, files: [...base.files].reverse(), dirs: [...base.dirs].reverse() };
  assert.deepEqual(encodeManifest(shuffled), encodeManifest(base));
  assert.equal(manifestDigest(base), createHash('sha256').update(encodeManifest(base)).digest('hex'));
  const text = encodeManifest(base).toString();
  assert.ok(text.indexOf('"a.img"') < text.indexOf('"boot/efi/bootx64.efi"'));
  assert.ok(!/\s/.test(text.replace(/"[^"]*"/g, '')), 'no whitespace outside strings');
});

test('decode(encode(m)) gives m back (files sorted by path)', () => {
  const back = decodeManifest(encodeManifest(base));
  assert.equal(back.package, 'win11');
  assert.deepEqual(back.files.map((f) => f.path), ['a.img', 'boot/efi/bootx64.efi', 'empty']);
  assert.deepEqual(encodeManifest(back), encodeManifest(base));
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
