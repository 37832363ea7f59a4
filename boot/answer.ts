// The one answer path: bytes + arrival + state -> reply | drop with reason. Pure: nothing is
// sent, logged or recorded here, and nothing is looked up but what the state holds. The PXE
// server's socket handler sends, logs and records what this returns; the warm-up runs it on
// made-up requests; `netboot explain` runs it on the DISCOVER the machine would send.
//
// Our address (option 54, siaddr, option 66) may need the routing table. That stays with the
// transport, which passes in what it knows (`AnswerState.address`); when a route has not been
// looked up yet the answer is `lookup`: the caller looks it up and asks again with the choice.
import type { SubnetConfig } from '../platform/runtime/config.ts';
import { ProtocolError } from '../platform/runtime/errors.ts';
import { decode, encode, type DhcpPacket } from '../protocols/dhcp/dhcp-codec.ts';
import { MESSAGE_TYPE } from '../protocols/dhcp/dhcp-options.ts';
import type { FeedState } from './feed-protocol.ts';
import { decide, type Decision, type Offer } from './pxe-policy.ts';
import { buildProxyReply, type ReplyOptionCache } from './pxe-reply.ts';
import { readPxeRequest, type PxePort, type PxeRequest } from './pxe-request.ts';
import { readRelay, type RelayRead } from './relay.ts';

export interface Peer {
  readonly address: string;
  readonly port: number;
}

/** Where a datagram came from, and on which port (67 or 4011). */
export interface Arrival {
  readonly from: Peer;
  readonly via: PxePort;
}

/**
 * broadcast: answers on 67 go to 255.255.255.255:68 (a client without an address hears nothing
 * else), or to ciaddr:68 when the client has one (RFC 2131 4.1).
 * source: answers go back to the request's source address and port. For sockets bound to a
 * loopback address (tests, benchmarks), where nobody listens on 68 and broadcasts go nowhere.
 */
export type ReplyMode = 'broadcast' | 'source';

/** A network interface the server answers broadcasts on, by the address it sends them from. */
export interface Segment {
  readonly name: string;
  readonly address: string;
}

/** What is known of where the client is. */
export interface AddressTarget {
  /** The relay agent (giaddr), when relayed: replies go there. */
  readonly relay: string | null;
  /** An address in the client's subnet: the relay's link (link selection or giaddr), else ciaddr. */
  readonly client: string | null;
}

export interface AddressChoice {
  readonly address: string;
  /** How it was chosen, for logs and `netboot explain`. */
  readonly why: string;
  /** The [[server.subnets]] entry the client is in, whether or not it set the address. */
  readonly subnet: SubnetConfig | null;
}

export type Chosen = AddressChoice | { readonly none: string };

export interface AnswerState {
  readonly feed: FeedState;
  /** Machines whose `once` boot was consumed (not yet in the feed). */
  readonly consumed: ReadonlySet<string>;
  readonly replyMode: ReplyMode;
  /** Whether a REQUEST's option 54 names us. */
  readonly isOurs: (address: string) => boolean;
  /** Multi-homed: the segments a broadcast reply goes out on, one offer each; empty: routing decides. */
  readonly segments: readonly Segment[];
  /** Our address in a broadcast out of `segment`. */
  readonly forSegment: (segment: Segment) => AddressChoice;
  /** Our address toward `target` as known now; undefined: its route must be looked up first. */
  readonly address: (target: AddressTarget) => Chosen | undefined;
  /**
   * Our address when it is the same toward every client (no [[server.subnets]]): what `address`
   * would answer for any target, given so that the common case looks nothing up per packet.
   */
  readonly fixed?: AddressChoice | null;
  /** Boot HTTP's port when it is on: iPXE scripts fetch over HTTP, HTTPClient requests are answered. */
  readonly httpPort?: number;
  /** Encoded option values that repeat, kept by the caller (the answers are the same without). */
  readonly cache?: ReplyOptionCache;
}

/** A request read far enough to be a PXE request. */
export interface Read {
  readonly packet: DhcpPacket;
  readonly request: PxeRequest;
  readonly relay: RelayRead;
}

