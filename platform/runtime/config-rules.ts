// Rules across keys, after each key passed its own (config-schema.ts). A problem refuses the
// config: settings that contradict each other, or where one silently cancels another. A warning
// is for settings that are legal (tests rely on some of them) but probably not what was meant.
// A rule whose key was itself refused stays quiet, so one mistake gives one message.
import { isAbsolute, relative, resolve } from 'node:path';
import { SCHEMA, type Listen } from './config-schema.ts';
import type { Config } from './config-types.ts';
import { parseHostPort } from './host-port.ts';

export interface RuleFindings {
  readonly problems: string[];
  readonly warnings: string[];
}

/** A value as the file would spell it: strings quoted, numbers and booleans bare. */
export function showValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x)) ?? String(v);
}

/** The shape of every config message, in the file's own words: `[server] dhcp_port: must be … (got 70000)`. */
export function keyProblem(where: string, key: string, text: string, value?: unknown): string {
  return `${where} ${key}: ${text}${value === undefined ? '' : ` (got ${showValue(value)})`}`;
}

const say = (where: string, key: string, text: string, value: unknown): string => keyProblem(where, key, text, value);

interface Listener {
  readonly where: string;
  readonly key: string;
  readonly port: number;
  readonly proto: Listen;
  readonly bind: string;
}

/** Every port a service listens on, from the schema's `listen` marks, with its section's `bind`. */
export function listeners(config: Config): Listener[] {
  const out: Listener[] = [];
  for (const [section, specs] of Object.entries(SCHEMA)) {
    const values = config[section as keyof typeof SCHEMA] as unknown as Record<string, unknown>;
    for (const [prop, spec] of Object.entries(specs)) {
      if (spec.type !== 'int' || spec.listen === undefined) continue;
      out.push({ where: `[${section}]`, key: spec.key, port: values[prop] as number, proto: spec.listen, bind: values.bind as string });
    }
  }
  return out;
}

