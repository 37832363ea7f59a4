// The native gear scan (native/gear-scan, built at `npm ci` by native/build.mjs). Absent (no
// compiler at install, another platform): the chunker uses the WebAssembly scan, which cuts at
// the same places, more slowly.
import { createRequire } from 'node:module';
import { errorMessage } from '../services/shared/errors.ts';
import type { GearScan } from './gear-scan.ts';

interface GearScanAddon {
  scan(gear: Int32Array, data: Uint8Array, from: number, to: number, h: number, mask: number): number;
}

export type NativeGearSupport = { readonly ok: true; readonly scan: GearScan } | { readonly ok: false; readonly reason: string };

/** Loads the addon; never throws. The scan it returns rolls the hash with `gear`. */
export function loadNativeGear(gear: Int32Array): NativeGearSupport {
  let addon: GearScanAddon;
  try {
    addon = createRequire(import.meta.url)('../native/gear-scan/build/Release/gear_scan.node') as GearScanAddon;
  } catch (err) {
    return { ok: false, reason: `native/gear-scan not built (${errorMessage(err).split('\n')[0]})` };
  }
  const table = Int32Array.from(gear);
  return { ok: true, scan: (data, from, to, h, mask) => addon.scan(table, data, from, to, h, mask) };
}
