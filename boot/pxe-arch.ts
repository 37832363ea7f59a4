// Client system architecture (DHCP option 93, RFC 4578 2.1) to the spec's architecture names.
// RFC 4578 lists 7 as "EFI BC" and 9 as "EFI x86-64"; its errata (ID 4624) and the IANA
// "Processor Architecture Types" registry swap them, and firmware in the field sends both for x64
// (EDK2/OVMF and iPXE send 7; some older firmware 9), so both mean efi-x64 here.
import type { Arch } from '../sbs/types.ts';

const BY_CODE: ReadonlyMap<number, Arch> = new Map([
  [0, 'bios'],
  [6, 'efi-ia32'],
  [7, 'efi-x64'],
  [9, 'efi-x64'],
  [11, 'efi-arm64'],
]);

/**
 * UEFI HTTP Boot clients send their own codes (IANA: x86 UEFI HTTP 15, x64 UEFI HTTP 16, ARM
 * 64-bit UEFI HTTP 19): read only from an HTTPClient request, as the PXE code of the same machine.
 */
const HTTP_TO_PXE: ReadonlyMap<number, number> = new Map([[15, 6], [16, 7], [19, 11]]);

/** An HTTPClient's architecture code as the PXE code of the same architecture (others unchanged). */
export function pxeCodeOfHttpClient(code: number): number {
  return HTTP_TO_PXE.get(code) ?? code;
}

export function archFromCode(code: number): Arch | null {
  return BY_CODE.get(code) ?? null;
}

/** The code a client of this architecture sends (the first one, for x64: 7). */
export function codeFromArch(arch: Arch): number {
  for (const [code, a] of BY_CODE) if (a === arch) return code;
  throw new RangeError(`no code for ${arch}`);
}

/**
 * `PXEClient:Arch:00007:UNDI:003000` (PXE 2.1 2.2.5) -> 7, `HTTPClient:Arch:00016:UNDI:003000`
 * (UEFI HTTP Boot) -> 16; null when absent or not decimal.
 */
export function archFromVendorClass(vendorClass: string): number | null {
  const m = /^(?:PXE|HTTP)Client:Arch:(\d{5})(?::|$)/.exec(vendorClass);
  return m === null ? null : Number(m[1]);
}
