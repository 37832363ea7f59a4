// `netboot sbs validate` and `netboot sbs send`, run as real child processes of bin/netboot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseSbs } from '../../sbs/parse.ts';
import { makeTestSite, type TestSite } from '../helpers/env.ts';
import { INVALID_DIR, VALID_DIR, invalidExpectations, sbsFiles } from './corpus.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'netboot');

function netboot(args: readonly string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(BIN, args, { cwd: ROOT, encoding: 'utf8', timeout: 30_000, env: { ...process.env, NETBOOT_CONFIG: '', ...env } });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('sbs validate agrees with the corpus: one line per file, exit 1 when any is invalid', () => {
  const valid = sbsFiles(VALID_DIR).map((n) => relative(ROOT, join(VALID_DIR, n)));
  const invalid = sbsFiles(INVALID_DIR).map((n) => relative(ROOT, join(INVALID_DIR, n)));
  const expected = invalidExpectations();
  const r = netboot(['sbs', 'validate', ...valid, ...invalid]);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, valid.length + invalid.length);
  valid.forEach((file, i) => {
    const doc = JSON.parse(readFileSync(join(ROOT, file.replace(/\.sbs$/, '.parsed.json')), 'utf8')) as { kind: string; id: string };
    assert.equal(lines[i], `${file}: valid (${doc.kind}, ${doc.id})`);
  });
  invalid.forEach((file, i) => {
    const want = expected[file.split('/').pop()!]!;
    assert.equal(lines[valid.length + i], `${file}: invalid: ${want.field}: ${want.problem}`);
  });
});

test('sbs validate exits 0 when all are valid, 1 for an unreadable file, 2 on a usage error', () => {
  const file = relative(ROOT, join(VALID_DIR, 'spec-example-client.sbs'));
  assert.deepEqual(netboot(['sbs', 'validate', file]), { code: 0, stdout: `${file}: valid (client, 77aa417a-c9d7-4154-8f79-97ef95ead2bc)\n`, stderr: '' });
  const missing = netboot(['sbs', 'validate', file, 'no/such/file.sbs']);
  assert.equal(missing.code, 1);
  assert.match(missing.stdout, /^no\/such\/file\.sbs: unreadable: ENOENT/m);
  assert.equal(netboot(['sbs', 'validate']).code, 2);
  assert.equal(netboot(['sbs', 'validate', '--strict', file]).code, 2);
  assert.equal(netboot(['sbs']).code, 2);
  assert.equal(netboot(['sbs', 'check', file]).code, 2);
});

