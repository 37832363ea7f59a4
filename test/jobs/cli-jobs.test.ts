// `netboot job ...` against a running Interface: a job written through the checked SBS path,
// listed and followed until it ends; an invalid job is never written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { inProcess } from '../cli/cli-run.ts';
import { makeTestSite, waitFor } from '../helpers/env.ts';

const MAC = '52:54:00:12:34:56';
const JOB = 'a1b2c3d4-0000-4000-8000-00000000c0de';

test('netboot job deploy writes the job; list and status show it; status --watch follows it to its end', async () => {
  const site = await makeTestSite('[interface]\nsettle_ms = 10\n');
  const svc = buildInterface(site.config, createMemoryLogger());
  await svc.start();
  const cfg = ['--config', site.configPath];
  try {
    const usage = await inProcess(['job', 'erase', '--mac', MAC, '--preboot', 'linuxpe-x64', '--package', 'x', ...cfg]);
    assert.equal(usage.code, 2, 'erase takes no --package');
    assert.match(usage.stderr, /unknown option --package/);
    const bad = await inProcess(['job', 'deploy', '--mac', MAC, '--preboot', 'linuxpe-x64', '--package', 'x', '--version', 'sha256:12', ...cfg]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid instruction, nothing written: job\.version: must be "sha256:" and 64 hex digits/);
    assert.deepEqual(readdirSync(site.config.paths.sbs), []);

    const sent = await inProcess(['job', 'deploy', '--mac', MAC.toUpperCase(), '--preboot', 'linuxpe-x64', '--package', 'win11-gold', '--job-id', JOB, '--partitions', '1,2', '--then', 'wait', ...cfg]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /written \(job, [0-9a-f-]{36}\)/);
    assert.match(sent.stderr, /warning: job a1b2c3d4-.*'s preboot names image linuxpe-x64, which the site does not have/);
    await waitFor('the job applied', () => svc.jobs.get(JOB) ?? undefined);
    assert.deepEqual(svc.jobs.get(JOB)?.job.partitions, [1, 2]);

    const list = await inProcess(['job', 'list', ...cfg]);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^JOB\s+MAC\s+TASK\s+STATE\s+PROGRESS$/);
    assert.match(lines[1]!, /^a1b2c3d4\s+52:54:00:12:34:56\s+deploy\s+pending\s+waiting for the machine to boot$/);

    const secret = svc.state.state().jobs![0]!.secret;
    assert.ok(svc.jobs.report(secret, null, { kind: 'started' }).ok);
    assert.ok(svc.jobs.report(secret, null, { kind: 'progress', phase: 'write', bytesDone: 512 * 1024 * 1024, bytesTotal: 1024 * 1024 * 1024 }).ok);
    const status = await inProcess(['job', 'status', 'a1b2c3d4', ...cfg]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^job a1b2c3d4-0000-4000-8000-00000000c0de: deploy on 52:54:00:12:34:56, running$/m);
    assert.match(status.stdout, /progress \[##########----------\] {2}50% write 512\.0 MiB\/1\.0 GiB/);

    const watching = inProcess(['job', 'status', JOB, '--watch', ...cfg]);
    assert.ok(svc.jobs.report(secret, null, { kind: 'failed', reason: 'disk not found', phase: 'find-disk' }).ok);
    const watched = await watching;
    assert.equal(watched.code, 1, 'a failed job ends the watch with 1');
    assert.match(watched.stdout, /failed in find-disk: disk not found/);
    assert.equal((await inProcess(['job', 'status', 'ffffffff', ...cfg])).code, 1);

    const cancel = await inProcess(['job', 'cancel', JOB, ...cfg]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.ok(readdirSync(join(site.config.paths.sbs)).length <= 1);
  } finally {
    await svc.stop();
    site.cleanup();
  }
});