export type Answer =
  /** Not a DHCP packet we can read (ProtocolError); mac and xid where the bytes are there. */
  | { readonly kind: 'malformed'; readonly reason: string; readonly mac?: string; readonly xid?: string }
  /** Not a PXE request for this port: none of our business (not recorded). */
  | { readonly kind: 'ignored'; readonly reason: string; readonly packet: DhcpPacket; readonly mac: string | null }
  /** A PXE request a relay path makes unanswerable (hops, giaddr). */
  | { readonly kind: 'dropped'; readonly reason: string; readonly packet: DhcpPacket; readonly request: PxeRequest }
  /** A REQUEST on 67 for another server. */
  | (Read & { readonly kind: 'not-ours'; readonly reason: string })
  /** The policy's answer is no offer; `to` and `target`: where an offer would have gone. */
  | (Read & { readonly kind: 'no-offer'; readonly reason: string; readonly decision: Decision; readonly to: Peer; readonly target: AddressTarget })
  /** An offer, but our address toward the client cannot be chosen. */
  | (Read & { readonly kind: 'no-address'; readonly reason: string; readonly offer: Offer; readonly decision: Decision })
  /** Our address toward `target` needs a route look-up: ask again with `address` answering it. */
  | (Read & { readonly kind: 'lookup'; readonly target: AddressTarget })
  | Reply;

export interface Reply extends Read {
  readonly kind: 'reply';
  readonly decision: Decision;
  readonly offer: Offer;
  readonly to: Peer;
  /** One reply, or (multi-homed broadcast) one per segment, each with its address. */
  readonly replies: readonly { readonly segment: Segment | null; readonly chosen: AddressChoice; readonly bytes: Buffer }[];
}

export const CLIENT_PORT = 68;
/** RFC 2131 4.1: replies to a relay agent go to giaddr, on the DHCP server port. */
export const SERVER_PORT = 67;
export const BROADCAST = '255.255.255.255';
const BROADCAST_PEER: Peer = Object.freeze({ address: BROADCAST, port: CLIENT_PORT });

/**
 * Where the reply to a request goes. 4011 answers always go back to the source (EDK2 uses 4011).
 * On 67 a relayed request (giaddr set) is answered to the relay agent at giaddr:67 (RFC 2131 4.1,
 * RFC 1542 4.1.2), not to where it came from: with several relays in a row, that is the last one.
 */
export function replyDestination(request: { readonly ciaddr: string; readonly giaddr: string }, from: Peer, via: PxePort, mode: ReplyMode): Peer {
  if (via === 'proxy' || mode === 'source') return from;
  if (request.giaddr !== '0.0.0.0') return { address: request.giaddr, port: SERVER_PORT };
  if (request.ciaddr !== '0.0.0.0') return { address: request.ciaddr, port: CLIENT_PORT };
  return BROADCAST_PEER;
}

/** Where the client is: its relay's link, else its own address (ciaddr, or the 4011 source). */
export function addressTarget(packet: DhcpPacket, read: RelayRead, from: Peer, via: PxePort): AddressTarget {
  if (read.relay !== null) return { relay: read.relay.giaddr, client: read.relay.link };
  if (packet.ciaddr !== '0.0.0.0') return { relay: null, client: packet.ciaddr };
  return { relay: null, client: via === 'proxy' ? from.address : null };
}

/**
 * The address(es) a reply to `to` carries: one per segment for a broadcast when multi-homed,
 * else the one chosen toward `target`; undefined when a route must be looked up first.
 */
export function replyAddresses(to: Peer, target: AddressTarget, state: AnswerState): readonly { segment: Segment | null; chosen: Chosen }[] | undefined {
  const segments = to.address === BROADCAST ? state.segments : NO_SEGMENTS;
  if (segments.length > 0) return segments.map((segment) => ({ segment, chosen: state.forSegment(segment) }));
  const chosen = state.address(target);
  return chosen === undefined ? undefined : [{ segment: null, chosen }];
}

