// The one validated configuration. TOML on disk; every key has a documented default (README);
// every problem is listed at once and nothing is corrected silently. The result is deep-frozen.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { ConfigError, errorMessage } from './errors.ts';
import { isLogLevel, type LogLevel } from './logger.ts';

export const DEFAULT_CONFIG_PATH = '/etc/netboot/netboot.toml';

/** MTFTP transfer sockets: `auto` picks gso, else sendmmsg (native addon), else dgram (node:dgram). */
export const SEND_PATHS = ['auto', 'gso', 'sendmmsg', 'dgram'] as const;
export type SendPath = (typeof SEND_PATHS)[number];
/** The PXE server's sockets: our batching addon (native/udp-batch), node:dgram, or the best available. */
export const IO_PATHS = ['auto', 'native', 'dgram'] as const;
export type IoPath = (typeof IO_PATHS)[number];

export interface PeerConfig {
  readonly id: string;
  /** host:port of the peer's Interface (TCP 490 by default). */
  readonly address: string;
  /** Per-peer key file; falls back to the site key. */
  readonly keyFile: string | null;
}

/** One `[[server.subnets]]` entry: settings for PXE clients in a subnet, usually behind a relay. */
export interface SubnetConfig {
  /** `network/prefix` as written; host bits must be zero. */
  readonly cidr: string;
  readonly network: string;
  readonly prefix: number;
  /** Boot server address (option 54, siaddr, option 66) for clients in this subnet; null = the usual choice. */
  readonly address: string | null;
  /** A label for logs and `netboot explain`. */
  readonly name: string | null;
}

export interface Config {
  /** Where the configuration came from (a path, or "embedded"). */
  readonly source: string;
  readonly log: { readonly level: LogLevel };
  readonly paths: { readonly data: string; readonly sbs: string; readonly sbsStore: string; readonly tftpRoot: string };
  readonly server: {
    /** Address advertised to clients (option 54, siaddr); null = the configured interface's. */
    readonly address: string | null;
    /** Network interface whose address is advertised when `address` is not set. */
    readonly interface: string | null;
    /** Local address the DHCP sockets bind to; 0.0.0.0 so broadcasts are received. */
    readonly bind: string;
    readonly dhcpPort: number;
    readonly proxyPort: number;
    /** Per-subnet settings; a client's subnet is matched by longest prefix (relay or client address). */
    readonly subnets: readonly SubnetConfig[];
    /** How the DHCP sockets receive and send: batched by our addon, node:dgram, or the best available. */
    readonly ioPath: IoPath;
  };
  readonly mtftp: {
    readonly port: number;
    readonly bind: string;
    readonly maxBlockSize: number;
    readonly maxWindowSize: number;
    readonly timeoutMs: number;
    readonly retries: number;
    /** How transfer sockets send: native addon with UDP GSO or sendmmsg, node:dgram, or the best available. */
    readonly sendPath: SendPath;
  };
  readonly interface: {
    readonly port: number;
    readonly bind: string;
    /** A dropped file is read once its size has been stable this long. */
    readonly settleMs: number;
    /** A file that does not parse is retried until unchanged this long, then rejected. */
    readonly parseRetryMs: number;
    /** TCP connections held on the port at once; past it, the busiest address gives way or the newcomer is refused. */
    readonly maxConnections: number;
    /** TCP connections held from one source address. */
    readonly maxConnectionsPerAddress: number;
  };
  readonly signal: { readonly port: number; readonly bind: string };
  readonly management: { readonly url: string | null; readonly timeoutMs: number };
  readonly site: { readonly id: string; readonly keyFile: string | null };
  readonly peers: readonly PeerConfig[];
  /** Package replication (packages/README.md). */
  readonly packages: {
    /** Full comparison of refs with every peer, catching anything a push missed. */
    readonly antiEntropyMs: number;
    /** How long a replaced version stays on disk before it is removed. */
    readonly gcGraceMs: number;
    /** Pause between scrub passes (re-hashing held versions); 0 = no scrub. */
    readonly scrubIntervalMs: number;
    /** Read rate of the scrub, MiB/s. */
    readonly scrubRateMib: number;
    /** Watch Ready versions' folders for files changed or deleted behind our back. */
    readonly watch: boolean;
    /** Chunk batches in flight per sync. */
    readonly fetchConcurrency: number;
    /** Cap on the fetch rate per sync, KiB/s; 0 = none (for slow site links). */
    readonly fetchRateKib: number;
  };
}

