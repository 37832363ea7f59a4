// The boot server address a reply advertises (option 54, siaddr, option 66): one the client can
// reach, chosen per request (README.md, "Which address a client is given"):
//   1. the [[server.subnets]] entry holding the client's subnet, when it sets an address;
//   2. [server] address;
//   3. [server] interface: its address in the client's subnet, else the one the route toward the
//      relay (or client) leaves from, else its first;
//   4. neither: the address the route toward the relay, the client or, for a broadcast,
//      255.255.255.255 leaves from: the address of the interface the reply itself goes out of.
// Node's dgram cannot tell on which interface a broadcast arrived (no IP_PKTINFO), so routing is
// the honest stand-in: a reply to X leaves through the interface the kernel routes X to.
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { inSubnet, matchSubnet, type Config, type SubnetConfig } from '../../platform/runtime/config.ts';
import { ConfigError, errorMessage } from '../../platform/runtime/errors.ts';
import type { AddressChoice, AddressTarget, Chosen, Segment } from '../../boot/answer.ts';
import { routeSource, type RouteSource } from './route-source.ts';

export interface LocalAddress {
  readonly address: string;
  readonly prefix: number;
}

export type { AddressChoice, AddressTarget, Chosen } from '../../boot/answer.ts';

export interface AddressDeps {
  readonly interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  readonly routeSource?: RouteSource;
  readonly now?: () => number;
}

const BROADCAST = '255.255.255.255';
const ROUTE_TTL_MS = 30_000;
const LOCAL_TTL_MS = 5_000;

export class ServerAddresses {
  /** [server] interface's addresses; null when no interface is configured. */
  private readonly ifaceAddresses: LocalAddress[] | null;
  private readonly interfaces: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  private readonly lookup: RouteSource;
  private readonly now: () => number;
  private readonly routes = new Map<string, { address: string; until: number }>();
  private readonly pending = new Map<string, Promise<Chosen>>();
  private local: { addresses: ReadonlySet<string>; until: number } | null = null;
  /** [server] address and no [[server.subnets]]: every request gets it (the common case, no lookups). */
  readonly fixed: AddressChoice | null;
  private readonly configured: AddressChoice | null;

  constructor(private readonly server: Config['server'], source: string, deps: AddressDeps = {}) {
    this.interfaces = deps.interfaces ?? networkInterfaces;
    this.lookup = deps.routeSource ?? routeSource;
    this.now = deps.now ?? Date.now;
    this.configured = server.address === null ? null : Object.freeze({ address: server.address, why: '[server] address', subnet: null });
    this.fixed = server.subnets.length === 0 ? this.configured : null;
    this.ifaceAddresses = server.address === null && server.interface !== null ? interfaceAddresses(server.interface, source, this.interfaces()) : null;
  }

  /** How addresses are chosen, for the start-up log and the status. */
  get mode(): string {
    const subnets = this.server.subnets.filter((s) => s.address !== null).length;
    const base = this.server.address !== null ? `[server] address ${this.server.address}`
      : this.ifaceAddresses !== null ? `[server] interface ${this.server.interface} (${this.ifaceAddresses.map((a) => a.address).join(', ')})`
        : 'the route toward each client or relay';
    return subnets > 0 ? `${subnets} subnet address(es), else ${base}` : base;
  }

  /** The configured address, else the interface's first; null when routing decides per request. */
  get primary(): string | null {
    return this.server.address ?? this.ifaceAddresses?.[0]?.address ?? null;
  }

  /** Synchronous unless a route toward a new destination has to be looked up (then cached; refreshed after 30 s). */
  choose(target: AddressTarget): Chosen | Promise<Chosen> {
    const subnet = target.client === null ? null : matchSubnet(this.server.subnets, target.client);
    if (subnet?.address != null) return { address: subnet.address, why: `[[server.subnets]] ${subnet.cidr}`, subnet };
    if (this.configured !== null) return subnet === null ? this.configured : { ...this.configured, subnet };
    const toward = target.relay ?? target.client ?? BROADCAST;
    const list = this.ifaceAddresses;
    if (list !== null) {
      const name = `[server] interface ${this.server.interface}`;
      const onLink = target.client === null ? undefined : list.find((a) => inSubnet(target.client!, a.address, a.prefix));
      if (onLink !== undefined) return { address: onLink.address, why: `${name}: its address in the client's subnet`, subnet };
      if (list.length === 1 || toward === BROADCAST) return { address: list[0]!.address, why: `${name}: its first address`, subnet };
      return this.routed(toward, subnet, (address) => list.some((a) => a.address === address)
        ? { address, why: `${name}: the route toward ${toward} leaves from it`, subnet }
        : { address: list[0]!.address, why: `${name}: its first address (the route toward ${toward} leaves from ${address}, not this interface)`, subnet });
    }
    return this.routed(toward, subnet, (address) => ({ address, why: `the route toward ${toward} leaves from it`, subnet }));
  }