const NO_SEGMENTS: readonly Segment[] = [];

/** The whole answer to one datagram. Throws only what is not a ProtocolError (a bug). */
export function answer(bytes: Buffer, arrival: Arrival, state: AnswerState): Answer {
  const { from, via } = arrival;
  let packet: DhcpPacket;
  let relay: RelayRead | { readonly drop: string };
  let request: PxeRequest;
  try {
    packet = decode(bytes);
    const read = readPxeRequest(packet, via);
    if ('ignore' in read) return { kind: 'ignored', reason: read.ignore, packet, mac: read.mac };
    request = read.request;
    // Option 82 is read only for PXE requests: other DHCP traffic is none of our business.
    relay = readRelay(packet);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    return { kind: 'malformed', reason: err.message, ...peek(bytes) };
  }
  if ('drop' in relay) return { kind: 'dropped', reason: relay.drop, packet, request };
  // A REQUEST on 67 is for the server the client chose (relays send us those meant for the DHCP
  // server too): answer only when that is us.
  if (via === 'dhcp' && request.messageType === MESSAGE_TYPE.REQUEST && (request.serverId === null || !state.isOurs(request.serverId))) {
    return { kind: 'not-ours', reason: `REQUEST for server ${request.serverId ?? '(none named)'}, not us`, packet, request, relay };
  }
  // The request is a PolicyRequest as it is (mac, archCode, isIpxe, port).
  const decision = decide(request, state.feed, { consumed: state.consumed, httpPort: state.httpPort });
  const to = replyDestination(packet, from, via, state.replyMode);
  if ('none' in decision) return { kind: 'no-offer', reason: decision.none, decision, packet, request, relay, to, target: addressTarget(packet, relay, from, via) };
  const offer = decision.offer;
  const segments = to.address === BROADCAST ? state.segments : NO_SEGMENTS;
  if (segments.length === 0) {
    // The common case: one reply, one address (no intermediate list on the hot path, and no
    // target to look up when our address is the same for every client).
    let chosen: Chosen | undefined = state.fixed ?? undefined;
    if (chosen === undefined) {
      const target = addressTarget(packet, relay, from, via);
      chosen = state.address(target);
      if (chosen === undefined) return { kind: 'lookup', target, packet, request, relay };
    }
    if ('none' in chosen) return { kind: 'no-address', reason: chosen.none, offer, decision, packet, request, relay };
    const bytes = encode(buildProxyReply(packet, request, offerFile(offer, chosen.address), chosen.address, state.cache));
    return { kind: 'reply', decision, offer, to, replies: [{ segment: null, chosen, bytes }], packet, request, relay };
  }
  // Multi-homed: a broadcast goes out of every segment, each offer with that segment's address.
  const replies = segments.map((segment) => {
    const chosen = state.forSegment(segment);
    return { segment, chosen, bytes: encode(buildProxyReply(packet, request, offerFile(offer, chosen.address), chosen.address, state.cache)) };
  });
  return { kind: 'reply', decision, offer, to, replies, packet, request, relay };
}

/**
 * The file field of an offer: the TFTP path, or for UEFI HTTP Boot the URL on our address toward
 * the client (its subnet's server address behind a relay): firmware takes a proxy offer only when
 * the URL names an IP address (edk2 HttpBootDhcp4.c), so never a host name.
 */
export function offerFile(offer: Offer, address: string): string {
  return offer.http === undefined ? offer.file : `http://${address}:${offer.http.port}/${offer.file}`;
}

function hex(xid: number): string {
  return xid.toString(16).padStart(8, '0');
}

/** mac and xid from a packet that did not decode, where the bytes are there. */
function peek(msg: Buffer): { mac?: string; xid?: string } {
  return {
    ...(msg.length >= 8 ? { xid: hex(msg.readUInt32BE(4)) } : {}),
    ...(msg.length >= 34 ? { mac: [...msg.subarray(28, 34)].map((b) => b.toString(16).padStart(2, '0')).join(':') } : {}),
  };
}
