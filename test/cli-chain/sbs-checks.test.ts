// `netboot sbs send` warns, and with --strict refuses, when an instruction names an image, package
// or peer the site does not have; when the Interface is not running it says the check could not
// be made. Against a real Interface service in this process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from '../../cli/args.ts';
import { sbsCommand } from '../../cli/sbs-command.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import type { InterfaceService } from '../../services/interface/interface-service.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { waitFor } from '../helpers/env.ts';
import { makeSites, type Site } from '../packages/sites.ts';

const MAC = '52:54:00:12:34:56';

async function send(site: Site, ...argv: string[]): Promise<{ code: number; out: string; err: string; written: number }> {
  const out: string[] = [];
  const err: string[] = [];
  const args = parseArgs(['send', ...argv, '--config', site.configPath], ['json', 'ipxe', 'help', 'watch', 'strict', 'force']);
  const code = await sbsCommand({ args, out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  // The Interface archives what it applied: what was written is read from the output line.
  return { code, out: out.join('\n'), err: err.join('\n'), written: out.filter((l) => / written \((client|client-remove|image), /.test(l)).length };
}

test('sbs send: unknown image, package or peer is a warning, a refusal with --strict; no Interface: not checked', async () => {
  const env = await makeSites(['a', 'b'], { extra: '[packages]\nscrub_interval_ms = 0\n' });
  const [A] = env.sites as [Site, Site];
  let iface: InterfaceService | null = null;
  try {
    // Nothing runs: images and packages cannot be checked; said, written anyway (even --strict).
    const off = await send(A, 'client', '--mac', MAC, '--boot', 'lnx', '--strict');
    assert.equal(off.code, 0, off.err);
    assert.equal(off.written, 1);
    assert.match(off.err, /^netboot sbs send: warning: images not checked: the Interface is not running \(no answer on .*interface\.sock\); start it with `netboot run`$/m);
    // Peers come from the config: checked without the Interface.
    const offPeer = await send(A, 'client', '--mac', MAC, '--local', '--replicate-to', 'c.example.net', '--strict');
    assert.equal(offPeer.code, 1);
    assert.equal(offPeer.written, 0);
    assert.match(offPeer.err, /warning: replicateTo names c\.example\.net, which is not a configured peer \(peers: b \(127\.0\.0\.1:\d+\)\)/);

    iface = buildInterface(A.config, createMemoryLogger('info'));
    await iface.start();
    const image = await send(A, 'image', '--id', 'lnx', '--name', 'Linux', '--arch', 'bios', '--type', 'linux', '--kernel', 'vmlinuz');
    assert.equal(image.code, 0, image.err);
    await waitFor('image lnx applied', () => (iface!.state.state().images?.some((i) => i.id === 'lnx') ? true : undefined));

    const known = await send(A, 'client', '--mac', MAC, '--boot', 'lnx', '--replicate-to', 'b', '--strict');
    assert.deepEqual({ code: known.code, err: known.err, written: known.written }, { code: 0, err: '', written: 1 }, 'the site has all it names: no warning');

    const unknown = await send(A, 'client', '--mac', MAC, '--boot', 'no-such-image');
    assert.equal(unknown.code, 0);
    assert.equal(unknown.written, 1, 'a warning only: written');
    assert.match(unknown.out, /: written \(client, /);
    assert.equal(unknown.err, `netboot sbs send: warning: client ${MAC}'s action names image no-such-image, which the site does not have (it has lnx)`);

    const strict = await send(A, 'client', '--mac', MAC, '--boot', 'no-such-image', '--strict');
    assert.equal(strict.code, 1);
    assert.equal(strict.written, 0, '--strict: nothing written');
    assert.match(strict.err, /names image no-such-image.*\nnetboot sbs send: refused \(--strict\), nothing written$/);

    const peer = await send(A, 'client-remove', '--mac', MAC, '--replicate-to', '10.9.9.9:490', '--strict');
    assert.equal(peer.code, 1);
    assert.match(peer.err, /replicateTo names 10\.9\.9\.9:490, which is not a configured peer/);

    const pkg = await send(A, 'image', '--id', 'winpe', '--name', 'WinPE', '--arch', 'efi-x64', '--type', 'winpe', '--wim', 'boot.wim', '--package', 'win11', '--strict');
    assert.equal(pkg.code, 1);
    assert.match(pkg.err, /image winpe names package win11, which the site does not have \(it has none\) \(publish it with `netboot package publish`\)/);

    const menu = await send(A, 'client', '--mac', MAC, '--menu');
    assert.match(menu.err, /client 52:54:00:12:34:56's action is menu, but the site's config has no menu/);
  } finally {
    await iface?.stop();
    env.cleanup();
  }
});
