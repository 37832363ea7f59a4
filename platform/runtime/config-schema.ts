// One schema entry per config key: its TOML section and name, its property in `Config`, its type,
// default, range or allowed values, and one line of documentation. The loader (config.ts), the
// key table of `netboot config doc` (config-doc.ts) and the cross-key rules (config-rules.ts) all
// read this table; nothing else lists keys. The mapped type below makes the compiler check that
// every property of `Config` has exactly one entry of the matching type.
import { hostname } from 'node:os';
import type { Config, PeerConfig, SubnetConfig } from './config-types.ts';
import { parseHostPort } from './host-port.ts';

/** MTFTP transfer sockets: `auto` picks gso, else sendmmsg (native addon), else dgram (node:dgram). */
export const SEND_PATHS = ['auto', 'gso', 'sendmmsg', 'dgram'] as const;
export type SendPath = (typeof SEND_PATHS)[number];
/** The PXE server's sockets: our batching addon (native/udp-batch), node:dgram, or the best available. */
export const IO_PATHS = ['auto', 'native', 'dgram'] as const;
export type IoPath = (typeof IO_PATHS)[number];
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

interface Common {
  /** The key's name in the file. */
  readonly key: string;
  readonly doc: string;
  /** How the default reads in the key table when it is not a plain value. */
  readonly defaultDoc?: string;
}
/** A listening port: checked for clashes with the others on the section's `bind`. */
export type Listen = 'udp' | 'tcp';
export interface IntSpec extends Common { readonly type: 'int'; readonly default: number; readonly min: number; readonly max: number; readonly listen?: Listen }
export interface BoolSpec extends Common { readonly type: 'bool'; readonly default: boolean }
/** Values of the same section read so far (by property), for defaults that follow another key. */
export type Earlier = Readonly<Record<string, unknown>>;
export interface TextSpec extends Common {
  /** `path`: relative to the config file's folder. `ipv4`: a dotted quad. `url`: http(s), no trailing slash. */
  readonly type: 'string' | 'path' | 'ipv4' | 'url';
  /** null: optional, unset by default (an empty string also means unset). */
  readonly default: string | null | ((earlier: Earlier) => string);
  /** A further rule on the value: the problem, or null. */
  readonly check?: (value: string) => string | null;
}
export interface EnumSpec extends Common { readonly type: 'enum'; readonly values: readonly string[]; readonly default: string }
export type FieldSpec = IntSpec | BoolSpec | TextSpec | EnumSpec;
/** An array of tables (`[[peers]]`, `[[server.subnets]]`): each entry's keys, then `build`. */
export interface TablesSpec<E> extends Common {
  readonly type: 'tables';
  readonly entry: Readonly<Record<string, FieldSpec>>;
  /** File keys every entry must have, with an example for the message. */
  readonly required: Readonly<Record<string, string>>;
  /** The entry from its values (by file key); a problem about `key` is returned instead when there is one. */
  readonly build: (v: Readonly<Record<string, unknown>>) => E | { readonly key: string; readonly problem: string };
}

type SpecFor<T> = T extends readonly (infer E)[] ? TablesSpec<E> : T extends number ? IntSpec : T extends boolean ? BoolSpec : TextSpec | EnumSpec;
export type SectionSpec<S> = { readonly [P in keyof S]-?: SpecFor<S[P]> };
type Sections = Omit<Config, 'source' | 'peers'>;
export type Schema = { readonly [S in keyof Sections]: SectionSpec<Sections[S]> };

const port = (n: number, listen: Listen, doc: string): IntSpec => ({ key: 'port', type: 'int', default: n, min: 0, max: 65535, listen, doc });
const ipv4 = (key: string, def: string | null, doc: string): TextSpec => ({ key, type: 'ipv4', default: def, doc });
const int = (key: string, def: number, min: number, max: number, doc: string): IntSpec => ({ key, type: 'int', default: def, min, max, doc });
const DAY_MS = 86_400_000;

