// The wire tests (real clients, the lossy link, forged and malformed packets, the bounds) again on the two
// send paths the default run does not take: the native addon with sendmmsg instead of GSO, and
// pure node:dgram (what runs when the addon is absent). The default run (auto) covers native GSO.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureNativeBuilt, run } from './helpers.ts';

ensureNativeBuilt();
const here = dirname(fileURLToPath(import.meta.url));
const WIRE_TESTS = ['interop.test.ts', 'lossy.test.ts', 'robustness.test.ts', 'bounds.test.ts'].map((f) => join(here, f));

for (const sendPath of ['sendmmsg', 'dgram']) {
  test(`wire tests pass with [mtftp] send_path = "${sendPath}"`, async () => {
    const r = await runWith(sendPath);
    const failed = r.stdout.split('\n').filter((l) => l.startsWith('not ok'));
    assert.equal(r.code, 0, `${failed.join('\n')}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`);
    assert.match(r.stdout, /^# fail 0$/m);
  });
}

/** Runs the wire tests in a fresh `node --test` with the send path set (and not as our child test). */
function runWith(sendPath: string): ReturnType<typeof run> {
  const saved = { path: process.env.NETBOOT_TEST_SEND_PATH, context: process.env.NODE_TEST_CONTEXT };
  process.env.NETBOOT_TEST_SEND_PATH = sendPath;
  delete process.env.NODE_TEST_CONTEXT; // else the inner runner reports to ours instead of printing TAP
  try {
    return run(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=tap', ...WIRE_TESTS], { timeoutMs: 300_000 });
  } finally {
    restore('NETBOOT_TEST_SEND_PATH', saved.path);
    restore('NODE_TEST_CONTEXT', saved.context);
  }
}

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
