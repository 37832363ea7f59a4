// Publishing identical content again is reported as unchanged: the same digest and seq, no new
// version folder, not a byte more on disk. A change of one mode or of bytes (same size) is a new
// version. Through `netboot package publish` against a real Interface service in this process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from '../../cli/args.ts';
import { packageCommand } from '../../cli/package-command.ts';
import { packageDir, packagesRoot, versionsDir } from '../../packages/layout.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { makeSites, type Site } from '../packages/sites.ts';

async function run(site: Site, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await packageCommand({ args: parseArgs([...argv, '--config', site.configPath], ['json', 'watch', 'force']), out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Every path under `dir` with the bytes it takes on disk. */
function usage(dir: string): { paths: string[]; bytes: number } {
  const paths: string[] = [];
  let bytes = 0;
  const visit = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const p = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(dir, p));
      paths.push(p);
      if (st.isDirectory()) visit(p);
      else bytes += st.blocks * 512;
    }
  };
  visit('');
  return { paths, bytes };
}

test('identical content republished is unchanged: same version, no new folder, no new bytes', async () => {
  const env = await makeSites(['a'], { extra: '[packages]\nscrub_interval_ms = 0\n' });
  const [A] = env.sites as [Site];
  const iface = buildInterface(A.config, createMemoryLogger('info'));
  await iface.start();
  const root = packagesRoot(A.config.paths.data);
  try {
    const src = join(A.dir, 'winpe');
    mkdirSync(join(src, 'sources'), { recursive: true });
    mkdirSync(join(src, 'empty'));
    writeFileSync(join(src, 'sources/boot.wim'), randomBytes(3 * 1024 * 1024 + 5));
    writeFileSync(join(src, 'bootmgr'), 'bootmgr');
    const first = await run(A, 'publish', src, '--id', 'win11', '--kind', 'image');
    assert.equal(first.code, 0, first.err);
    const digest = /^published win11 seq 1 ([0-9a-f]{64}):/.exec(first.out)?.[1];
    assert.ok(digest, first.out);
    const before = usage(packageDir(root, 'win11'));

    const again = await run(A, 'publish', src, '--id', 'win11', '--kind', 'image');
    assert.equal(again.code, 0, again.err);
    assert.equal(again.out, `win11: unchanged (version ${digest}); seq 1 stays current: 2 file(s), 3.0 MiB identical, nothing written`);
    assert.deepEqual(readdirSync(versionsDir(root, 'win11')), [digest], 'no new version folder');
    assert.deepEqual(usage(packageDir(root, 'win11')), before, 'not a byte more on disk, no staging left');
    assert.match((await run(A, 'status', 'win11')).out, new RegExp(`win11 \\(image\\) seq 1 ${digest.slice(0, 12)} owner a`));

    // A mode alone is a change; so are different bytes of the same size (read twice, then copied).
    chmodSync(join(src, 'bootmgr'), 0o600);
    const mode = await run(A, 'publish', src, '--id', 'win11', '--kind', 'image');
    assert.match(mode.out, /^published win11 seq 2 [0-9a-f]{64}: 2 file\(s\), 3\.0 MiB/);
    writeFileSync(join(src, 'sources/boot.wim'), randomBytes(3 * 1024 * 1024 + 5));
    const bytes = await run(A, 'publish', src, '--id', 'win11', '--kind', 'image');
    assert.match(bytes.out, /^published win11 seq 3 [0-9a-f]{64}: 2 file\(s\), 3\.0 MiB/);
    const same = await run(A, 'publish', src, '--id', 'win11', '--kind', 'image');
    assert.match(same.out, /^win11: unchanged \(version [0-9a-f]{64}\); seq 3 stays current/);
  } finally {
    await iface.stop();
    env.cleanup();
  }
});
