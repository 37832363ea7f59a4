// The shape of the validated configuration every service receives (deep-frozen). Each property
// has one entry in config-schema.ts, which says its key in the file, default and range.
import type { LogLevel } from './logger.ts';
import type { IoPath, SendPath } from './config-schema.ts';

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
    /** Concurrent transfers, overall and per client address. */
    readonly maxTransfers: number;
    readonly maxTransfersPerClient: number;
    /** Longest a transfer may last, seconds. */
    readonly maxSessionS: number;
  };
  /** Boot HTTP: the MTFTP process serves the same read-only view over HTTP (services/mtftp/http-server.ts). */
  readonly http: {
    readonly enabled: boolean;
    readonly port: number;
    readonly bind: string;
    /** Concurrent connections, overall and per client address. */
    readonly maxConnections: number;
    readonly maxConnectionsPerClient: number;
    /** A connection idle this long (no request, or a client not reading) is closed, seconds. */
    readonly idleTimeoutS: number;
    /** Longest one response may take, seconds. */
    readonly maxResponseS: number;
  };
  readonly interface: {
    readonly port: number;
    readonly bind: string;
    /** A dropped file is read once its size has been stable this long. */
    readonly settleMs: number;
    /** A file that does not parse is retried until unchanged this long, then rejected. */
    readonly parseRetryMs: number;
    /** Concurrent connections to the Interface port, overall and per remote address. */
    readonly maxConnections: number;
    readonly maxConnectionsPerAddress: number;
    /** A larger SBS file is set aside as too large. */
    readonly maxSbsFileMib: number;
  };
  readonly signal: { readonly port: number; readonly bind: string };
  /** The metrics and status page address (web/README in the report: `[web]`). */
  readonly web: {
    readonly enabled: boolean;
    readonly port: number;
    readonly bind: string;
    /** A file holding the token remote clients must present; null: loopback clients only. */
    readonly tokenFile: string | null;
  };
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
  /** The preboot builder (bootwiz/). */
  readonly bootwiz: {
    /** Build linuxpe-x64 in the background when the Interface starts and there is no build yet. */
    readonly buildOnStart: boolean;
    /** A standalone site's first state offers unknown machines a menu: local disk (default) or LinuxPE. */
    readonly seedMenu: boolean;
    /** Seconds that menu waits before it boots the local disk. */
    readonly menuTimeoutSec: number;
    /** Put Debian's iPXE builds (undionly.kpxe, ipxe.efi, snponly.efi) into the TFTP root where missing. */
    readonly installIpxe: boolean;
    /** The imaging agent's entry file bundled into agent.img; null = the install's images/agent/main.ts. */
    readonly agentEntry: string | null;
  };
}
