// The agent's command line: `node agent.mjs SERVER MAC IP [options]` as LinuxPE's /init runs it,
// and the job from the kernel command line (`netboot.job=<guid> netboot.secret=<64 hex>
// netboot.server=<ip>`, as boot/ipxe-script.ts and boot/http-grub-config.ts write it). Options
// (tests, and a bench at a console): --cmdline FILE (default /proc/cmdline), --server HOST[:PORT]
// (default the SERVER argument, else netboot.server, port 490), --sys DIR (default /sys), --dev
// DIR (default /dev), --no-reboot, --check-ms N (how often the job is checked while the disk
// works, default 5000), --trace FILE (each disk write and each answer of the site, one line
// each), --upload-encoding raw|deflate|auto (how a capture's chunks travel: raw, the default, was
// fastest on the 2-core machines measured, even over 1 Gbit/s; deflate: deflated wherever that
// saves; auto: tries both as it goes and keeps the faster, for slow links or many cores). Environment: NETBOOT_JOB,
// NETBOOT_SECRET, NETBOOT_SERVER stand in for the kernel's; NETBOOT_UPLOAD_ENCODING for
// --upload-encoding. Pure.

export const DEFAULT_PORT = 490;

/** How a capture's chunks travel (images/agent/upload-sink.ts). */
export type UploadEncoding = 'deflate' | 'raw' | 'auto';
export const UPLOAD_ENCODINGS: readonly UploadEncoding[] = ['deflate', 'raw', 'auto'];

export interface AgentOptions {
  /** host:port of the site's Interface (the agent API and the package routes). */
  readonly server: string | null;
  readonly mac: string | null;
  readonly ip: string | null;
  readonly jobId: string | null;
  readonly secret: string | null;
  /** `netboot.enrol` (initial deployment: the machine is new to the site), or null. */
  readonly enrol: string | null;
  readonly sysDir: string;
  readonly devDir: string;
  readonly reboot: boolean;
  readonly checkMs: number;
  readonly trace: string | null;
  readonly uploadEncoding: UploadEncoding;
}

export class UsageError extends Error {}

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const SECRET = /^[0-9a-fA-F]{64}$/;

/** `netboot.*` settings of a kernel command line (the last of a name wins, as the kernel's own do). */
export function kernelSettings(cmdline: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const word of cmdline.trim().split(/\s+/)) {
    const eq = word.indexOf('=');
    if (!word.startsWith('netboot.') || eq < 0) continue;
    out.set(word.slice(0, eq), word.slice(eq + 1));
  }
  return out;
}

/** `host`, `host:port`, `[v6]:port` -> `host:port` (490 by default); null when empty or a template left unexpanded. */
export function serverAddress(text: string | undefined): string | null {
  if (text === undefined || text === '' || text.includes('${')) return null;
  if (/^\[[0-9a-fA-F:.]+\](:\d+)?$/.test(text)) return /\]:\d+$/.test(text) ? text : `${text}:${DEFAULT_PORT}`;
  if (/^[A-Za-z0-9.-]+:\d{1,5}$/.test(text)) return text;
  if (/^[A-Za-z0-9.-]+$/.test(text)) return `${text}:${DEFAULT_PORT}`;
  if (/^[0-9a-fA-F:]+$/.test(text)) return `[${text}]:${DEFAULT_PORT}`;
  throw new UsageError(`server ${JSON.stringify(text)}: expected HOST or HOST:PORT`);
}

/**
 * The options from argv (after the script), the kernel command line's text (read by the caller
 * from --cmdline or /proc/cmdline; `readFile` is given the path) and the environment.
 */
export function parseOptions(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, readFile: (path: string) => string): AgentOptions {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  let reboot = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--no-reboot') reboot = false;
    else if (['--cmdline', '--server', '--sys', '--dev', '--check-ms', '--trace', '--upload-encoding'].includes(a)) {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      flags.set(a, v);
    } else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`);
    else positional.push(a);
  }
  if (positional.length > 3) throw new UsageError(`at most SERVER MAC IP, got ${positional.length} arguments`);
  const cmdlinePath = flags.get('--cmdline') ?? '/proc/cmdline';
  let cmdline = '';
  try {
    cmdline = readFile(cmdlinePath);
  } catch (err) {
    if (flags.has('--cmdline')) throw new UsageError(`--cmdline ${cmdlinePath}: ${(err as Error).message}`);
  }
  const k = kernelSettings(cmdline);
  const jobId = env.NETBOOT_JOB ?? k.get('netboot.job') ?? null;
  const secret = env.NETBOOT_SECRET ?? k.get('netboot.secret') ?? null;
  if (jobId !== null && !GUID.test(jobId)) throw new UsageError(`netboot.job=${jobId}: not a GUID`);
  if (secret !== null && !SECRET.test(secret)) throw new UsageError('netboot.secret: not 64 hex digits');
  const enrol = k.get('netboot.enrol') ?? null;
  if (enrol !== null && !SECRET.test(enrol)) throw new UsageError('netboot.enrol: not 64 hex digits');
  if ((jobId === null) !== (secret === null)) throw new UsageError('netboot.job and netboot.secret come together: one of them is missing');
  const checkMs = Number(flags.get('--check-ms') ?? 5000);
  if (!Number.isInteger(checkMs) || checkMs < 50 || checkMs > 600_000) throw new UsageError('--check-ms: a whole number of milliseconds, 50 to 600000');
  const uploadEncoding = flags.get('--upload-encoding') ?? env.NETBOOT_UPLOAD_ENCODING ?? 'raw';
  if (!(UPLOAD_ENCODINGS as readonly string[]).includes(uploadEncoding)) throw new UsageError(`--upload-encoding ${uploadEncoding}: expected deflate, raw or auto`);
  const server = serverAddress(flags.get('--server')) ?? serverAddress(positional[0]) ?? serverAddress(env.NETBOOT_SERVER) ?? serverAddress(k.get('netboot.server'));
  return {
    server, mac: positional[1] ?? null, ip: positional[2] ?? null, jobId: jobId?.toLowerCase() ?? null, secret: secret?.toLowerCase() ?? null, enrol: enrol?.toLowerCase() ?? null,
    sysDir: flags.get('--sys') ?? '/sys', devDir: flags.get('--dev') ?? '/dev', reboot, checkMs, trace: flags.get('--trace') ?? null,
    uploadEncoding: uploadEncoding as UploadEncoding,
  };
}