export const SCHEMA: Schema = {
  log: {
    level: { key: 'level', type: 'enum', values: LOG_LEVELS, default: 'info', doc: 'least severe level logged; logs are JSON lines on stdout (journald keeps them as-is)' },
  },
  paths: {
    data: { key: 'data', type: 'path', default: '/var/lib/netboot', doc: 'state (SQLite), packages, control sockets (`run/*.sock`)' },
    sbs: { key: 'sbs', type: 'path', default: (e) => `${e.data}/sbs`, defaultDoc: '`<data>/sbs`', doc: 'the SBS drop folder' },
    sbsStore: { key: 'sbs_store', type: 'path', default: (e) => `${e.data}/sbsstore`, defaultDoc: '`<data>/sbsstore`', doc: 'applied files (`<YYYY-MM-DD>/`), rejected files (`rejected/`)' },
    tftpRoot: { key: 'tftp_root', type: 'path', default: (e) => `${e.data}/tftp`, defaultDoc: '`<data>/tftp`', doc: 'the only folder MTFTP reads from (anyone on the LAN can read it)' },
  },
  server: {
    address: ipv4('address', null, 'IPv4 address advertised to clients (option 54, siaddr); set this or `interface`, not both'),
    interface: { key: 'interface', type: 'string', default: null, check: (v) => (/^[A-Za-z0-9._:@-]{1,15}$/.test(v) ? null : 'must be a network interface name (at most 15 characters, no spaces or slashes)'), doc: 'network interface whose IPv4 address is advertised (and whose segment gets broadcast replies)' },
    bind: ipv4('bind', '0.0.0.0', 'local address of the DHCP sockets (0.0.0.0 to receive broadcasts)'),
    dhcpPort: { ...int('dhcp_port', 67, 0, 65535, 'UDP port of proxyDHCP'), listen: 'udp' },
    proxyPort: { ...int('proxy_port', 4011, 0, 65535, 'UDP port of the PXE boot server'), listen: 'udp' },
    subnets: {
      key: 'subnets', type: 'tables', doc: 'settings for PXE clients in a subnet, usually behind a relay; matched by longest prefix',
      entry: {
        cidr: { key: 'cidr', type: 'string', default: null, check: cidrProblem, doc: 'the subnet, `network/prefix` (host bits zero)' },
        address: { key: 'address', type: 'ipv4', default: null, check: unicastProblem, doc: 'boot server address for clients in this subnet (default: the usual choice)' },
        name: { key: 'name', type: 'string', default: null, check: (v) => (v.length > 64 ? 'at most 64 characters' : null), doc: 'a label for logs and `netboot explain`' },
      },
      required: { cidr: '"10.92.0.0/24"' },
      build: buildSubnet,
    },
    ioPath: { key: 'io_path', type: 'enum', values: IO_PATHS, default: 'auto', doc: 'DHCP sockets: `native` (our addon, batched) or `dgram` (node:dgram); `auto` takes `native` when built and logs why' },
  },
  mtftp: {
    port: port(69, 'udp', 'UDP port of TFTP'),
    bind: ipv4('bind', '0.0.0.0', 'TFTP local address'),
    maxBlockSize: int('max_block_size', 65464, 8, 65464, 'largest blksize granted, bytes (RFC 2348)'),
    maxWindowSize: int('max_window_size', 64, 1, 65535, 'largest windowsize granted (RFC 7440)'),
    timeoutMs: int('timeout_ms', 1000, 10, 255_000, 'retransmission timeout unless the client asks for one, ms (RFC 2349)'),
    retries: int('retries', 6, 1, 100, 'retransmissions before a transfer is abandoned'),
    sendPath: { key: 'send_path', type: 'enum', values: SEND_PATHS, default: 'auto', doc: 'transfer sockets: `gso` or `sendmmsg` (our addon), `dgram` (node:dgram); `auto` takes the best available and logs why' },
    maxTransfers: int('max_transfers', 512, 1, 1_000_000, 'concurrent transfers; a request beyond it is refused with a reason'),
    maxTransfersPerClient: int('max_transfers_per_client', 16, 1, 1_000_000, 'concurrent transfers per client address'),
    maxSessionS: int('max_session_s', 3600, 1, 7 * 86_400, 'longest a transfer may last, seconds'),
  },
  http: {
    enabled: { key: 'enabled', type: 'bool', default: true, doc: 'serve the TFTP view over HTTP too (Boot HTTP): iPXE scripts then fetch kernels, initrds and WIMs over HTTP, and UEFI HTTP Boot clients are answered' },
    port: port(8490, 'tcp', 'TCP port of Boot HTTP (unprivileged, clear of 80 and 8080 where a web or management server often runs on the same host; machines only see it in the URLs we hand them)'),
    bind: ipv4('bind', '0.0.0.0', 'local address of Boot HTTP'),
    maxConnections: int('max_connections', 512, 1, 1_000_000, 'concurrent HTTP connections; more are closed at once'),
    maxConnectionsPerClient: int('max_connections_per_client', 16, 1, 1_000_000, 'concurrent HTTP connections per client address'),
    idleTimeoutS: int('idle_timeout_s', 30, 1, 3600, 'a connection sending no request, or not reading its response, this long is closed, seconds'),
    maxResponseS: int('max_response_s', 3600, 1, 7 * 86_400, 'longest one response may take, seconds'),
  },
  interface: {
    port: port(490, 'tcp', 'TCP port of the Interface: state feed, peers, package transfer'),
    bind: ipv4('bind', '0.0.0.0', 'local address of the Interface port'),
    settleMs: int('settle_ms', 50, 0, 60_000, 'a dropped file is read once its size has been stable this long'),
    parseRetryMs: int('parse_retry_ms', 5000, 0, 600_000, 'a file that is not complete JSON is retried until unchanged this long, then rejected'),
    maxConnections: int('max_connections', 1024, 1, 1_000_000, 'concurrent connections to the Interface port'),
    maxConnectionsPerAddress: int('max_connections_per_address', 64, 1, 1_000_000, 'concurrent connections per remote address'),
    maxSbsFileMib: int('max_sbs_file_mib', 64, 1, 256, 'a larger SBS file is set aside as `too large` without being read, MiB (past 256 MiB a document could not be decoded)'),
  },
  signal: {
    port: port(806, 'tcp', 'TCP port where the PXE server reports its (re)starts'),
    bind: ipv4('bind', '127.0.0.1', 'local address of the Signal port'),
  },
  web: {
    enabled: { key: 'enabled', type: 'bool', default: true, doc: 'serve the Prometheus metrics (/metrics) and the live status page (/) of this site server, from the Interface process' },
    port: port(9490, 'tcp', 'TCP port of the metrics and status page'),
    bind: ipv4('bind', '127.0.0.1', 'local address of the metrics and status page (0.0.0.0: every address; clients not on loopback need the token)'),
    tokenFile: { key: 'token_file', type: 'path', default: null, doc: 'file holding the access token for clients not on loopback (`Authorization: Bearer <token>` or `?token=`); unset = loopback clients only' },
  },
  management: {
    url: { key: 'url', type: 'url', default: null, doc: 'management server base URL (http or https); unset = standalone' },
    timeoutMs: int('timeout_ms', 10_000, 100, 600_000, 'per-request timeout toward the management server'),
  },
  site: {
    id: { key: 'id', type: 'string', default: () => hostname(), defaultDoc: 'the host name', check: (v) => (/^[A-Za-z0-9._-]{1,64}$/.test(v) ? null : 'must match [A-Za-z0-9._-]{1,64}'), doc: 'this server\'s id among its peers' },
    keyFile: { key: 'key_file', type: 'path', default: null, doc: 'site key shared with peers (mode 0600, 32 random bytes, hex or base64); required when a peer has no key_file' },
  },
  packages: {
    antiEntropyMs: int('anti_entropy_ms', 300_000, 1000, DAY_MS, 'full ref comparison with every peer (catches anything a push missed)'),
    gcGraceMs: int('gc_grace_ms', 3_600_000, 0, 31 * DAY_MS, 'how long a replaced version is kept'),
    scrubIntervalMs: int('scrub_interval_ms', 3_600_000, 0, 31 * DAY_MS, 'pause between scrub passes (re-hashing held versions); 0 = no scrub'),
    scrubRateMib: int('scrub_rate_mib', 32, 1, 100_000, 'scrub read rate, MiB/s'),
    watch: { key: 'watch', type: 'bool', default: true, doc: 'watch Ready versions\' folders for files changed or deleted behind our back' },
    fetchConcurrency: int('fetch_concurrency', 4, 1, 64, 'chunk batches in flight per sync'),
    fetchRateKib: int('fetch_rate_kib', 0, 0, 100_000_000, 'cap on the fetch rate per sync, KiB/s (slow site links); 0 = none'),
  },
  bootwiz: {
    buildOnStart: { key: 'build_on_start', type: 'bool', default: false, doc: 'build `linuxpe-x64` in the background when the Interface starts and there is no build yet' },
    seedMenu: { key: 'seed_menu', type: 'bool', default: false, doc: 'a standalone site\'s first state offers unknown machines a menu: local disk (the default) or LinuxPE' },
    menuTimeoutSec: int('menu_timeout_sec', 5, 0, 3600, 'seconds that menu waits before it boots the local disk'),
    installIpxe: { key: 'install_ipxe', type: 'bool', default: false, doc: 'put Debian\'s iPXE builds (`undionly.kpxe`, `ipxe.efi`, `snponly.efi`) into the TFTP root where missing' },
    agentEntry: { key: 'agent_entry', type: 'path', default: null, defaultDoc: 'the install\'s `images/agent/main.ts`', doc: 'the imaging agent\'s entry file, bundled into the preboot\'s `agent.img` (a missing file gives a LinuxPE without an agent)' },
  },
};

