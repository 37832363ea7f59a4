// `netboot sbs send config --file PAYLOAD.json` with an initialDeployment (a real child process of
// bin/netboot), and what `sbs send` warns about in it: images and packages the site lacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { namesMissing, type SiteHoldings } from '../../cli/sbs-checks.ts';
import { parseSbs } from '../../sbs/parse.ts';
import { makeTestSite } from '../helpers/env.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const EXAMPLE = join(ROOT, 'docs', 'sbs-examples', 'config.initial-deployment.sbs');

test('sbs send config --file writes a config with initialDeployment; a bad one is refused with the field named', async () => {
  const site = await makeTestSite();
  try {
    const payload = join(site.dir, 'config.json');
    writeFileSync(payload, JSON.stringify((JSON.parse(readFileSync(EXAMPLE, 'utf8')) as { config: unknown }).config));
    const run = (args: string[]) => spawnSync(join(ROOT, 'bin', 'netboot'), ['sbs', 'send', 'config', '--file', payload, '--config', site.configPath, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000, env: { ...process.env, NETBOOT_CONFIG: '' } });
    const ok = run([]);
    assert.equal(ok.status, 0, ok.stderr);
    const files = readdirSync(site.config.paths.sbs);
    assert.equal(files.length, 1);
    const doc = parseSbs(readFileSync(join(site.config.paths.sbs, files[0]!)));
    assert.ok(doc.kind === 'config');
    assert.equal(doc.config.initialDeployment?.items[1]?.label, 'Erase and hand back');
    assert.equal(doc.config.initialDeployment?.default, 0);

    const bad = JSON.parse(readFileSync(payload, 'utf8')) as { initialDeployment: { items: Array<{ job: Record<string, unknown> }> } };
    bad.initialDeployment.items[0]!.job.mac = '52:54:00:12:34:56';
    writeFileSync(payload, JSON.stringify(bad));
    const refused = run([]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /config\.initialDeployment\.items\[0\]\.job\.mac: not allowed in a job template/);
    assert.equal(readdirSync(site.config.paths.sbs).length, 1, 'nothing more written');
  } finally {
    site.cleanup();
  }
});

test('sbs send warns when initialDeployment names an image or package the site does not have', () => {
  const doc = parseSbs(readFileSync(EXAMPLE));
  const site: SiteHoldings = { images: new Set(['memtest']), packages: new Set(['other']), config: null, unchecked: [] };
  assert.deepEqual(namesMissing(doc, site, { peers: [], interface: { port: 490 } } as never).problems, [
    'initialDeployment.preboot names image linuxpe-x64, which the site does not have (it has memtest)',
    'initialDeployment item 1 "Windows 11 lab image"\'s preboot names image linuxpe-x64, which the site does not have (it has memtest)',
    'initialDeployment item 1 "Windows 11 lab image" deploys package win11-gold, which the site does not have (it has other)',
    'initialDeployment item 2 "Erase and hand back"\'s preboot names image linuxpe-x64, which the site does not have (it has memtest)',
  ]);
  const complete: SiteHoldings = { images: new Set(['linuxpe-x64']), packages: new Set(['win11-gold']), config: null, unchecked: [] };
  assert.deepEqual(namesMissing(doc, complete, { peers: [], interface: { port: 490 } } as never).problems, []);
});