  /**
   * The segments broadcast replies go out on, one offer each (README.md, "Several interfaces"):
   * [server] interface, or with neither address nor interface every interface with an IPv4
   * address (its first), loopback excepted. [server] address: none, routing decides.
   */
  segments(): Segment[] {
    if (this.server.address !== null) return [];
    const all = this.interfaces();
    const names = this.server.interface !== null ? [this.server.interface] : Object.keys(all);
    const out: Segment[] = [];
    for (const name of names) {
      const first = (all[name] ?? []).find((i) => i.family === 'IPv4' && !i.internal);
      if (first !== undefined) out.push({ name, address: first.address });
    }
    return out;
  }

  /** The address a broadcast reply on `segment` carries: its subnet's configured one, else its own. */
  forSegment(segment: Segment): AddressChoice {
    const subnet = matchSubnet(this.server.subnets, segment.address);
    if (subnet?.address != null) return { address: subnet.address, why: `[[server.subnets]] ${subnet.cidr}`, subnet };
    return { address: segment.address, why: `the address of ${segment.name}, the interface this broadcast leaves from`, subnet };
  }

  /** Whether a REQUEST's option 54 names us: a configured address or one of this host's. */
  isOurs(address: string): boolean {
    if (address === this.server.address || this.server.subnets.some((s) => s.address === address)) return true;
    if (this.local === null || this.local.until <= this.now()) {
      const all = new Set<string>();
      for (const list of Object.values(this.interfaces())) for (const i of list ?? []) if (i.family === 'IPv4') all.add(i.address);
      this.local = { addresses: all, until: this.now() + LOCAL_TTL_MS };
    }
    return this.local.addresses.has(address);
  }

  private routed(toward: string, subnet: SubnetConfig | null, pick: (address: string) => AddressChoice): Chosen | Promise<Chosen> {
    const hit = this.routes.get(toward);
    if (hit !== undefined) {
      // Past its time, the route is still answered from the cache and looked up again in the
      // background: a request waits for a lookup only toward a destination never seen before.
      if (hit.until <= this.now()) void this.lookupShared(toward, pick);
      return pick(hit.address);
    }
    // Requests waiting on the same lookup share it, but each gets its own subnet.
    return this.lookupShared(toward, pick).then((c) => ('none' in c ? c : { ...c, subnet }));
  }

  private lookupShared(toward: string, pick: (address: string) => AddressChoice): Promise<Chosen> {
    let p = this.pending.get(toward);
    if (p === undefined) {
      p = this.lookup(toward).then(
        (address) => {
          if (this.routes.size >= 4096) this.routes.clear();
          this.routes.set(toward, { address, until: this.now() + ROUTE_TTL_MS });
          return pick(address);
        },
        (err: unknown) => {
          this.routes.delete(toward);
          return { none: `cannot choose our address: ${errorMessage(err)}` };
        },
      ).finally(() => this.pending.delete(toward));
      this.pending.set(toward, p);
    }
    return p;
  }

  /** Looks up the route broadcasts take, before the first DISCOVER needs it. */
  prime(): void {
    if (this.configured === null && this.ifaceAddresses === null && !this.routes.has(BROADCAST)) void this.lookupShared(BROADCAST, (address) => ({ address, why: '', subnet: null }));
  }
}

function interfaceAddresses(name: string, source: string, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): LocalAddress[] {
  const list = (interfaces[name] ?? [])
    .filter((i) => i.family === 'IPv4')
    .map((i) => ({ address: i.address, prefix: prefixOf(i.netmask) }));
  if (list.length === 0) throw new ConfigError(source, [`[server] interface: ${JSON.stringify(name)} has no IPv4 address`]);
  return list;
}

function prefixOf(netmask: string): number {
  return netmask.split('.').reduce((n, part) => n + (Number(part) >>> 0).toString(2).replace(/0/g, '').length, 0);
}