/** `[[peers]]`: the other sites this one replicates jobs and packages with. */
export const PEERS: TablesSpec<PeerConfig> = {
  key: 'peers', type: 'tables', doc: 'peer sites this one replicates jobs and packages with',
  entry: {
    id: { key: 'id', type: 'string', default: null, check: (v) => (/^[A-Za-z0-9._-]{1,64}$/.test(v) ? null : 'must match [A-Za-z0-9._-]{1,64}'), doc: 'the peer\'s `[site] id`' },
    address: { key: 'address', type: 'string', default: null, check: (v) => { const r = parseHostPort(v, 1); return r.ok ? null : `must be host or host:port (${r.reason})`; }, doc: 'its Interface: `host` or `host:port` (default port: `[interface] port`)' },
    key_file: { key: 'key_file', type: 'path', default: null, defaultDoc: '`[site] key_file`', doc: 'key shared with this peer (same rules as the site key)' },
  },
  required: { id: '"site-b"', address: '"10.0.0.2:490"' },
  build: (v) => ({ id: v.id as string, address: v.address as string, keyFile: v.key_file as string | null }),
};

/** Not 0.0.0.0/8 (loopback is allowed, for tests), multicast, reserved or the limited broadcast. */
export function isUnicast(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return first !== 0 && first < 224;
}

function unicastProblem(v: string): string | null {
  return isUnicast(v) ? null : 'must be a unicast address';
}

export function ipv4ToInt(address: string): number {
  return address.split('.').reduce((n, part) => ((n << 8) | Number(part)) >>> 0, 0);
}

export function intToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
}

const CIDR = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/;

function cidrProblem(cidr: string): string | null {
  const m = CIDR.exec(cidr);
  return m === null || !m[1]!.split('.').every((p) => Number(p) <= 255) || Number(m[2]) > 32 ? 'must be an IPv4 network as address/prefix, prefix 0-32' : null;
}

function buildSubnet(v: Readonly<Record<string, unknown>>): SubnetConfig | { key: string; problem: string } {
  const cidr = v.cidr as string;
  const m = CIDR.exec(cidr)!;
  const prefix = Number(m[2]);
  const network = intToIpv4((ipv4ToInt(m[1]!) & maskOf(prefix)) >>> 0);
  if (network !== m[1]) return { key: 'cidr', problem: `has host bits set (the network is ${network}/${prefix})` };
  return { cidr, network, prefix, address: v.address as string | null, name: v.name as string | null };
}
