// What relay agents added to a request: giaddr, hops (RFC 2131 4.1, RFC 1542 4.1) and option 82
// (RFC 3046). Pure: says whether a request came through a relay, or why it must be dropped.
import { isUnicast } from '../platform/runtime/config.ts';
import type { DhcpPacket } from '../protocols/dhcp/dhcp-codec.ts';
import type { RelayAgentInfo } from '../protocols/dhcp/relay-agent-info.ts';

/** RFC 1542 4.1.1: relays discard requests whose hops exceed 16; a server sees no more either. */
export const MAX_HOPS = 16;

export interface RelayInfo {
  /** The first relay agent's address: replies go to it, port 67. */
  readonly giaddr: string;
  readonly hops: number;
  /** The client's subnet as the relay names it: option 82 link selection (RFC 3527), else giaddr. */
  readonly link: string;
}

export interface RelayRead {
  /** null: not relayed (giaddr 0). */
  readonly relay: RelayInfo | null;
  /** Option 82, relayed or not (a DHCP-snooping switch adds it and leaves giaddr 0). */
  readonly agentInfo: RelayAgentInfo | null;
}

/** The common case, shared: no relay, no option 82. */
const DIRECT: RelayRead = Object.freeze({ relay: null, agentInfo: null });

/** A malformed option 82 throws ProtocolError (RFC 3046 2.2: we could not echo it faithfully). */
export function readRelay(packet: DhcpPacket): RelayRead | { readonly drop: string } {
  if (packet.hops > MAX_HOPS) return { drop: `hops ${packet.hops} is over ${MAX_HOPS} (RFC 1542 4.1.1): a relay loop or a forged packet` };
  const agentInfo = packet.options.relayAgentInfo() ?? null;
  const giaddr = packet.giaddr;
  if (giaddr === '0.0.0.0') return agentInfo === null ? DIRECT : { relay: null, agentInfo };
  // A reply goes to giaddr: never to a broadcast, multicast or "this network" address.
  if (!isUnicast(giaddr)) return { drop: `giaddr ${giaddr} is not a unicast address` };
  return { relay: { giaddr, hops: packet.hops, link: agentInfo?.linkSelection() ?? giaddr }, agentInfo };
}

/** Log fields for a relayed request (none for a direct one). */
export function relayFields(read: RelayRead): Record<string, string | number> {
  const f: Record<string, string | number> = {};
  if (read.relay !== null) {
    f.relay = read.relay.giaddr;
    f.hops = read.relay.hops;
    if (read.relay.link !== read.relay.giaddr) f.link = read.relay.link;
  }
  if (read.agentInfo !== null) f.agentInfo = read.agentInfo.describe();
  return f;
}
