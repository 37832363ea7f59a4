// The quick tier (`npm run test:unit`): every test file except those that need root (network
// namespaces, QEMU, systemd) or take tens of seconds (process kills, long transfers, many CLI
// processes). `npm test` runs them all. Prints one path per line.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const SLOW_OR_ROOT = [
  'test/e2e/', 'test/systemd/', 'test/soak/',
  'test/mtftp/lossy.test.ts', 'test/mtftp/send-paths.test.ts',
  'test/interface/crash-recovery.test.ts', 'test/packages/kill-resume.test.ts',
  'test/supervisor/netboot-run.test.ts', 'test/sbs/cli.test.ts', 'test/cli/',
  // Debian downloads and builds (tens of seconds); QEMU boots (root).
  'test/bootwiz/determinism.test.ts', 'test/bootwiz/first-start.test.ts', 'test/bootwiz/linuxpe-boot.test.ts',
  'test/web/metrics.test.ts', 'test/web/page.test.ts', 'test/web/top.test.ts',
];

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : path.endsWith('.test.ts') ? [path] : [];
  });
}

const files = walk('test').filter((f) => !SLOW_OR_ROOT.some((s) => f === s || f.startsWith(s))).sort();
process.stdout.write(files.join('\n') + '\n');
