// `netboot explain` follows the whole chain against a running PXE server and Interface (in this
// process): a machine whose image's package is missing, not Ready, or lacks a file, or whose boot
// program is not in the TFTP root, "cannot boot", and explain says which link is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from '../../cli/args.ts';
import { explainCommand } from '../../cli/explain-command.ts';
import { packageCommand } from '../../cli/package-command.ts';
import { currentLink, packagesRoot } from '../../packages/layout.ts';
import { serving, startSite, type Site } from '../server/service-site.ts';

const MAC = '52:54:00:12:34:56';
const WINPE = { id: 'winpe', name: 'Windows PE', arch: ['efi-x64'], type: 'winpe', wim: 'sources/boot.wim', bcd: 'Boot/BCD', package: 'win11' };

async function explain(s: Site, ...argv: string[]): Promise<{ code: number; out: string[]; json: { chain: { cannotBoot: string | null } } }> {
  const run = async (extra: string[]): Promise<{ code: number; out: string[] }> => {
    const out: string[] = [];
    const code = await explainCommand({ args: parseArgs([MAC, ...argv, ...extra], ['ipxe', 'json']), out: (l) => out.push(l), err: (l) => out.push(`ERR ${l}`), env: { NETBOOT_CONFIG: s.site.configPath } });
    return { code, out };
  };
  const text = await run([]);
  const json = await run(['--json']);
  return { ...text, json: JSON.parse(json.out.join('\n')) };
}

async function pkg(s: Site, ...argv: string[]): Promise<string> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await packageCommand({ args: parseArgs([...argv, '--config', s.site.configPath], ['json', 'force']), out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  assert.equal(code, 0, err.join('\n'));
  return out.join('\n');
}

test('explain: cannot boot while the package is missing, not Ready, or lacks a file, or a boot file is not in the TFTP root', async () => {
  const s = await startSite((drop) => {
    drop('1-config.sbs', { kind: 'config', config: { respond: 'all', unknown: { type: 'local' }, bootFiles: { 'efi-x64': 'snponly.efi' } } });
    drop('2-clients.sbs', { kind: 'clients', clients: [{ mac: MAC, name: 'LAB-PC-01', action: { type: 'boot', image: 'winpe', once: false } }] });
    drop('3-images.sbs', { kind: 'images', images: [WINPE] });
  });
  const tftp = s.site.config.paths.tftpRoot;
  try {
    await serving(s);
    writeFileSync(join(tftp, 'snponly.efi'), 'ipxe');
    writeFileSync(join(tftp, 'wimboot'), 'wimboot');

    // The package was never published here.
    const missing = await explain(s, '--arch', 'efi-x64');
    assert.equal(missing.code, 0);
    assert.equal(missing.out[0], `${MAC} (efi-x64): cannot boot: BCD of image winpe (Boot/BCD): package win11 is not on this server (never published, deleted, or not received yet)`);
    assert.ok(missing.out.includes('  offered snponly.efi, but a link of the chain is missing (below)'), missing.out.join('\n'));
    assert.ok(missing.out.includes('    ok       boot program for efi-x64 (an iPXE build): snponly.efi from the TFTP root'), missing.out.join('\n'));
    assert.ok(missing.out.some((l) => l.startsWith('    MISSING  wim of image winpe: sources/boot.wim from the package win11: package win11 is not on this server')), missing.out.join('\n'));
    assert.match(missing.json.chain.cannotBoot ?? '', /package win11 is not on this server/, '--json carries the chain');

    // Published, but without the wim: the Ready version lacks a file.
    const src = join(s.site.dir, 'win11');
    mkdirSync(join(src, 'Boot'), { recursive: true });
    writeFileSync(join(src, 'Boot/BCD'), 'bcd');
    await pkg(s, 'publish', src, '--id', 'win11', '--kind', 'image');
    const partial = await explain(s, '--arch', 'efi-x64', '--ipxe');
    assert.match(partial.out[0]!, /: cannot boot: wim of image winpe \(sources\/boot\.wim\): not in the Ready version of package win11 \(.*\/packages\/win11\/versions\/[0-9a-f]{64}\/sources\/boot\.wim\)$/);

    // With every file: offered, and the whole chain is there.
    mkdirSync(join(src, 'sources'));
    writeFileSync(join(src, 'sources/boot.wim'), 'wim');
    await pkg(s, 'publish', src, '--id', 'win11', '--kind', 'image');
    const ok = await explain(s, '--arch', 'efi-x64');
    assert.equal(ok.out[0], `${MAC} (efi-x64): offered snponly.efi`);
    assert.ok(ok.out.includes('  then: boots image winpe'), ok.out.join('\n'));
    assert.equal(ok.json.chain.cannotBoot, null);

    // Not Ready: `current` is gone (as while a damaged file is repaired).
    rmSync(currentLink(packagesRoot(s.site.config.paths.data), 'win11'));
    const notReady = await explain(s, '--arch', 'efi-x64');
    assert.match(notReady.out[0]!, /: cannot boot: BCD of image winpe \(Boot\/BCD\): package win11 is not Ready on this server/);

    // A file of the TFTP root is missing: the boot program, then wimboot.
    rmSync(join(tftp, 'snponly.efi'));
    const noProgram = await explain(s, '--arch', 'efi-x64');
    assert.equal(noProgram.out[0], `${MAC} (efi-x64): cannot boot: boot program for efi-x64 (an iPXE build) (snponly.efi): not in the TFTP root (${join(tftp, 'snponly.efi')})`);
    rmSync(join(tftp, 'wimboot'));
    const noWimboot = await explain(s, '--arch', 'efi-x64', '--ipxe');
    assert.equal(noWimboot.out[0], `${MAC} (efi-x64, running iPXE): cannot boot: wimboot (for winpe images) (wimboot): not in the TFTP root (${join(tftp, 'wimboot')})`);
  } finally {
    await s.stop();
  }
});
