// Client subnets behind a router, for the relay tests. Added to a `Lan` (whose bridge is then the
// server subnet 10.91.0.0/24): a `rtr` namespace routes between the server subnet (`up0`
// 10.91.0.254) and two client subnets (`cl0` 10.92.0.1/24, `cl1` 10.93.0.1/24), and runs Debian's
// ISC `dhcrelay` toward the DHCP server and netboot, plus dnsmasq sending IPv6 router
// advertisements only (iPXE waits 13 s for IPv6 without one). A `cli` namespace holds one bridge
// per client subnet with the guests' taps. The server and DHCP namespaces route the client
// subnets via the router. A third subnet, C (10.94.0.0/24), is attached to the server directly
// on a second interface (`eth1`; the server's default route stays on `eth0`), with the DHCP
// server on it too: a multi-homed server. Deleted like the Lan: each namespace registers its
// removal at once.
import { join } from 'node:path';
import type { Cleanup } from './cleanup.ts';
import { deleteNamespaceSync } from './cleanup.ts';
import { DHCP_ADDRESS, SERVER_ADDRESS, SUBNET, ip, sysctl, type Lan } from './network.ts';
import { Running, inNamespace, runCommand } from './processes.ts';

export const ROUTER_UPLINK = `${SUBNET}.254`;

export interface ClientSubnet {
  /** Router interface facing the subnet (dhcrelay's -id); its address becomes giaddr. */
  readonly routerIf: string;
  /** Bridge in the client namespace. */
  readonly bridge: string;
  readonly prefix: string;
  readonly gateway: string;
  readonly cidr: string;
  readonly range: readonly [string, string];
  readonly ipv6: string;
}

function subnet(n: number, third: number): ClientSubnet {
  const prefix = `10.${third}.0`;
  return {
    routerIf: `cl${n}`, bridge: `br${n}`, prefix, gateway: `${prefix}.1`, cidr: `${prefix}.0/24`,
    range: [`${prefix}.100`, `${prefix}.199`], ipv6: `fd00:${third}::`,
  };
}

export const CLIENT_SUBNETS = { a: subnet(0, 92), b: subnet(1, 93) } as const;

/** The server's second segment: no relay, the server and the DHCP server are on it. */
export const DIRECT_SUBNET = { bridge: 'br2', prefix: '10.94.0', cidr: '10.94.0.0/24', server: '10.94.0.1', dhcp: '10.94.0.2', range: ['10.94.0.100', '10.94.0.199'], ipv6: 'fd00:94::' } as const;

/** Where a guest is plugged in: behind the relay (a, b) or on the server's second segment (c). */
export type SubnetName = keyof typeof CLIENT_SUBNETS | 'c';

/** A second address of the server, advertised to subnet B by a [[server.subnets]] entry. */
export const SERVER_ADDRESS_B = `${SUBNET}.11`;

export interface RelayOptions {
  /** dhcrelay -a -D: add option 82 and drop replies that do not echo it (default true). */
  readonly agentInfo?: boolean;
}

export class RelayNet {
  private taps = 0;

  private constructor(readonly rtr: string, readonly cli: string) {}

