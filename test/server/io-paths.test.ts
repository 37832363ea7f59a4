// The service tests again on node:dgram, the path that serves when native/udp-batch is not built
// (`[server] io_path = "dgram"`). The default run takes the native addon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const SERVICE_TESTS = ['server-service.test.ts', 'relay-service.test.ts'].map((f) => join(import.meta.dirname, f));

test('the service tests pass with [server] io_path = "dgram"', async () => {
  const env: NodeJS.ProcessEnv = { ...process.env, NETBOOT_TEST_IO_PATH: 'dgram' };
  delete env.NODE_TEST_CONTEXT; // else the inner runner reports to ours instead of printing TAP
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=tap', ...SERVICE_TESTS], { env, timeout: 300_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
  const failed = r.stdout.split('\n').filter((l) => l.startsWith('not ok'));
  assert.equal(r.code, 0, `${failed.join('\n')}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`);
  assert.match(r.stdout, /^# fail 0$/m);
  assert.match(r.stdout, /^# pass [1-9]/m);
});