type Raw = Record<string, unknown>;

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly baseDir: string) {}

  section(root: Raw, name: string, keys: readonly string[]): Raw {
    const value = root[name];
    if (value === undefined) return {};
    if (!isTable(value)) {
      this.problems.push(`[${name}]: must be a table`);
      return {};
    }
    for (const key of Object.keys(value)) {
      if (!keys.includes(key)) this.problems.push(`[${name}] ${key}: unknown key (known: ${keys.join(', ')})`);
    }
    return value;
  }

  string(t: Raw, where: string, key: string, fallback: string): string {
    const v = t[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'string' || v === '') {
      this.problems.push(`${where} ${key}: must be a non-empty string`);
      return fallback;
    }
    return v;
  }

  optionalString(t: Raw, where: string, key: string): string | null {
    const v = t[key];
    if (v === undefined || v === '') return null;
    if (typeof v !== 'string') {
      this.problems.push(`${where} ${key}: must be a string`);
      return null;
    }
    return v;
  }

  path(t: Raw, where: string, key: string, fallback: string): string {
    const v = this.string(t, where, key, fallback);
    return isAbsolute(v) ? v : resolve(this.baseDir, v);
  }

  bool(t: Raw, where: string, key: string, fallback: boolean): boolean {
    const v = t[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') {
      this.problems.push(`${where} ${key}: must be true or false`);
      return fallback;
    }
    return v;
  }

  optionalPath(t: Raw, where: string, key: string): string | null {
    const v = this.optionalString(t, where, key);
    return v === null || isAbsolute(v) ? v : resolve(this.baseDir, v);
  }

  int(t: Raw, where: string, key: string, fallback: number, min: number, max: number): number {
    const v = t[key];
    if (v === undefined) return fallback;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${where} ${key}: must be an integer from ${min} to ${max} (got ${JSON.stringify(String(v))})`);
      return fallback;
    }
    return n;
  }

  ipv4(t: Raw, where: string, key: string, fallback: string | null): string | null {
    const v = this.optionalString(t, where, key) ?? fallback;
    if (v !== null && !isIPv4(v)) {
      this.problems.push(`${where} ${key}: must be an IPv4 address (got ${JSON.stringify(v)})`);
      return fallback;
    }
    return v;
  }
}

export function ipv4ToInt(address: string): number {
  return address.split('.').reduce((n, part) => ((n << 8) | Number(part)) >>> 0, 0);
}

export function intToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
}

/** Whether `address` lies in `network/prefix`. */
export function inSubnet(address: string, network: string, prefix: number): boolean {
  const mask = maskOf(prefix);
  return ((ipv4ToInt(address) & mask) >>> 0) === ((ipv4ToInt(network) & mask) >>> 0);
}

/** The most specific subnet holding `address` (longest prefix), or null. */
export function matchSubnet<T extends { network: string; prefix: number }>(subnets: readonly T[], address: string): T | null {
  let best: T | null = null;
  for (const s of subnets) if ((best === null || s.prefix > best.prefix) && inSubnet(address, s.network, s.prefix)) best = s;
  return best;
}

const SUBNET_KEYS = ['cidr', 'address', 'name'];

function readSubnets(r: Reader, value: unknown): SubnetConfig[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    r.problems.push('[[server.subnets]]: must be an array of tables');
    return [];
  }
  const out: SubnetConfig[] = [];
  value.forEach((entry: unknown, n) => {
    const where = `[[server.subnets]] #${n + 1}`;
    if (!isTable(entry)) return void r.problems.push(`${where}: must be a table`);
    for (const key of Object.keys(entry)) {
      if (!SUBNET_KEYS.includes(key)) r.problems.push(`${where} ${key}: unknown key (known: ${SUBNET_KEYS.join(', ')})`);
    }
    const cidr = r.string(entry, where, 'cidr', '');
    if (cidr === '' && entry.cidr === undefined) r.problems.push(`${where} cidr: required (e.g. "10.92.0.0/24")`);
    const address = r.ipv4(entry, where, 'address', null);
    if (address !== null && !isUnicast(address)) r.problems.push(`${where} address: must be a unicast address (got ${JSON.stringify(address)})`);
    const name = r.optionalString(entry, where, 'name');
    if (name !== null && name.length > 64) r.problems.push(`${where} name: at most 64 characters`);
    if (cidr === '') return;
    const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(cidr);
    if (m === null || !isIPv4(m[1]!) || Number(m[2]) > 32) {
      return void r.problems.push(`${where} cidr: must be an IPv4 network as address/prefix, prefix 0-32 (got ${JSON.stringify(cidr)})`);
    }
    const prefix = Number(m[2]);
    const network = intToIpv4((ipv4ToInt(m[1]!) & maskOf(prefix)) >>> 0);
    if (network !== m[1]) return void r.problems.push(`${where} cidr: ${cidr} has host bits set (the network is ${network}/${prefix})`);
    if (out.some((s) => s.network === network && s.prefix === prefix)) return void r.problems.push(`${where} cidr: ${cidr} is listed twice`);
    out.push({ cidr, network, prefix, address, name });
  });
  return out;
}

