// The quick start's first start, on the Interface alone (its real store, package store and
// control socket; apt downloads from Debian's archive): with [bootwiz] build_on_start,
// install_ipxe and seed_menu, the Interface builds linuxpe-x64 in the background (progress in
// its status and log), publishes it as a preboot package, offers its image, puts Debian's iPXE
// builds into the empty TFTP root, and unknown machines get the menu. A second start rebuilds
// nothing and the image is still offered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { makeTestSite, waitFor } from '../helpers/env.ts';
import { LINUXPE_X64 } from '../../bootwiz/recipe.ts';

const ID = LINUXPE_X64.id;
type Status = { bootwiz: Record<string, { state: string; step?: string; percent?: number }> };

test('the first start builds, publishes and offers LinuxPE in the background; the second reuses it', { timeout: 600_000 }, async () => {
  const site = await makeTestSite('[bootwiz]\nbuild_on_start = true\ninstall_ipxe = true\nseed_menu = true\n', 'bootwiz-first-start');
  try {
    const log = createMemoryLogger();
    let svc = buildInterface(site.config, log);
    await svc.start();
    const socket = controlSocketPath(site.config.paths.data, 'interface');
    try {
      // Serving at once; the build runs behind it.
      const first = await controlCall<Status>(socket, 'GET', '/status');
      assert.equal(first.bootwiz[ID]?.state, 'building');
      assert.equal(svc.state.state().config?.unknown.type, 'menu');
      await waitFor('the build to finish', async () => {
        const s = await controlCall<Status>(socket, 'GET', '/status');
        return s.bootwiz[ID]?.state === 'building' ? undefined : s;
      }, 540_000, 500);
      const s = await controlCall<Status>(socket, 'GET', '/status');
      assert.equal(s.bootwiz[ID]?.state, 'built', JSON.stringify(s.bootwiz));
      assert.ok(log.records.some((r) => r.msg === 'bootwiz build progress' && r.step === 'initrd'), 'progress is in the log');
      assert.deepEqual(svc.state.state().images?.map((i) => i.id), [ID]);
      const pkgs = await controlCall<{ packages: Array<{ ref: { package: string; kind: string }; statuses: Array<{ state: string }> }> }>(socket, 'GET', '/packages');
      const pkg = pkgs.packages.find((p) => p.ref.package === ID);
      assert.equal(pkg?.ref.kind, 'preboot');
      assert.equal(pkg?.statuses[0]?.state, 'ready');
      await waitFor('the iPXE builds in the TFTP root', () => (['undionly.kpxe', 'ipxe.efi', 'snponly.efi'].every((f) => existsSync(join(site.config.paths.tftpRoot, f))) ? true : undefined), 60_000, 200);
    } finally {
      await svc.stop();
    }
    svc = buildInterface(site.config, log);
    await svc.start();
    try {
      const s = await controlCall<Status>(socket, 'GET', '/status');
      assert.equal(s.bootwiz[ID]?.state, 'built', 'no rebuild on the second start');
      assert.deepEqual(svc.state.state().images?.map((i) => i.id), [ID]);
    } finally {
      await svc.stop();
    }
  } finally {
    site.cleanup();
  }
});
