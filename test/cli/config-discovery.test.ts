// Which config the commands use: --config, then NETBOOT_CONFIG, then /etc/netboot/netboot.toml,
// then the checkout's config/default.toml (the one `npm start` runs with); none: what was tried.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkoutRoot, findConfigPath } from '../../cli/context.ts';
import { NetbootError } from '../../platform/runtime/errors.ts';
import { netboot, ROOT } from './cli-run.ts';

test('the order: --config, NETBOOT_CONFIG, the system file, the checkout\'s default', () => {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-config-order-'));
  try {
    const system = join(dir, 'etc.toml');
    const checkout = join(dir, 'checkout');
    mkdirSync(join(checkout, 'config'), { recursive: true });
    const fallback = join(checkout, 'config', 'default.toml');
    writeFileSync(fallback, '');
    const env = { NETBOOT_CONFIG: '/from/env.toml' };
    assert.equal(findConfigPath({ flag: '/from/flag.toml', env, systemPath: system, checkout }), '/from/flag.toml');
    assert.equal(findConfigPath({ env, systemPath: system, checkout }), '/from/env.toml');
    assert.equal(findConfigPath({ env: {}, systemPath: system, checkout }), fallback); // no system file yet
    assert.equal(findConfigPath({ env: { NETBOOT_CONFIG: '' }, systemPath: system, checkout }), fallback); // empty = unset
    writeFileSync(system, '');
    assert.equal(findConfigPath({ env: {}, systemPath: system, checkout }), system);
    rmSync(system);
    rmSync(fallback);
    assert.throws(() => findConfigPath({ env: {}, systemPath: system, checkout }), (err: unknown) => {
      assert.ok(err instanceof NetbootError);
      assert.equal(err.code, 'CONFIG_NOT_FOUND');
      assert.match(err.message, /^no config file found; tried:\n/);
      assert.match(err.message, /--config FILE +\(not given\)/);
      assert.match(err.message, /\$NETBOOT_CONFIG +\(not set\)/);
      assert.ok(err.message.includes(`${system} `) && err.message.includes(`${fallback} (does not exist)`), err.message);
      assert.match(err.message, /pass --config FILE or set NETBOOT_CONFIG=FILE$/);
      return true;
    });
    assert.throws(() => findConfigPath({ env: {}, systemPath: system, checkout: null }), /a checkout's config\/default\.toml \(not run from a checkout\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run from the checkout with no config given, the commands find what `npm start` uses', async () => {
  assert.equal(checkoutRoot(), ROOT.replace(/\/$/, ''));
  const expected = existsSync('/etc/netboot/netboot.toml') ? '/etc/netboot/netboot.toml' : join(ROOT, 'config', 'default.toml');
  const r = await netboot(['config', 'check']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stderr.split('\n').some((l) => l.startsWith(`${expected}: valid`)), r.stderr);
});
