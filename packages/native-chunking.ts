// The native half of package chunking (native/chunking, built at `npm ci` by native/build.mjs):
// the gear scan, and SHA-256 of a batch of chunks for the hash workers. Absent (no compiler at
// install, another platform): the chunker uses the WebAssembly scan, which cuts at the same
// places, and the workers node:crypto, which gives the same digests; both more slowly.
import { createRequire } from 'node:module';
import { errorMessage } from '../platform/runtime/errors.ts';
import { nativeAddonFile } from '../platform/runtime/native-addon.ts';
import type { GearScan } from './gear-scan.ts';

interface ChunkingAddon {
  scan(gear: Int32Array, data: Uint8Array, from: number, to: number, h: number, mask: number): number;
  sha256Chunks(mem: Uint8Array, pieces: Uint32Array, out: Uint8Array): void;
  sha256Lanes(): boolean;
  scanAvx512(): boolean;
}

export type NativeChunking =
  | {
      readonly ok: true;
      readonly scan: GearScan;
      /** Where the addon lies, for worker threads to load it themselves. */
      readonly path: string;
      /** Whether chunk hashing runs in AVX-512 lanes (sixteen chunks at once) or one by one. */
      readonly lanes: boolean;
      /** Whether the scan uses AVX-512 (32 bytes a round) or scalar code (8). */
      readonly avx512Scan: boolean;
    }
  | { readonly ok: false; readonly reason: string };

/** Loads the addon; never throws. The scan it returns rolls the hash with `gear`. */
export function loadNativeChunking(gear: Int32Array): NativeChunking {
  const require = createRequire(import.meta.url);
  let path: string;
  let addon: ChunkingAddon;
  try {
    path = require.resolve(nativeAddonFile('chunking', 'chunking.node'));
    addon = require(path) as ChunkingAddon;
  } catch (err) {
    return { ok: false, reason: `native/chunking not built (${errorMessage(err).split('\n')[0]})` };
  }
  const table = Int32Array.from(gear);
  return { ok: true, path, lanes: addon.sha256Lanes(), avx512Scan: addon.scanAvx512(), scan: (data, from, to, h, mask) => addon.scan(table, data, from, to, h, mask) };
}
