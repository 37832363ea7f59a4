// Made-up PXE requests, as a machine's firmware (or iPXE) sends them: what `netboot explain`
// and the warm-up run through the answer path (boot/answer.ts). Pure.
import { BOOTREQUEST, FLAG_BROADCAST, encode } from '../protocols/dhcp/dhcp-codec.ts';
import { DhcpOptions, MESSAGE_TYPE, encodeOption } from '../protocols/dhcp/dhcp-options.ts';
import type { Arch } from '../sbs/types.ts';
import { codeFromArch } from './pxe-arch.ts';

export interface SampleRequest {
  /** `52:54:00:12:34:56`. */
  readonly mac: string;
  readonly arch: Arch;
  /** Already running iPXE (option 77 `iPXE`). */
  readonly ipxe: boolean;
  /** Forwarded by the relay agent at this address (giaddr, hops 1); null: on our own segment. */
  readonly giaddr: string | null;
  /** DISCOVER on 67 (default), or a boot server REQUEST with a boot item (for 4011). */
  readonly type?: 'discover' | 'boot-server-request';
  readonly ciaddr?: string;
  readonly xid?: number;
  /** UEFI HTTP Boot firmware: option 60 `HTTPClient:Arch:000NN:...` with the HTTP arch code (x64: 16). */
  readonly http?: boolean;
}

/** The UEFI HTTP Boot architecture codes (IANA), by architecture. */
const HTTP_ARCH: Partial<Record<Arch, number>> = { 'efi-ia32': 15, 'efi-x64': 16, 'efi-arm64': 19 };

/** The request's bytes: options 53, 57, 93, 94, 60, 97 (and 77, 43), as PXE 2.1 firmware sends them. */
export function requestBytes(r: SampleRequest): Buffer {
  const mac = Buffer.from(r.mac.split(/[:-]/).map((h) => parseInt(h, 16)));
  const archCode = r.http === true ? (HTTP_ARCH[r.arch] ?? codeFromArch(r.arch)) : codeFromArch(r.arch);
  const bootServer = r.type === 'boot-server-request';
  const codes = [53, 57, 93, 94, 60, 97];
  const values = [
    encodeOption.u8(bootServer ? MESSAGE_TYPE.REQUEST : MESSAGE_TYPE.DISCOVER), encodeOption.u16(1472), encodeOption.u16(archCode), Buffer.from([1, 2, 1]),
    encodeOption.text(`${r.http === true ? 'HTTPClient' : 'PXEClient'}:Arch:${String(archCode).padStart(5, '0')}:UNDI:${r.http === true ? '003000' : '002001'}`), Buffer.concat([Buffer.alloc(11), mac]),
  ];
  if (r.ipxe) {
    codes.push(77);
    values.push(Buffer.from('iPXE'));
  }
  if (bootServer) {
    codes.push(43);
    values.push(Buffer.from([71, 4, 0x80, 0x00, 0x00, 0x00, 255]));
  }
  return encode({
    op: BOOTREQUEST, htype: 1, hlen: 6, hops: r.giaddr === null ? 0 : 1, xid: r.xid ?? 1, secs: 0, flags: FLAG_BROADCAST,
    ciaddr: r.ciaddr ?? '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: r.giaddr ?? '0.0.0.0',
    chaddr: Buffer.concat([mac, Buffer.alloc(10)]), sname: '', file: '', options: DhcpOptions.of(codes, values),
  });
}

/** The DISCOVER a machine sends first. */
export function discoverBytes(r: Omit<SampleRequest, 'type'>): Buffer {
  return requestBytes(r);
}
