// `netboot package rm` names the images that still use the package and the clients that boot
// them, and refuses unless --force. Against a real Interface service in this process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from '../../cli/args.ts';
import { packageCommand } from '../../cli/package-command.ts';
import { sbsCommand } from '../../cli/sbs-command.ts';
import type { Command } from '../../cli/context.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { waitFor } from '../helpers/env.ts';
import { makeSites, type Site } from '../packages/sites.ts';

async function run(command: Command, site: Site, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const args = parseArgs([...argv, '--config', site.configPath], ['json', 'ipxe', 'help', 'watch', 'strict', 'force']);
  const code = await command({ args, out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('package rm names the images using the package and the clients booting them; refuses without --force', async () => {
  const env = await makeSites(['a'], { extra: '[packages]\nscrub_interval_ms = 0\n' });
  const [A] = env.sites as [Site];
  const iface = buildInterface(A.config, createMemoryLogger('info'));
  await iface.start();
  try {
    const src = join(A.dir, 'win11');
    mkdirSync(join(src, 'sources'), { recursive: true });
    writeFileSync(join(src, 'sources/boot.wim'), 'wim');
    assert.equal((await run(packageCommand, A, 'publish', src, '--id', 'win11', '--kind', 'image')).code, 0);
    assert.equal((await run(packageCommand, A, 'publish', src, '--id', 'spare', '--kind', 'image')).code, 0);
    assert.equal((await run(sbsCommand, A, 'send', 'image', '--id', 'winpe', '--name', 'Windows PE', '--arch', 'efi-x64', '--type', 'winpe', '--wim', 'sources/boot.wim', '--package', 'win11')).code, 0);
    assert.equal((await run(sbsCommand, A, 'send', 'client', '--mac', '52:54:00:12:34:56', '--name', 'LAB-PC-01', '--boot', 'winpe')).code, 0);
    await waitFor('image and client applied', () => (iface.state.state().clients?.length === 1 && iface.state.state().images?.length === 1 ? true : undefined));

    const refused = await run(packageCommand, A, 'rm', 'win11');
    assert.equal(refused.code, 1);
    assert.equal(refused.out, '');
    assert.equal(refused.err.split('\n')[0], 'netboot package rm: package win11 is used by image(s) winpe ("Windows PE"); 1 client(s) boot them: LAB-PC-01 (52:54:00:12:34:56)');
    assert.match(refused.err, /pass --force to remove it anyway; nothing removed$/);
    assert.match((await run(packageCommand, A, 'status', 'win11')).out, /win11 \(image\) seq 1 [0-9a-f]{12} owner a/, 'still there');

    const unused = await run(packageCommand, A, 'rm', 'spare');
    assert.deepEqual({ code: unused.code, err: unused.err }, { code: 0, err: '' }, 'a package no image uses goes without a word');

    const forced = await run(packageCommand, A, 'rm', 'win11', '--force');
    assert.equal(forced.code, 0);
    assert.match(forced.out, /^removed win11 \(tombstone seq 2\)/);
    assert.match(forced.err, /^netboot package rm: warning: removing win11 although image\(s\) winpe \("Windows PE"\) use it; 1 client\(s\) boot them: LAB-PC-01/);
  } finally {
    await iface.stop();
    env.cleanup();
  }
});
