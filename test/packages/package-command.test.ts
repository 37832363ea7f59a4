// `netboot package ...` against two real Interface services (in this process): publish, status,
// verify and rm as an operator would use them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InterfaceService } from '../../services/interface/interface-service.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { parseArgs } from '../../cli/args.ts';
import { packageCommand } from '../../cli/package-command.ts';
import { waitFor } from '../helpers/env.ts';
import { makeSites, type Site } from './sites.ts';

let env: Awaited<ReturnType<typeof makeSites>>;
let services: InterfaceService[] = [];

async function run(site: Site, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await packageCommand({ args: parseArgs([...argv, '--config', site.configPath], ['json', 'watch']), out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

before(async () => {
  env = await makeSites(['a', 'b'], { extra: '[packages]\nscrub_interval_ms = 0\n' });
  services = env.sites.map((s) => buildInterface(s.config, createMemoryLogger('info')));
  for (const s of services) await s.start();
});

after(async () => {
  for (const s of services) await s.stop();
  env?.cleanup();
});

test('publish, status, verify and rm through the CLI', async () => {
  const [A, B] = env.sites as [Site, Site];
  const src = join(A.dir, 'drivers');
  mkdirSync(join(src, 'net'), { recursive: true });
  writeFileSync(join(src, 'net/e1000e.sys'), randomBytes(300_000));
  writeFileSync(join(src, 'net/e1000e.inf'), '[Version]\n');
  writeFileSync(join(src, 'driver.json'), '{"os": "windows", "arch": "x64", "description": "Intel e1000e"}');
  const pub = await run(A, 'publish', src, '--id', 'drv-intel', '--kind', 'driver');
  assert.equal(pub.code, 0, pub.err);
  assert.match(pub.out, /^published drv-intel seq 1 [0-9a-f]{64}: 3 file\(s\), 0\.3 MiB/);
  await waitFor('B Ready', async () => (/^ {2}b +ready +1 /m.test((await run(B, 'status', 'drv-intel')).out) ? true : undefined));
  const status = await run(A, 'status');
  assert.match(status.out, /^server a; peers: b up/);
  assert.match(status.out, /drv-intel \(driver\) seq 1 [0-9a-f]{12} owner a/);
  assert.match(status.out, /\n {2}SERVER +STATE +SEQ +DIGEST +PROGRESS\n {2}a +ready +1 +[0-9a-f]{12} +-$/m);
  await waitFor('A sees B Ready', async () => (/^ {2}b +ready +1 /m.test((await run(A, 'status', 'drv-intel')).out) ? true : undefined));
  const verify = await run(B, 'verify', 'drv-intel');
  assert.equal(verify.code, 0);
  assert.match(verify.out, /drv-intel [0-9a-f]{12}: 3 file\(s\), 0\.3 MiB verified, all chunks match/);
  const refused = await run(B, 'rm', 'drv-intel').catch((e: Error) => ({ code: 1, out: '', err: e.message }));
  assert.match(refused.err, /package drv-intel is owned by a; remove it there/);
  const rm = await run(A, 'rm', 'drv-intel');
  assert.match(rm.out, /^removed drv-intel \(tombstone seq 2\)/);
  await waitFor('B deleted it', async () => (/^ {2}b +absent /m.test((await run(B, 'status', 'drv-intel')).out) ? true : undefined));
  const bad = await run(A, 'publish', src, '--id', 'x');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--id and --kind are required/);
});