/** Not 0.0.0.0/8, loopback excepted (tests), multicast, reserved or the limited broadcast. */
export function isUnicast(address: string): boolean {
  const first = ipv4ToInt(address) >>> 24;
  return first !== 0 && first < 224;
}

export function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

function isTable(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

const PORT = [0, 65535] as const;

/** Validates a parsed TOML document. `baseDir` anchors relative paths (the config file's folder). */
export function buildConfig(raw: Raw, source: string, baseDir: string): Config {
  const r = new Reader(baseDir);
  const known = ['log', 'paths', 'server', 'mtftp', 'interface', 'signal', 'management', 'site', 'peers', 'packages'];
  for (const key of Object.keys(raw)) if (!known.includes(key)) r.problems.push(`[${key}]: unknown section`);

  const log = r.section(raw, 'log', ['level']);
  const levelRaw = log.level ?? 'info';
  if (!isLogLevel(levelRaw)) r.problems.push(`[log] level: must be one of debug, info, warn, error`);
  const level: LogLevel = isLogLevel(levelRaw) ? levelRaw : 'info';

  const p = r.section(raw, 'paths', ['data', 'sbs', 'sbs_store', 'tftp_root']);
  const data = r.path(p, '[paths]', 'data', '/var/lib/netboot');
  const paths = {
    data,
    sbs: r.path(p, '[paths]', 'sbs', resolve(data, 'sbs')),
    sbsStore: r.path(p, '[paths]', 'sbs_store', resolve(data, 'sbsstore')),
    tftpRoot: r.path(p, '[paths]', 'tftp_root', resolve(data, 'tftp')),
  };

  const s = r.section(raw, 'server', ['address', 'interface', 'bind', 'dhcp_port', 'proxy_port', 'subnets', 'io_path']);
  const ioPathRaw = r.string(s, '[server]', 'io_path', 'auto');
  if (!(IO_PATHS as readonly string[]).includes(ioPathRaw)) r.problems.push(`[server] io_path: must be one of ${IO_PATHS.join(', ')}`);
  const server = {
    address: r.ipv4(s, '[server]', 'address', null),
    interface: r.optionalString(s, '[server]', 'interface'),
    bind: r.ipv4(s, '[server]', 'bind', '0.0.0.0') ?? '0.0.0.0',
    dhcpPort: r.int(s, '[server]', 'dhcp_port', 67, ...PORT),
    proxyPort: r.int(s, '[server]', 'proxy_port', 4011, ...PORT),
    subnets: readSubnets(r, s.subnets),
    ioPath: (IO_PATHS as readonly string[]).includes(ioPathRaw) ? (ioPathRaw as IoPath) : 'auto',
  };

  const m = r.section(raw, 'mtftp', ['port', 'bind', 'max_block_size', 'max_window_size', 'timeout_ms', 'retries', 'send_path']);
  const sendPathRaw = r.string(m, '[mtftp]', 'send_path', 'auto');
  if (!(SEND_PATHS as readonly string[]).includes(sendPathRaw)) r.problems.push(`[mtftp] send_path: must be one of ${SEND_PATHS.join(', ')}`);
  const mtftp = {
    port: r.int(m, '[mtftp]', 'port', 69, ...PORT),
    bind: r.ipv4(m, '[mtftp]', 'bind', '0.0.0.0') ?? '0.0.0.0',
    maxBlockSize: r.int(m, '[mtftp]', 'max_block_size', 65464, 8, 65464),
    maxWindowSize: r.int(m, '[mtftp]', 'max_window_size', 64, 1, 65535),
    timeoutMs: r.int(m, '[mtftp]', 'timeout_ms', 1000, 10, 255000),
    retries: r.int(m, '[mtftp]', 'retries', 6, 1, 100),
    sendPath: (SEND_PATHS as readonly string[]).includes(sendPathRaw) ? (sendPathRaw as SendPath) : 'auto',
  };

  const i = r.section(raw, 'interface', ['port', 'bind', 'settle_ms', 'parse_retry_ms', 'max_connections', 'max_connections_per_address']);
  const iface = {
    port: r.int(i, '[interface]', 'port', 490, ...PORT),
    bind: r.ipv4(i, '[interface]', 'bind', '0.0.0.0') ?? '0.0.0.0',
    settleMs: r.int(i, '[interface]', 'settle_ms', 50, 0, 60000),
    parseRetryMs: r.int(i, '[interface]', 'parse_retry_ms', 5000, 0, 600000),
    maxConnections: r.int(i, '[interface]', 'max_connections', 1024, 1, 1_000_000),
    maxConnectionsPerAddress: r.int(i, '[interface]', 'max_connections_per_address', 64, 1, 1_000_000),
  };

  const g = r.section(raw, 'signal', ['port', 'bind']);
  const signal = {
    port: r.int(g, '[signal]', 'port', 806, ...PORT),
    bind: r.ipv4(g, '[signal]', 'bind', '127.0.0.1') ?? '127.0.0.1',
  };

  const mg = r.section(raw, 'management', ['url', 'timeout_ms']);
  const url = r.optionalString(mg, '[management]', 'url');
  if (url !== null) {
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') r.problems.push(`[management] url: must be http:// or https://`);
    } catch {
      r.problems.push(`[management] url: not a URL (got ${JSON.stringify(url)})`);
    }
  }
  const management = { url: url?.replace(/\/+$/, '') ?? null, timeoutMs: r.int(mg, '[management]', 'timeout_ms', 10000, 100, 600000) };

  const st = r.section(raw, 'site', ['id', 'key_file']);
  const site = { id: r.string(st, '[site]', 'id', hostname()), keyFile: r.optionalPath(st, '[site]', 'key_file') };
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(site.id)) r.problems.push(`[site] id: must match [A-Za-z0-9._-]{1,64}`);

  const peers: PeerConfig[] = [];
  const rawPeers = raw.peers ?? [];
  if (!Array.isArray(rawPeers)) {
    r.problems.push('[[peers]]: must be an array of tables');
  } else {
    rawPeers.forEach((entry: unknown, n) => {
      const where = `[[peers]] #${n + 1}`;
      if (!isTable(entry)) return void r.problems.push(`${where}: must be a table`);
      for (const key of Object.keys(entry)) {
        if (!['id', 'address', 'key_file'].includes(key)) r.problems.push(`${where} ${key}: unknown key (known: id, address, key_file)`);
      }
      const id = r.string(entry, where, 'id', '');
      const address = r.string(entry, where, 'address', '');
      if (id === '' && entry.id === undefined) r.problems.push(`${where} id: required`);
      if (address === '' && entry.address === undefined) r.problems.push(`${where} address: required`);
      else if (address !== '' && !/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(address)) r.problems.push(`${where} address: must be host or host:port`);
      if (peers.some((x) => x.id === id)) r.problems.push(`${where} id: duplicate peer id ${JSON.stringify(id)}`);
      peers.push({ id, address, keyFile: r.optionalPath(entry, where, 'key_file') });
    });
    if (peers.length > 0 && site.keyFile === null && peers.some((x) => x.keyFile === null)) {
      r.problems.push('[site] key_file: required when [[peers]] are configured without their own key_file');
    }
  }

  const pk = r.section(raw, 'packages', ['anti_entropy_ms', 'gc_grace_ms', 'scrub_interval_ms', 'scrub_rate_mib', 'watch', 'fetch_concurrency', 'fetch_rate_kib']);
  const packages = {
    antiEntropyMs: r.int(pk, '[packages]', 'anti_entropy_ms', 300_000, 1000, 86_400_000),
    gcGraceMs: r.int(pk, '[packages]', 'gc_grace_ms', 3_600_000, 0, 31 * 86_400_000),
    scrubIntervalMs: r.int(pk, '[packages]', 'scrub_interval_ms', 3_600_000, 0, 31 * 86_400_000),
    scrubRateMib: r.int(pk, '[packages]', 'scrub_rate_mib', 32, 1, 100_000),
    watch: r.bool(pk, '[packages]', 'watch', true),
    fetchConcurrency: r.int(pk, '[packages]', 'fetch_concurrency', 4, 1, 64),
    fetchRateKib: r.int(pk, '[packages]', 'fetch_rate_kib', 0, 0, 100_000_000),
  };

  if (r.problems.length > 0) throw new ConfigError(source, r.problems);
  return deepFreeze({ source, log: { level }, paths, server, mtftp, interface: iface, signal, management, site, peers, packages });
}

export function parseConfigText(text: string, source: string, baseDir: string): Config {
  let raw: Raw;
  try {
    raw = parseToml(text) as Raw;
  } catch (err) {
    throw new ConfigError(source, [`not valid TOML: ${errorMessage(err)}`]);
  }
  return buildConfig(raw, source, baseDir);
}

export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`cannot read: ${errorMessage(err)}`]);
  }
  return parseConfigText(text, path, dirname(resolve(path)));
}

/** --config beats NETBOOT_CONFIG beats the default path. */
export function configPathFrom(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env.NETBOOT_CONFIG ?? DEFAULT_CONFIG_PATH;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