  static async create(lan: Lan, cleanup: Cleanup): Promise<RelayNet> {
    const base = lan.lan.replace(/-lan$/, '');
    const r = new RelayNet(`${base}-rtr`, `${base}-cli`);
    for (const ns of [r.rtr, r.cli]) {
      cleanup.add(`delete namespace ${ns}`, () => runCommand('ip', ['netns', 'del', ns], 10000, true).then(() => undefined), () => deleteNamespaceSync(ns));
      await ip('netns', 'add', ns);
      await sysctl(ns, 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    await sysctl(r.rtr, 'net.ipv4.ip_forward=1');
    // Uplink: the router on the server subnet's bridge.
    await ip('-n', lan.lan, 'link', 'add', 'to-rtr', 'type', 'veth', 'peer', 'name', 'up0', 'netns', r.rtr);
    await ip('-n', lan.lan, 'link', 'set', 'to-rtr', 'master', 'br0', 'up');
    await ip('-n', r.rtr, 'addr', 'add', `${ROUTER_UPLINK}/24`, 'dev', 'up0');
    await ip('-n', r.rtr, 'link', 'set', 'up0', 'up');
    for (const s of Object.values(CLIENT_SUBNETS)) {
      await ip('-n', r.cli, 'link', 'add', s.bridge, 'type', 'bridge');
      await ip('-n', r.cli, 'link', 'set', s.bridge, 'up');
      await ip('-n', r.cli, 'link', 'add', `to-${s.routerIf}`, 'type', 'veth', 'peer', 'name', s.routerIf, 'netns', r.rtr);
      await ip('-n', r.cli, 'link', 'set', `to-${s.routerIf}`, 'master', s.bridge, 'up');
      await ip('-n', r.rtr, 'addr', 'add', `${s.gateway}/24`, 'dev', s.routerIf);
      await sysctl(r.rtr, `net.ipv6.conf.${s.routerIf}.disable_ipv6=0`);
      await ip('-n', r.rtr, 'addr', 'add', `${s.ipv6}1/64`, 'dev', s.routerIf, 'nodad');
      await ip('-n', r.rtr, 'link', 'set', s.routerIf, 'up');
    }
    // Subnet C on the server's and the DHCP server's second interface.
    await ip('-n', r.cli, 'link', 'add', DIRECT_SUBNET.bridge, 'type', 'bridge');
    await ip('-n', r.cli, 'link', 'set', DIRECT_SUBNET.bridge, 'up');
    for (const [ns, port, address] of [[lan.srv, 'to-srv1', DIRECT_SUBNET.server], [lan.dhcp, 'to-dhcp1', DIRECT_SUBNET.dhcp]] as const) {
      await ip('-n', r.cli, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', ns);
      await ip('-n', r.cli, 'link', 'set', port, 'master', DIRECT_SUBNET.bridge, 'up');
      await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth1');
      await ip('-n', ns, 'link', 'set', 'eth1', 'up');
    }
    await sysctl(lan.dhcp, 'net.ipv6.conf.eth1.disable_ipv6=0');
    await ip('-n', lan.dhcp, 'addr', 'add', `${DIRECT_SUBNET.ipv6}2/64`, 'dev', 'eth1', 'nodad');
    // The server's second address, the source of everything it sends to subnet B.
    await ip('-n', lan.srv, 'addr', 'add', `${SERVER_ADDRESS_B}/24`, 'dev', 'eth0');
    await ip('-n', lan.srv, 'route', 'add', CLIENT_SUBNETS.a.cidr, 'via', ROUTER_UPLINK, 'src', SERVER_ADDRESS);
    await ip('-n', lan.srv, 'route', 'add', CLIENT_SUBNETS.b.cidr, 'via', ROUTER_UPLINK, 'src', SERVER_ADDRESS_B);
    for (const s of Object.values(CLIENT_SUBNETS)) await ip('-n', lan.dhcp, 'route', 'add', s.cidr, 'via', ROUTER_UPLINK, 'src', DHCP_ADDRESS);
    return r;
  }

  /** The DHCP server's extra arguments: a range and a router option per client subnet, and subnet C. */
  dhcpArgs(): string[] {
    return [
      ...Object.entries(CLIENT_SUBNETS).flatMap(([name, s]) => [
        `--dhcp-range=set:${name},${s.range[0]},${s.range[1]},255.255.255.0,1h`,
        `--dhcp-option=tag:${name},option:router,${s.gateway}`,
      ]),
      '--interface=eth1', `--dhcp-range=${DIRECT_SUBNET.range[0]},${DIRECT_SUBNET.range[1]},255.255.255.0,1h`, `--dhcp-range=${DIRECT_SUBNET.ipv6},ra-only`,
    ];
  }

  /** dhcrelay toward the DHCP server and netboot, and the router advertisements; both until cleanup. */
  async start(dir: string, cleanup: Cleanup, options: RelayOptions = {}): Promise<{ relay: Running; ra: Running }> {
    const ifaces = Object.values(CLIENT_SUBNETS).map((s) => s.routerIf);
    const ra = new Running('dnsmasq (router advertisements)', ...inNamespace(this.rtr, 'dnsmasq', [
      '--keep-in-foreground', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--bind-interfaces', '--user=root',
      ...ifaces.map((i) => `--interface=${i}`), '--enable-ra',
      ...Object.values(CLIENT_SUBNETS).map((s) => `--dhcp-range=${s.ipv6},ra-only`),
      `--dhcp-leasefile=${join(dir, 'ra.leases')}`, `--pid-file=${join(dir, 'ra.pid')}`,
    ]), join(dir, 'dnsmasq-ra.log'), cleanup);
    await ra.waitFor(/router advertisement on/, 10000);
    const args = ['-d', '-4', ...(options.agentInfo === false ? [] : ['-a', '-D']), ...ifaces.flatMap((i) => ['-id', i]), '-iu', 'up0', '-pf', join(dir, 'dhcrelay.pid'), DHCP_ADDRESS, SERVER_ADDRESS];
    const relay = new Running('dhcrelay', ...inNamespace(this.rtr, 'dhcrelay', args), join(dir, 'dhcrelay.log'), cleanup);
    await relay.waitFor(/Listening on LPF\/up0/, 10000);
    return { relay, ra };
  }

  /** A new tap on a client subnet's bridge for one guest. */
  async addTap(name: SubnetName): Promise<string> {
    const tap = `tap${this.taps++}`;
    await ip('-n', this.cli, 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
    await ip('-n', this.cli, 'link', 'set', tap, 'master', name === 'c' ? DIRECT_SUBNET.bridge : CLIENT_SUBNETS[name].bridge, 'up');
    return tap;
  }
}
