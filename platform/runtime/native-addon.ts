// Where a native addon's binary lies: native/<addon>/build/Release/<file>, built by node-gyp at
// `npm ci` (native/build.mjs). NETBOOT_NATIVE_BUILD names another build folder under
// native/<addon>/ instead: native/sanitize.sh runs the native tests on its ASan/UBSan build.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NATIVE = join(dirname(fileURLToPath(import.meta.url)), '../../native');

/** The absolute path of `file` in addon `addon`'s build (it may not exist: loaders say so). */
export function nativeAddonFile(addon: string, file: string): string {
  const wanted = process.env.NETBOOT_NATIVE_BUILD;
  const build = wanted !== undefined && /^[\w-]+$/.test(wanted) ? wanted : 'build';
  return join(NATIVE, addon, build, 'Release', file);
}
