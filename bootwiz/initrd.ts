// The base initrd: busybox and its applet links, the kernel modules, init and its scripts, the
// agent's slot, as a deterministic newc cpio (cpio.ts), gzip-compressed.
//
// gzip from node:zlib, not zstd: no tool outside Node is needed, the kernel reads it
// (CONFIG_RD_GZIP), and the bytes are fixed by the input alone (node writes mtime 0, no name,
// with the zlib it bundles). Level 6, not 9: measured on the 14.3 MB cpio of linuxpe-x64,
// -6 gives 4.21 MB in 1.2 s, -9 4.17 MB in 5.9 s; zstd -9 would give 3.66 MB in 0.5 s but
// needs the zstd binary, whose version then pins the bytes. A rebuild's time matters more
// (drivers will trigger rebuilds) than 1% of a TFTP transfer.
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import { cpioParts, type CpioEntry } from './cpio.ts';
import { AGENT_DIR, initScript, MODULES_LIST, UDHCPC_SCRIPT, udhcpcScript } from './init-script.ts';
import type { ModuleLoad } from './module-order.ts';

export const GZIP_LEVEL = 6;

export interface InitrdInput {
  readonly busybox: Uint8Array;
  /** `busybox --list-full`: applet paths (`bin/sh`, `usr/sbin/udhcpd`, ...). */
  readonly applets: readonly string[];
  readonly modules: ReadonlyArray<ModuleLoad & { readonly data: Uint8Array }>;
  /** Programs, data and libraries from userland.ts (they win over busybox's applet links). */
  readonly userland?: readonly CpioEntry[];
  /** Small text files (e.g. etc/bootwiz/build.json), path → content. */
  readonly extraFiles?: Readonly<Record<string, string>>;
}

/** Every entry of the base initrd. Pure. */
export function initrdEntries(input: InitrdInput): CpioEntry[] {
  const entries: CpioEntry[] = [
    { path: 'dev', type: 'dir' },
    // The kernel opens /dev/console for init before anything is mounted.
    { path: 'dev/console', type: 'chardev', major: 5, minor: 1, mode: 0o600 },
    { path: 'dev/null', type: 'chardev', major: 1, minor: 3, mode: 0o666 },
    { path: 'proc', type: 'dir' },
    { path: 'sys', type: 'dir' },
    { path: 'run', type: 'dir' },
    { path: 'tmp', type: 'dir', mode: 0o1777 },
    { path: 'root', type: 'dir', mode: 0o700 },
    { path: 'mnt', type: 'dir' },
    { path: AGENT_DIR, type: 'dir' },
    { path: 'bin/busybox', type: 'file', data: input.busybox, mode: 0o755 },
    { path: 'init', type: 'file', data: Buffer.from(initScript()), mode: 0o755 },
    { path: UDHCPC_SCRIPT, type: 'file', data: Buffer.from(udhcpcScript()), mode: 0o755 },
    { path: MODULES_LIST, type: 'file', data: Buffer.from(input.modules.map((m) => `${m.path}\n`).join('')) },
    { path: 'etc/passwd', type: 'file', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n') },
    { path: 'etc/group', type: 'file', data: Buffer.from('root:x:0:\n') },
  ];
  const taken = new Set(entries.map((e) => e.path));
  for (const m of input.modules) {
    entries.push({ path: m.path, type: 'file', data: m.data });
    taken.add(m.path);
  }
  for (const e of input.userland ?? []) {
    entries.push(e);
    taken.add(e.path);
  }
  for (const [path, text] of Object.entries(input.extraFiles ?? {})) {
    entries.push({ path, type: 'file', data: Buffer.from(text) });
    taken.add(path);
  }
  for (const raw of input.applets) {
    const path = raw.replace(/^\/+/, '');
    // linuxrc and anything outside the usual folders would shadow what we put there.
    if (!/^(usr\/)?s?bin\/[^/]+$/.test(path) || taken.has(path)) continue;
    taken.add(path);
    entries.push({ path, type: 'symlink', target: '/bin/busybox' });
  }
  return entries;
}

/**
 * The compressed initrd and the archive's size. Same input, same bytes. The archive (about 110 MB
 * with Node) is streamed into gzip piece by piece, never copied whole, and the event loop of the
 * Interface that runs the build keeps answering meanwhile.
 */
export async function buildInitrd(input: InitrdInput): Promise<{ cpioBytes: number; compressed: Buffer }> {
  const { parts, length } = cpioParts(initrdEntries(input));
  return { cpioBytes: length, compressed: await gzipParts(parts) };
}

/** gzip of the concatenated parts at GZIP_LEVEL: the same bytes as gzip of the whole buffer. */
export async function gzipParts(parts: readonly Buffer[]): Promise<Buffer> {
  const gz = createGzip({ level: GZIP_LEVEL });
  const out: Buffer[] = [];
  gz.on('data', (b: Buffer) => out.push(b));
  const done = once(gz, 'end');
  for (const p of parts) if (!gz.write(p)) await once(gz, 'drain');
  gz.end();
  await done;
  return Buffer.concat(out);
}
