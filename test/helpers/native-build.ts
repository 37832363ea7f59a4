import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Builds the native addons (native/build.mjs) when `addon` (a folder under native/) has not been
 * built as `file`, or a source is newer than the build (a worktree whose node_modules was copied
 * in, a pull without npm ci: a stale addon beside newer TypeScript fails in ways that say nothing
 * about the change). A failed build throws, so the tests that need it fail loudly.
 */
export function ensureAddonBuilt(addon: string, file: string): void {
  // Another build (native/sanitize.sh's ASan/UBSan one) is made and kept fresh by its own script.
  if ((process.env.NETBOOT_NATIVE_BUILD ?? 'build') !== 'build') return;
  const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');
  const dir = join(repo, 'native', addon);
  const built = join(dir, 'build/Release', file);
  if (existsSync(built)) {
    const builtAt = statSync(built).mtimeMs;
    // The addon's own sources and the C every addon shares (native/common).
    const fresh = (d: string): boolean => readdirSync(d).every((f) => !/\.(c|h|gyp)$/.test(f) || statSync(join(d, f)).mtimeMs <= builtAt);
    if (fresh(dir) && fresh(join(repo, 'native/common'))) return;
  }
  execFileSync(process.execPath, [join(repo, 'native/build.mjs')], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NETBOOT_NATIVE_REQUIRED: '1' } });
}
