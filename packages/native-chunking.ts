// The native half of package chunking (native/chunking, built at `npm ci` by native/build.mjs):
// SHA-256 of a batch of chunks for the hash workers. Absent (no compiler at install, another
// platform): the workers use node:crypto, which gives the same digests, more slowly. The gear scan
// is WebAssembly only (gear-scan.ts): a native scan measured about half as fast
// (bench/RESULTS.md, "Native paths") and was removed.
import { createRequire } from 'node:module';
import { errorMessage } from '../platform/runtime/errors.ts';
import { nativeAddonFile } from '../platform/runtime/native-addon.ts';

interface ChunkingAddon {
  sha256Chunks(mem: Uint8Array, pieces: Uint32Array, out: Uint8Array): void;
  sha256Lanes(): boolean;
}

export type NativeChunking =
  | {
      readonly ok: true;
      /** Where the addon lies, for worker threads to load it themselves. */
      readonly path: string;
      /** Whether chunk hashing runs in AVX-512 lanes (sixteen chunks at once) or one by one. */
      readonly lanes: boolean;
    }
  | { readonly ok: false; readonly reason: string };

/** Loads the addon; never throws. */
export function loadNativeChunking(): NativeChunking {
  const require = createRequire(import.meta.url);
  let path: string;
  let addon: ChunkingAddon;
  try {
    path = require.resolve(nativeAddonFile('chunking', 'chunking.node'));
    addon = require(path) as ChunkingAddon;
  } catch (err) {
    return { ok: false, reason: `native/chunking not built (${errorMessage(err).split('\n')[0]})` };
  }
  return { ok: true, path, lanes: addon.sha256Lanes() };
}