function sbsFolderFiles(site: TestSite): string[] {
  const dir = site.config.paths.sbs;
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** Runs a send, checks its output line and the file it wrote, and returns the parsed document. */
function send(site: TestSite, args: readonly string[]) {
  const before = sbsFolderFiles(site);
  const r = netboot(['sbs', 'send', ...args, '--config', site.configPath]);
  assert.equal(r.code, 0, r.stderr);
  const added = sbsFolderFiles(site).filter((n) => !before.includes(n));
  assert.equal(added.length, 1, `wrote ${added.join(', ')}`);
  const path = join(site.config.paths.sbs, added[0]!);
  const doc = parseSbs(readFileSync(path));
  assert.equal(r.stdout, `${path}: written (${doc.kind}, ${doc.id})\n`);
  assert.match(added[0]!, new RegExp(`^\\d{8}T\\d{6}\\.\\d{3}Z-${doc.kind}-${doc.id.slice(0, 8)}\\.sbs$`));
  return doc;
}

test('sbs send writes valid instructions of every kind into the configured SBS folder', async () => {
  const site = await makeTestSite('', 'netboot-sbs-send');
  try {
    const started = Date.now();
    const boot = send(site, ['client', '--mac', '52-54-00-AB-CD-EF', '--boot', 'linuxpe-x64', '--name', 'LAB-PC-01', '--replicate-to', 'site-b.example.net,10.0.0.8:490']);
    assert.deepEqual(boot.kind === 'client' && boot, { ...envelopeOf(boot), kind: 'client', replicateTo: ['site-b.example.net', '10.0.0.8:490'], client: { mac: '52:54:00:ab:cd:ef', name: 'LAB-PC-01', action: { type: 'boot', image: 'linuxpe-x64', once: true } } });
    assert.ok(Math.abs(Date.parse(boot.issued) - started) < 60_000, `issued defaults to now: ${boot.issued}`);

    const pinned = send(site, ['client', '--mac', '52:54:00:12:34:56', '--boot', 'memtest', '--no-once', '--uuid', '4C4C4544-0042-3510-8051-B4C04F4D3232', '--issued', '2026-11-21T12:00:00+02:00', '--instruction-id', '77aa417a-c9d7-4154-8f79-97ef95ead2bc']);
    assert.deepEqual(pinned, { sbs: 1, id: '77aa417a-c9d7-4154-8f79-97ef95ead2bc', kind: 'client', issued: '2026-11-21T12:00:00+02:00', client: { mac: '52:54:00:12:34:56', uuid: '4c4c4544-0042-3510-8051-b4c04f4d3232', action: { type: 'boot', image: 'memtest', once: false } } });
    assert.ok(existsSync(join(site.config.paths.sbs, '20261121T100000.000Z-client-77aa417a.sbs')));

    for (const type of ['local', 'menu', 'wait']) {
      const d = send(site, ['client', '--mac', '52:54:00:00:00:01', `--${type}`]);
      assert.deepEqual(d.kind === 'client' && d.client.action, { type });
    }
    const removed = send(site, ['client-remove', '--mac', '52:54:00:00:00:01', '--replicate-to', 'peer:490']);
    assert.deepEqual(removed.kind === 'client-remove' && [removed.mac, removed.replicateTo], ['52:54:00:00:00:01', ['peer:490']]);

    const image = send(site, ['image', '--id', 'linuxpe-x64', '--name', 'Linux automation (x64)', '--arch', 'bios,efi-x64', '--type', 'linux', '--kernel', 'vmlinuz', '--initrd', 'initrd.img,extra.img', '--cmdline=console=ttyS0 quiet', '--package', 'linuxpe-x64']);
    assert.deepEqual(image.kind === 'image' && image.image, { id: 'linuxpe-x64', name: 'Linux automation (x64)', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img', 'extra.img'], cmdline: 'console=ttyS0 quiet', package: 'linuxpe-x64' });
    const nbp = send(site, ['image', '--id', 'memtest', '--name', 'Memory test', '--arch', 'bios', '--type', 'nbp', '--boot-file', 'memtest.0']);
    assert.deepEqual(nbp.kind === 'image' && nbp.image, { id: 'memtest', name: 'Memory test', arch: ['bios'], type: 'nbp', bootFile: 'memtest.0' });

    const imageFile = join(site.dir, 'image.json');
    writeFileSync(imageFile, JSON.stringify({ id: 'pe', name: 'PE', arch: ['efi-x64'], type: 'winpe', wim: 'boot.wim', 'x-size': 1 }));
    const fromFile = send(site, ['image', '--file', imageFile]);
    assert.deepEqual(fromFile.kind === 'image' && fromFile.image, { id: 'pe', name: 'PE', arch: ['efi-x64'], type: 'winpe', wim: 'boot.wim' });

    const clientFile = join(site.dir, 'client.json');
    writeFileSync(clientFile, JSON.stringify({ mac: '52:54:00:00:00:07', action: { type: 'menu' } }));
    const clientFromFile = send(site, ['client', '--file', clientFile, '--replicate-to', 'peer-b']);
    assert.deepEqual(clientFromFile.kind === 'client' && [clientFromFile.client, clientFromFile.replicateTo], [{ mac: '52:54:00:00:00:07', action: { type: 'menu' } }, ['peer-b']]);

    const imageRemove = send(site, ['image-remove', '--id', 'pe']);
    assert.equal(imageRemove.kind === 'image-remove' && imageRemove.imageId, 'pe');
    const pc = send(site, ['predefined-computer', '--mac', '52:54:00:AA:BB:01', '--name', 'NEW-PC-07']);
    assert.deepEqual(pc.kind === 'predefined-computer' && pc.computer, { mac: '52:54:00:aa:bb:01', name: 'NEW-PC-07' });
    const pcRemove = send(site, ['predefined-computer-remove', '--mac', '52:54:00:AA:BB:01']);
    assert.equal(pcRemove.kind === 'predefined-computer-remove' && pcRemove.mac, '52:54:00:aa:bb:01');

    const configFile = join(site.dir, 'config.json');
    writeFileSync(configFile, JSON.stringify({ respond: 'known', bootFiles: { bios: 'undionly.kpxe' } }));
    const config = send(site, ['config', '--file', configFile]);
    assert.deepEqual(config.kind === 'config' && config.config, { respond: 'known', unknown: { type: 'local' }, responseDelayMs: 0, bootFiles: { bios: 'undionly.kpxe' } });

    const full = send(site, ['--file', join(VALID_DIR, 'spec-example-image.sbs')]);
    assert.deepEqual(full, parseSbs(readFileSync(join(VALID_DIR, 'spec-example-image.sbs'))));

    // NETBOOT_CONFIG works as well as --config.
    const viaEnv = netboot(['sbs', 'send', 'client-remove', '--mac', '52:54:00:00:00:09'], { NETBOOT_CONFIG: site.configPath });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.ok(viaEnv.stdout.startsWith(site.config.paths.sbs));
    // Only finished .sbs files are left behind: no temporary files.
    assert.ok(sbsFolderFiles(site).every((n) => /^\d{8}T.*\.sbs$/.test(n)), sbsFolderFiles(site).join(', '));
  } finally {
    site.cleanup();
  }
});

function envelopeOf(doc: { sbs: 1; id: string; kind: string; issued: string }) {
  return { sbs: doc.sbs, id: doc.id, kind: doc.kind, issued: doc.issued };
}

test('sbs send never writes an invalid instruction: exit 1 with the reason, or 2 on a usage error', async () => {
  const site = await makeTestSite('', 'netboot-sbs-send-bad');
  try {
    const cfg = ['--config', site.configPath];
    const invalid = [
      { args: ['client', '--mac', '52:54:00:12:34', '--local'], reason: 'client.mac: must be a MAC address: six hex pairs separated by : or -' },
      { args: ['client', '--mac', '52:54:00:12:34:56', '--boot', '../etc'], reason: 'client.action.image: must match [A-Za-z0-9._-]{1,64}' },
      { args: ['client-remove', '--mac', '52:54:00:12:34:56', '--issued', '2026-02-30T10:00:00Z'], reason: 'issued: no such date' },
      { args: ['client-remove', '--mac', '52:54:00:12:34:56', '--instruction-id', 'not-a-guid'], reason: 'id: must be a GUID (8-4-4-4-12 hex digits)' },
      { args: ['image', '--id', 'x', '--name', 'X', '--arch', 'bios', '--type', 'linux'], reason: 'image.kernel: required for type linux' },
      { args: ['image', '--id', 'x', '--name', 'X', '--arch', 'bios', '--type', 'nbp', '--boot-file', '/abs.0'], reason: 'image.bootFile: must be relative (no leading /)' },
      { args: ['--file', join(INVALID_DIR, 'config-menu-item-action-menu.sbs')], reason: 'config.menu.items[2].action.type: a menu item cannot open the menu' },
    ];
    for (const { args, reason } of invalid) {
      const r = netboot(['sbs', 'send', ...args, ...cfg]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, `netboot sbs send: invalid instruction, nothing written: ${reason}\n`);
    }
    const badJson = join(site.dir, 'bad.json');
    writeFileSync(badJson, '{"respond": "all",}');
    const r = netboot(['sbs', 'send', 'config', '--file', badJson, ...cfg]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.json \(document\): not valid JSON: expected a member name at line 1 column 19/);

    const usage = [
      ['client', '--mac', '52:54:00:12:34:56'],
      ['client', '--mac', '52:54:00:12:34:56', '--local', '--wait'],
      ['client', '--mac', '52:54:00:12:34:56', '--local', '--once'],
      ['client', '--mac', '52:54:00:12:34:56', '--boot'],
      ['client', '--local'],
      ['client-remove', '--mac', '52:54:00:12:34:56', '--name', 'x'],
      ['image', '--file', 'image.json', '--name', 'x'],
      ['image-remove'],
      ['config'],
      ['reboot', '--mac', '52:54:00:12:34:56'],
      [],
    ];
    for (const args of usage) {
      const u = netboot(['sbs', 'send', ...args, ...cfg]);
      assert.equal(u.code, 2, `${args.join(' ')}: ${u.stderr}`);
      assert.match(u.stderr, /^netboot sbs( send)?: .*\nusage:/);
    }
    assert.deepEqual(sbsFolderFiles(site), []);
  } finally {
    site.cleanup();
  }
});
