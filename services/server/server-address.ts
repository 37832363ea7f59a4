// The address the server advertises (option 54, siaddr, option 66): [server] address, else the
// IPv4 addresses of [server] interface. Node's dgram cannot say on which interface a broadcast
// arrived (no IP_PKTINFO) nor tie a socket to one (no SO_BINDTODEVICE), so with several addresses
// the choice is made from the request: the address in the client's subnet when the client names
// its own address (ciaddr, e.g. on 4011) or its relay (giaddr); else the first one.
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { Config } from '../shared/config.ts';
import { ConfigError } from '../shared/errors.ts';

export interface LocalAddress {
  readonly address: string;
  /** Prefix length; 32 when configured explicitly. */
  readonly prefix: number;
}

export function advertisedAddresses(
  server: Config['server'],
  source: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): LocalAddress[] {
  if (server.address !== null) return [{ address: server.address, prefix: 32 }];
  if (server.interface === null) {
    throw new ConfigError(source, ['[server] address or [server] interface: one is required to know the address to advertise']);
  }
  const list = (interfaces[server.interface] ?? [])
    .filter((i) => i.family === 'IPv4')
    .map((i) => ({ address: i.address, prefix: prefixOf(i.netmask) }));
  if (list.length === 0) throw new ConfigError(source, [`[server] interface: ${JSON.stringify(server.interface)} has no IPv4 address`]);
  return list;
}

function prefixOf(netmask: string): number {
  return netmask.split('.').reduce((n, part) => n + (Number(part) >>> 0).toString(2).replace(/0/g, '').length, 0);
}

function toInt(address: string): number {
  return address.split('.').reduce((n, part) => ((n << 8) | Number(part)) >>> 0, 0);
}

export function sameSubnet(a: string, b: string, prefix: number): boolean {
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return ((toInt(a) & mask) >>> 0) === ((toInt(b) & mask) >>> 0);
}

/** The address to advertise to a client that named `hint` (its ciaddr or giaddr, or 0.0.0.0). */
export function pickAddress(addresses: readonly LocalAddress[], hint: string): string {
  if (hint !== '0.0.0.0' && addresses.length > 1) {
    const match = addresses.find((a) => sameSubnet(a.address, hint, a.prefix));
    if (match !== undefined) return match.address;
  }
  return addresses[0]!.address;
}
