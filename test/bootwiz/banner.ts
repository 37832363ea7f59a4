// The LinuxPE banner on a machine's console (bootwiz/init-script.ts), for tests and the bench.
export const BANNER = /==== netboot LinuxPE ====\n([\s\S]*?)\n====\n/;

export interface Banner {
  readonly server: string;
  readonly mac: string;
  readonly ip: string;
  readonly drivers: string;
  readonly text: string;
}

/** The banner's fields from console text (ANSI escapes and CRs already removed). */
export function parseBanner(console: string): Banner | null {
  const m = BANNER.exec(console);
  if (m === null) return null;
  const field = (name: string): string => new RegExp(`^${name}: ?(.*)$`, 'm').exec(m[1]!)?.[1]?.trim() ?? '';
  return { server: field('site server'), mac: field('mac').split(' ')[0]!, ip: field('ip'), drivers: field('driver packages'), text: m[0] };
}

/**
 * QEMU memory for LinuxPE guests: the initrd holds Node (about 110 MB unpacked into the kernel's
 * rootfs, which may fill half of RAM); 256 MiB fails to unpack it, 320 boots; 512 leaves the agent room.
 */
export const LINUXPE_GUEST_MIB = 512;
/** powerOn's machine argument for LinuxPE guests (QEMU takes the last -m). */
export const LINUXPE_MACHINE = { extraArgs: ['-m', String(LINUXPE_GUEST_MIB)] } as const;
