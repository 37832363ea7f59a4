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
