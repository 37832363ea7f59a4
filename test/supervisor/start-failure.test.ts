// Under the supervisor, a service that cannot start is seen to fail, not to serve (issue 15
// item 3, issue 16 item 3): the Interface with an SBS folder path that is a file exits 1 with its
// reason, the supervisor logs the exit with that code and restarts it with backoff, and never
// reports it serving. SIGTERM still stops the supervisor at once with exit 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeTestSite, waitFor } from '../helpers/env.ts';

const NETBOOT = fileURLToPath(new URL('../../bin/netboot', import.meta.url));

test('netboot run: an Interface that cannot start exits 1 with its reason; the supervisor restarts it and never calls it serving', async () => {
  const site = await makeTestSite('', 'netboot-run-fail');
  writeFileSync(site.config.paths.sbs, 'not a folder');
  const proc = spawn(NETBOOT, ['run', 'interface', 'signal', '--config', site.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const records: Record<string, unknown>[] = [];
  const read = (line: string): void => {
    try {
      records.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      records.push({ raw: line });
    }
  };
  createInterface({ input: proc.stdout! }).on('line', read);
  createInterface({ input: proc.stderr! }).on('line', read);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  try {
    const exit = await waitFor('the supervisor sees the Interface exit', () => records.find((r) => r.msg === 'service exited; restarting' && r.child === 'interface'), 30000);
    assert.equal(exit.code, 1);
    const failed = records.find((r) => r.msg === 'interface failed to start');
    assert.ok(failed !== undefined, 'the Interface says why');
    assert.match(JSON.stringify(failed), /sbs/);
    assert.equal(records.some((r) => r.msg === 'service serving' && r.child === 'interface'), false, 'never reported serving');
    proc.kill('SIGTERM');
    assert.deepEqual(await exited, { code: 0, signal: null });
  } finally {
    proc.kill('SIGKILL');
    site.cleanup();
  }
});