const overlaps = (a: string, b: string): boolean => a === b || a === '0.0.0.0' || b === '0.0.0.0';
const isLoopback = (host: string): boolean => host === 'localhost' || /^127\./.test(host);
/** Whether `inner` is `outer` or lies inside it. */
const within = (inner: string, outer: string): boolean => {
  const rel = relative(resolve(outer), resolve(inner));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

export interface RuleContext {
  /** `section.key` of every key given in the file, and of every key refused by its own rule. */
  readonly given: ReadonlySet<string>;
  readonly failed: ReadonlySet<string>;
  /** The `[[peers]]` entries as written, including those refused (they still need a key). */
  readonly peerEntries: readonly Readonly<Record<string, unknown>>[];
  /** A `[[peers]]` or `[[server.subnets]]` entry's number in the file. */
  readonly numberOf: (entry: object) => number;
}

export function crossCheck(c: Config, { given, failed, peerEntries, numberOf }: RuleContext): RuleFindings {
  const problems: string[] = [];
  const warnings: string[] = [];
  const ok = (...ids: string[]): boolean => ids.every((id) => !failed.has(id));

  // [server] address wins over interface, which would then be ignored: replies would go by the
  // routing table instead of the interface, and broadcasts leave by the default route.
  if (c.server.address !== null && c.server.interface !== null) {
    problems.push(say('[server]', 'interface', `contradicts [server] address = ${JSON.stringify(c.server.address)}, which would silently win; remove interface to advertise exactly that address, or remove address to advertise the interface's own`, c.server.interface));
  }

  // Two of our listening sockets on the same protocol, port and (overlapping) address.
  const ls = listeners(c).filter((l) => ok(`${l.where.slice(1, -1)}.${l.key}`, `${l.where.slice(1, -1)}.bind`));
  ls.forEach((l, i) => {
    if (l.port === 0) {
      if (given.has(`${l.where.slice(1, -1)}.${l.key}`)) warnings.push(say(l.where, l.key, 'port 0 lets the kernel pick a random port, which no client or other service can find (useful only in tests)', 0));
      return;
    }
    const other = ls.slice(0, i).find((o) => o.port === l.port && o.proto === l.proto && overlaps(o.bind, l.bind));
    if (other !== undefined) problems.push(say(l.where, l.key, `clashes with ${other.where} ${other.key}: both ${l.proto.toUpperCase()} port ${l.port} on ${other.bind === l.bind ? l.bind : `${other.bind} and ${l.bind}`}`, l.port));
  });

  // Peers: unique, not ourselves, each with a key.
  const seenIds = new Set<string>();
  const seenAddresses = new Map<string, string>();
  c.peers.forEach((p) => {
    const at = `[[peers]] #${numberOf(p)}`;
    if (seenIds.has(p.id)) problems.push(say(at, 'id', 'duplicate peer id', p.id));
    seenIds.add(p.id);
    if (p.id === c.site.id) problems.push(say(at, 'id', 'is this site\'s own [site] id; a site is not its own peer', p.id));
    const a = parseHostPort(p.address, c.interface.port);
    const key = a.ok ? `${a.host.toLowerCase()}:${a.port}` : p.address;
    const first = seenAddresses.get(key);
    if (first !== undefined) problems.push(say(at, 'address', `is also the address of peer ${JSON.stringify(first)}`, p.address));
    else seenAddresses.set(key, p.id);
    if (a.ok && isLoopback(c.interface.bind) && !isLoopback(a.host)) {
      warnings.push(say(at, 'address', `is on another host, but [interface] bind = ${JSON.stringify(c.interface.bind)} accepts only local connections, so this peer cannot reach us`, p.address));
    }
  });
  if (c.site.keyFile === null && ok('site.key_file') && peerEntries.some((e) => e.key_file === undefined || e.key_file === '')) {
    problems.push('[site] key_file: required when [[peers]] are configured without their own key_file (got none)');
  }
  if (peerEntries.length === 0 && c.site.keyFile !== null) warnings.push(say('[site]', 'key_file', 'has no effect: no [[peers]] are configured', c.site.keyFile));

  const seenCidrs = new Set<string>();
  c.server.subnets.forEach((s) => {
    if (seenCidrs.has(`${s.network}/${s.prefix}`)) problems.push(say(`[[server.subnets]] #${numberOf(s)}`, 'cidr', 'is listed twice', s.cidr));
    seenCidrs.add(`${s.network}/${s.prefix}`);
  });

  // Folders: the drop folder and the store must be apart; anyone on the LAN reads tftp_root.
  const p = c.paths;
  if (within(p.sbs, p.sbsStore) || within(p.sbsStore, p.sbs)) {
    problems.push(say('[paths]', 'sbs_store', `overlaps [paths] sbs = ${JSON.stringify(p.sbs)}: stored files would be picked up again as drops`, p.sbsStore));
  }
  for (const [key, path] of [['data', p.data], ['sbs', p.sbs], ['sbs_store', p.sbsStore]] as const) {
    if (within(path, p.tftpRoot)) problems.push(say('[paths]', 'tftp_root', `contains [paths] ${key} = ${JSON.stringify(path)}, which TFTP would then serve to anyone on the LAN`, p.tftpRoot));
  }
  const keyFiles: [string, string | null][] = [['[site]', c.site.keyFile], ...c.peers.map((x): [string, string | null] => [`[[peers]] #${numberOf(x)}`, x.keyFile])];
  for (const [where, file] of keyFiles) {
    if (file === null) continue;
    if (within(file, p.tftpRoot)) problems.push(say(where, 'key_file', `is inside [paths] tftp_root = ${JSON.stringify(p.tftpRoot)}: TFTP would serve the key to anyone on the LAN`, file));
    else if (within(file, p.sbs)) problems.push(say(where, 'key_file', `is inside [paths] sbs = ${JSON.stringify(p.sbs)}, the drop folder`, file));
  }

  // Settings that have no effect because of another one.
  if (c.packages.scrubIntervalMs === 0 && given.has('packages.scrub_rate_mib')) {
    warnings.push(say('[packages]', 'scrub_rate_mib', 'has no effect: [packages] scrub_interval_ms = 0 turns the scrub off', c.packages.scrubRateMib));
  }
  if (c.management.url === null && given.has('management.timeout_ms')) {
    warnings.push(say('[management]', 'timeout_ms', 'has no effect: [management] url is not set', c.management.timeoutMs));
  }
  if (c.mtftp.maxTransfersPerClient > c.mtftp.maxTransfers) {
    warnings.push(say('[mtftp]', 'max_transfers_per_client', `is above [mtftp] max_transfers = ${c.mtftp.maxTransfers}, so it never applies`, c.mtftp.maxTransfersPerClient));
  }
  if (c.interface.maxConnectionsPerAddress > c.interface.maxConnections) {
    warnings.push(say('[interface]', 'max_connections_per_address', `is above [interface] max_connections = ${c.interface.maxConnections}, so it never applies`, c.interface.maxConnectionsPerAddress));
  }

  if (c.web.enabled && !isLoopback(c.web.bind) && c.web.tokenFile === null) {
    warnings.push(say('[web]', 'bind', 'accepts connections from other hosts, but without [web] token_file they are all refused (403)', c.web.bind));
  }

  // Clients are sent to [server] address for 4011 and TFTP; a specific bind elsewhere never hears them.
  if (c.server.address !== null) {
    for (const [where, bind] of [['[server]', c.server.bind], ['[mtftp]', c.mtftp.bind]] as const) {
      if (bind !== '0.0.0.0' && bind !== c.server.address) {
        warnings.push(say(where, 'bind', `is not [server] address = ${JSON.stringify(c.server.address)}, where clients are sent${where === '[mtftp]' ? ' for TFTP' : ' for port 4011'}`, bind));
      }
    }
  }
  return { problems, warnings };
}
