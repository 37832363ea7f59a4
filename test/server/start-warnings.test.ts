// Start-up checks that would fail every request (issue 23): boot files named in the PXE config
// that are not in the TFTP root, and a missing TFTP root, are warnings logged at start and listed
// in the control socket's status (`warnings`), while the service runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlCall, controlSocketPath, type ServiceStatusBody } from '../../platform/local/control.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { NO_BOOT_HOOKS } from '../../services/mtftp/boot-hooks.ts';
import { buildMtftp } from '../../services/mtftp/main.ts';
import { makeTestSite } from '../helpers/env.ts';
import { serving, snapshots, startSite } from './service-site.ts';

test('server: a boot file of config.bootFiles missing from the TFTP root is a warning in the log and the status', async () => {
  const s = await startSite(snapshots([]));
  try {
    writeFileSync(join(s.site.config.paths.tftpRoot, 'undionly.kpxe'), 'present');
    await serving(s);
    const st = await controlCall<ServiceStatusBody>(controlSocketPath(s.site.config.paths.data, 'server'), 'GET', '/status');
    assert.equal(st.state, 'serving');
    assert.equal(st.warnings.length, 1, st.warnings.join('\n'));
    assert.match(st.warnings[0]!, /^boot file snponly\.efi \(config\.bootFiles efi-x64\) is not in tftp_root /);
    assert.ok(s.log.records.some((r) => r.level === 'warn' && String(r.msg).startsWith('boot file snponly.efi')));
  } finally {
    await s.stop();
  }
});

test('mtftp: a missing TFTP root is a warning in the log and the status; it serves anyway', async () => {
  const site = await makeTestSite('', 'mtftp-no-root');
  rmSync(site.config.paths.tftpRoot, { recursive: true });
  const log = createMemoryLogger();
  const service = buildMtftp({ ...site.config, mtftp: { ...site.config.mtftp, port: 0 } }, log, NO_BOOT_HOOKS);
  await service.start();
  try {
    const st = service.status();
    assert.equal(st.state, 'serving');
    assert.deepEqual(st.warnings, [`tftp_root ${site.config.paths.tftpRoot} does not exist: every request will fail`]);
    assert.ok(log.records.some((r) => r.level === 'warn' && r.msg === st.warnings[0]));
  } finally {
    await service.stop();
    site.cleanup();
  }
});
