// The PXE server: follows the Interface's state feed, binds the DHCP sockets once the state is
// complete, answers PXE clients by the policy, resolves netboot/ paths for the MTFTP service and
// consumes `once` boots when a boot program was fetched. Built by main (or a test); start/stop.
import { join } from 'node:path';
import type { Config } from '../../platform/runtime/config.ts';
import { ControlServer, HttpError, controlSocketPath, type ControlRequest } from '../../platform/local/control.ts';
import { NetbootError, ProtocolError } from '../../platform/runtime/errors.ts';
import { ChannelServer, channelSocketPath } from '../../platform/local/local-channel.ts';
import { isComplete, type FeedChange, type FeedState } from '../../boot/feed-protocol.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { LogFields, Logger } from '../../platform/runtime/logger.ts';
import { ARCHES, type Arch } from '../../sbs/types.ts';
import { BootEvents } from './boot-events.ts';
import { decode, encode, type DhcpPacket } from '../../protocols/dhcp/dhcp-codec.ts';
import { MESSAGE_TYPE, messageTypeName } from '../../protocols/dhcp/dhcp-options.ts';
import type { BatchSupport } from './batch-socket.ts';
import { DhcpTransport, defaultReplyMode, replyDestination, type Peer, type ReplyMode, type Segment } from './dhcp-transport.ts';
import { FeedClient } from './feed-client.ts';
import { codeFromArch } from '../../boot/pxe-arch.ts';
import { decide, type Decision, type Offer } from '../../boot/pxe-policy.ts';
import { buildProxyReply } from '../../boot/pxe-reply.ts';
import { readPxeRequest, type PxePort, type PxeRequest, type ReadResult } from '../../boot/pxe-request.ts';
import { RecentRequests, type SeenReport } from '../../boot/recent-requests.ts';
import { readRelay, relayFields, type RelayRead } from '../../boot/relay.ts';
import { ServerAddresses, type AddressChoice, type AddressDeps, type AddressTarget, type Chosen } from './server-address.ts';
import { isIPv4, isUnicast, matchSubnet, type SubnetConfig } from '../../platform/runtime/config.ts';
import { consumedBy, resolveTftpPath, type TftpResolution } from '../../boot/tftp-resolve.ts';
import { TftpViewPublisher } from '../../boot/tftp-view.ts';
import { readyPackagePath } from '../../packages/layout.ts';
import { warmUp } from '../../boot/warm-up.ts';
import { explainChain } from './explain-chain.ts';
import { countPxeRequest, observeOffer } from '../../boot/pxe-metrics.ts';
import type { BootChain } from '../../boot/boot-chain.ts';

export type ServerState = 'waiting-for-state' | 'serving' | 'stopping';

export interface ServerServiceOptions {
  /** Where replies on 67 go; default: `source` for a loopback bind, else `broadcast`. */
  readonly replyMode?: ReplyMode;
  /** Tells Signal that we (re)started; omitted = no announcement (tests without Signal). */
  readonly announcer?: Lifecycle;
  readonly now?: () => Date;
  /** Called once the server holds complete state and has bound its ports (systemd readiness). */
  readonly onServing?: () => void;
  /** Interfaces and route lookups for the address choice (tests). */
  readonly addressDeps?: AddressDeps;
  /** The native socket addon, or why not (tests of the fallback); default: native/udp-batch. */
  readonly loadNative?: () => BatchSupport;
}

const BIND_RETRY_MS = 5000;

export class ServerService implements Lifecycle {
  private readonly feed: FeedClient;
  private readonly events: BootEvents;
  private readonly transport: DhcpTransport;
  private readonly control: ControlServer;
  private readonly channel: ChannelServer;
  private readonly view = new TftpViewPublisher();
  private readonly addresses: ServerAddresses;
  private readonly recent = new RecentRequests();
  private readonly segmentsEnabled: boolean;
  private readonly replyMode: ReplyMode;
  private readonly now: () => Date;
  private phase: ServerState = 'waiting-for-state';
  private binding: Promise<void> | null = null;
  private bindTimer: NodeJS.Timeout | null = null;

  constructor(private readonly config: Config, private readonly log: Logger, private readonly options: ServerServiceOptions = {}) {
    this.addresses = new ServerAddresses(config.server, config.source, options.addressDeps);
    this.replyMode = options.replyMode ?? defaultReplyMode(config.server.bind);
    this.now = options.now ?? (() => new Date());
    this.events = new BootEvents(join(config.paths.data, 'server', 'pending-events.json'), log.child({ part: 'events' }));
    const host = config.interface.bind === '0.0.0.0' ? '127.0.0.1' : config.interface.bind;
    this.feed = new FeedClient(`ws://${host}:${config.interface.port}/feed`, {
      onState: (state, change) => this.onState(state, change),
      onEventAck: (eventId) => {
        this.events.acknowledge(eventId, this.feed.state);
        this.publishConsumed();
      },
      onConnected: () => this.resendEvents(),
    }, log.child({ part: 'feed' }));
    // Several segments only where broadcasts are received and sent: the wildcard bind.
    this.segmentsEnabled = this.replyMode === 'broadcast' && config.server.bind === '0.0.0.0';
    const segments = this.segmentsEnabled ? () => this.addresses.segments() : undefined;
    this.transport = new DhcpTransport(
      { bind: config.server.bind, dhcpPort: config.server.dhcpPort, proxyPort: config.server.proxyPort, ioPath: config.server.ioPath, ...(segments === undefined ? {} : { segments }), ...(options.loadNative === undefined ? {} : { loadNative: options.loadNative }) },
      (msg, from, via) => this.onDatagram(msg, from, via),
      log.child({ part: 'dhcp' }),
    );
    this.control = new ControlServer(controlSocketPath(config.paths.data, 'server'), {
      'GET /status': () => this.status(),
      'GET /explain': (req) => this.explain(req),
      'GET /recent': (req) => this.recent.list(Number(req.query.get('since') ?? 0), Number(req.query.get('limit') ?? 50)),
    }, log.child({ part: 'control' }));
    // MTFTP's questions, on their own low-latency channel: a machine waits for each answer.
    this.channel = new ChannelServer(channelSocketPath(config.paths.data, 'server'), {
      'tftp.follow': (_body, peer) => this.view.follow(peer, { state: this.feed.state, consumed: [...this.events.consumedMacs()] }),
      'tftp.resolve': (body) => this.resolve(body),
      'tftp.fetched': (body) => this.fetched(body),
    }, log.child({ part: 'channel' }));
  }

  get state(): ServerState {
    return this.phase;
  }

  /** Bound DHCP ports, once serving. */
  get ports(): { dhcp: number; proxy: number } | null {
    return this.transport.ports();
  }

  /** Which sockets serve 67 and 4011 (`[server] io_path`), and why. */
  get ioPath(): 'native' | 'dgram' {
    return this.transport.chooseIoPath().kind;
  }

  async start(): Promise<void> {
    // io_path = "native" without the addon: refused now, not at every bind retry.
    const io = this.transport.chooseIoPath();
    this.events.load();
    await this.control.start();
    await this.channel.start();
    await this.feed.start();
    await this.options.announcer?.start();
    this.log.info('waiting for complete state from the Interface', { feed: `${this.config.interface.port}`, io: io.kind, ioReason: io.reason });
  }

  async stop(): Promise<void> {
    this.phase = 'stopping';
    if (this.bindTimer !== null) clearTimeout(this.bindTimer);
    await this.options.announcer?.stop();
    await this.feed.stop();
    await this.binding;
    await this.transport.stop();
    await this.channel.stop();
    await this.control.stop();
  }

  private onState(state: FeedState, change: FeedChange | null): void {
    this.events.onChange(change);
    if (this.view.count > 0) this.view.publish({ ...(change === null ? { state } : { change }), consumed: [...this.events.consumedMacs()] });
    if (this.phase === 'waiting-for-state' && isComplete(state) && this.binding === null) this.bind();
  }

  private bind(): void {
    this.warmUp();
    this.binding = this.transport.start().then(
      () => {
        if (this.phase === 'stopping') return;
        this.phase = 'serving';
        const ports = this.transport.ports()!;
        this.log.info(`state complete; serving on ${this.config.server.bind}:${ports.dhcp} and :${ports.proxy}`, {
          bind: this.config.server.bind, ports, address: this.addresses.mode, subnets: this.config.server.subnets.length, replyMode: this.replyMode,
          segments: this.transport.segments().map((x) => `${x.name} ${x.address}`), io: this.transport.chooseIoPath().kind,
        });
        this.options.onServing?.();
      },
      (err: unknown) => {
        this.binding = null;
        if (this.phase === 'stopping') return;
        this.log.error('cannot bind the DHCP ports; retrying', { err, retryMs: BIND_RETRY_MS });
        this.bindTimer = setTimeout(() => {
          this.bindTimer = null;
          if (this.phase === 'waiting-for-state') this.bind();
        }, BIND_RETRY_MS);
      },
    );
  }

  /** Compiles the answer path and looks up the broadcast route before the first client needs them. */
  private warmUp(): void {
    try {
      warmUp(this.addresses.primary ?? '127.0.0.1');
    } catch (err) {
      this.log.warn('warm-up of the answer path failed (the first answers may be slower)', { err });
    }
    this.addresses.prime();
  }

  private onDatagram(msg: Buffer, from: Peer, via: PxePort): void {
    let packet: DhcpPacket;
    let read: ReadResult;
    try {
      packet = decode(msg);
      read = readPxeRequest(packet, via);
    } catch (err) {
      return this.malformed(err, msg, from, via);
    }
    // Log fields are built only when a record is written: this runs for every packet on the LAN.
    const log = this.log;
    if ('ignore' in read) {
      countPxeRequest(null, 'ignored', read.ignore);
      if (log.enabled('debug')) log.debug('ignored', { ...packetFields(read.mac, packet, via, from), reason: read.ignore });
      return;
    }
    const request = read.request;
    // Option 82 is read only for PXE requests: other DHCP traffic is none of our business.
    let relay: RelayRead | { readonly drop: string };
    try {
      relay = readRelay(packet);
    } catch (err) {
      return this.malformed(err, msg, from, via);
    }
    if ('drop' in relay) {
      countPxeRequest(request.archCode, 'dropped', relay.drop);
      log.info('packet dropped', { ...packetFields(request.mac, packet, via, from), hops: packet.hops, giaddr: packet.giaddr, reason: relay.drop });
      return;
    }
    // A REQUEST on 67 is for the server the client chose (relays send us those meant for the DHCP
    // server too): answer only when that is us.
    if (via === 'dhcp' && request.messageType === MESSAGE_TYPE.REQUEST && (request.serverId === null || !this.addresses.isOurs(request.serverId))) {
      const reason = `REQUEST for server ${request.serverId ?? '(none named)'}, not us`;
      this.seen(request, via, relay, reason);
      if (log.enabled('debug')) log.debug('ignored', { ...packetFields(request.mac, packet, via, from), ...relayFields(relay), reason });
      return;
    }
    // The request is a PolicyRequest as it is (mac, archCode, isIpxe, port).
    const decision = decide(request, this.feed.state, { consumed: this.events.consumedMacs() });
    if ('none' in decision) {
      this.seen(request, via, relay, `no offer: ${decision.none}`);
      if (log.enabled('info')) log.info('no offer', { ...packetFields(request.mac, packet, via, from), ...relayFields(relay), type: messageTypeName(request.messageType), arch: request.archCode, ipxe: request.isIpxe, reason: decision.none });
      return;
    }
    const answer = new Answer(packet, request, relay, decision.offer, from, via, replyDestination(packet, from, via, this.replyMode));
    // Multi-homed: a broadcast goes out of every segment, each offer with that segment's address.
    const segments = answer.to.address === BROADCAST ? this.transport.segments() : NO_SEGMENTS;
    if (segments.length > 0) return this.answer(answer, segments.map((segment) => ({ segment, chosen: this.addresses.forSegment(segment) })));
    const chosen = this.addresses.fixed ?? this.addresses.choose(addressTarget(packet, relay, from, via));
    if (chosen instanceof Promise) chosen.then((c) => this.answer(answer, [{ segment: null, chosen: c }]), (err: unknown) => log.error('packet dropped: handler failed', { via, err }));
    else this.answer(answer, [{ segment: null, chosen }]);
  }

  private malformed(err: unknown, msg: Buffer, from: Peer, via: PxePort): void {
    if (!(err instanceof ProtocolError)) throw err;
    countPxeRequest(null, 'dropped', 'malformed');
    this.log.info('packet dropped: malformed', { via, peer: `${from.address}:${from.port}`, ...peek(msg), reason: err.message });
  }

  private seen(request: PxeRequest, via: PxePort, relay: RelayRead, outcome: string, chosen: AddressChoice | null = null, server: string | null = chosen?.address ?? null): void {
    countPxeRequest(request.archCode, chosen === null ? 'no-offer' : 'offered', chosen === null ? outcome : '');
    const subnet = chosen?.subnet ?? (relay.relay === null ? null : matchSubnet(this.config.server.subnets, relay.relay.link));
    this.recent.record(request.mac, { at: Date.now(), type: request.messageType, via, relay, outcome, answered: chosen !== null, server, subnet: subnetLabel(subnet), arch: request.archCode });
  }

  private answer(a: Answer, choices: readonly { segment: Segment | null; chosen: Chosen }[]): void {
    for (const { segment, chosen } of choices) {
      if ('none' in chosen) {
        this.seen(a.request, a.via, a.relay, `no offer: ${chosen.none}`);
        this.log.warn('no offer', { ...packetFields(a.request.mac, a.packet, a.via, a.from), ...relayFields(a.relay), reason: chosen.none });
        continue;
      }
      a.replies.push({ segment, chosen, reply: encode(buildProxyReply(a.packet, a.request, a.offer.file, chosen.address)) });
    }
    if (a.replies.length === 0) return;
    if (a.offer.delayMs > 0) setTimeout(() => this.reply(a), a.offer.delayMs).unref();
    else this.reply(a);
  }

  private reply(a: Answer): void {
    if (this.phase !== 'serving') return;
    const to = a.to;
    for (const r of a.replies) {
      if (r.segment === null) this.transport.send(r.reply, to, a.via);
      else this.transport.sendOnSegment(r.reply, to, r.segment);
    }
    observeOffer(a.via, (performance.now() - a.receivedAt) / 1000);
    const first = a.replies[0]!;
    const server = a.replies.length === 1 ? first.chosen.address : a.replies.map((r) => r.chosen.address).join(', ');
    this.seen(a.request, a.via, a.relay, a.offer.file, first.chosen, server);
    if (this.log.enabled('info')) {
      const where = first.segment === null ? subnetFields(first.chosen) : { server, serverWhy: 'one offer per segment, each with its address', segments: a.replies.map((r) => `${r.segment!.name} ${r.chosen.address}`).join(', ') };
      this.log.info(`${messageTypeName(a.request.messageType)} answered`, {
        ...packetFields(a.request.mac, a.packet, a.via, a.from), ...relayFields(a.relay), ...where,
        file: a.offer.file, arch: a.offer.arch, ipxe: a.request.isIpxe, to: `${to.address}:${to.port}`, reason: a.offer.reason,
      });
    }
  }

  private resendEvents(): void {
    for (const p of this.events.unacknowledged()) this.feed.sendEvent(p.eventId, p.event);
  }

  private status(): unknown {
    const ports = this.transport.ports();
    return {
      service: 'server', pid: process.pid, state: this.phase, io: this.transport.chooseIoPath().kind, batches: this.transport.batchStats(),
      ports: { dhcp: ports?.dhcp ?? this.config.server.dhcpPort, proxy: ports?.proxy ?? this.config.server.proxyPort },
      address: this.addresses.primary, addressMode: this.addresses.mode,
      subnets: this.config.server.subnets.map((x) => ({ cidr: x.cidr, address: x.address, name: x.name })),
      feed: { connected: this.feed.connected, complete: isComplete(this.feed.state), seq: this.feed.appliedSeq },
      pendingEvents: this.events.unacknowledged().length,
    };
  }

  private async explain(req: ControlRequest): Promise<Explained> {
    const mac = normalizeMac(req.query.get('mac') ?? '');
    if (mac === null) throw new HttpError(400, 'mac: not a MAC address');
    const archName = req.query.get('arch') ?? 'bios';
    if (!(ARCHES as readonly string[]).includes(archName)) throw new HttpError(400, `arch: one of ${ARCHES.join(', ')}`);
    const arch = archName as Arch;
    const ipxe = ['1', 'true', 'yes'].includes(req.query.get('ipxe') ?? '');
    const asked = req.query.get('relay') ?? '';
    if (asked !== '' && !(isIPv4(asked) && isUnicast(asked))) throw new HttpError(400, 'relay: the relay agent\'s address (giaddr), a unicast IPv4 address');
    const lastRequest = this.recent.report(mac);
    // Without --relay: the relay the machine's last request came through, if any.
    const relay = asked !== '' ? asked : (lastRequest?.relay ?? '');
    const decision = decide({ mac, archCode: codeFromArch(arch), isIpxe: ipxe, port: 'dhcp' }, this.feed.state, { consumed: this.events.consumedMacs() });
    const chain = explainChain(mac, decision, this.feed.state, { consumed: this.events.consumedMacs() }, this.config.paths);
    // Which address a DISCOVER through this relay (or on the server's own segments) would carry.
    const bound = this.transport.segments();
    const segments = relay !== '' || !this.segmentsEnabled ? [] : bound.length > 0 ? bound : this.addresses.segments();
    if (segments.length > 0) {
      return { mac, arch, ipxe, decision, via: { relay: null, segments: segments.map((x) => {
        const c = this.addresses.forSegment(x);
        return { name: x.name, address: c.address, why: c.why };
      }) }, lastRequest, chain };
    }
    const chosen = await this.addresses.choose(relay === '' ? { relay: null, client: null } : { relay, client: relay });
    const via = { relay: relay === '' ? null : relay, ...('none' in chosen ? { none: chosen.none } : { address: chosen.address, why: chosen.why, subnet: chosen.subnet === null ? null : { cidr: chosen.subnet.cidr, name: chosen.subnet.name } }) };
    return { mac, arch, ipxe, decision, via, lastRequest, chain };
  }

  private resolve(request: unknown): TftpResolution {
    const body = tftpBody(request);
    const result = resolveTftpPath(body.path, this.feed.state, { consumed: this.events.consumedMacs() }, this.config.paths.tftpRoot, (id) => readyPackagePath(this.config.paths.data, id));
    if (this.log.enabled('debug')) this.log.debug('tftp path resolved', { path: body.path, peer: `${body.address}:${body.port}`, result: result.type, reason: result.type === 'none' ? result.reason : undefined });
    return result;
  }

  private fetched(request: unknown): unknown {
    const body = tftpBody(request);
    const hit = consumedBy(body.path, this.feed.state, { consumed: this.events.consumedMacs() });
    if (hit === null) return { consumed: false };
    const p = this.events.consume(hit.mac, hit.image, this.now());
    this.log.info('once boot consumed: machine is now local', { mac: hit.mac, image: hit.image, eventId: p.eventId, peer: `${body.address}:${body.port}` });
    this.feed.sendEvent(p.eventId, p.event);
    this.publishConsumed();
    return { consumed: true, eventId: p.eventId };
  }

  private publishConsumed(): void {
    if (this.view.count > 0) this.view.publish({ consumed: [...this.events.consumedMacs()] });
  }
}

function tftpBody(body: unknown): { path: string; address: string; port: number } {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof b.path !== 'string' || b.path.length === 0 || b.path.length > 1024) throw new NetbootError('TFTP_BAD_REQUEST', 'path: required string');
  return { path: b.path, address: typeof b.address === 'string' ? b.address : '?', port: typeof b.port === 'number' ? b.port : 0 };
}

/** `52-54-00-12-34-56` or `52:54:00:12:34:56`, any case -> lower case with ':'; else null. */
function normalizeMac(s: string): string | null {
  return /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/.test(s) ? s.toLowerCase().replace(/-/g, ':') : null;
}

/** What explain says about the path a request takes: the relay, its subnet, our address. */
export interface Explained {
  readonly mac: string;
  readonly arch: Arch;
  readonly ipxe: boolean;
  readonly decision: Decision;
  readonly via: {
    readonly relay: string | null;
    readonly address?: string;
    readonly why?: string;
    readonly subnet?: { readonly cidr: string; readonly name: string | null } | null;
    readonly none?: string;
    /** Multi-homed, on the server's own segments: one offer per segment. */
    readonly segments?: readonly { readonly name: string; readonly address: string; readonly why: string }[];
  };
  /** The last request seen from this machine since the server started, and its outcome. */
  readonly lastRequest: SeenReport | null;
  /** The chain the machine walks after the offer, each file probed (null: no offer). */
  readonly chain: BootChain | null;
}

const BROADCAST = '255.255.255.255';
const NO_SEGMENTS: readonly Segment[] = [];

/** One request on its way to its reply, or one per segment (a class: one shape on the hot path). */
class Answer {
  readonly replies: { segment: Segment | null; chosen: AddressChoice; reply: Buffer }[] = [];
  readonly receivedAt = performance.now();
  constructor(
    readonly packet: DhcpPacket,
    readonly request: PxeRequest,
    readonly relay: RelayRead,
    readonly offer: Offer,
    readonly from: Peer,
    readonly via: PxePort,
    readonly to: Peer,
  ) {}
}

/** Where the client is: its relay's link, else its own address (ciaddr, or the 4011 source). */
function addressTarget(packet: DhcpPacket, read: RelayRead, from: Peer, via: PxePort): AddressTarget {
  if (read.relay !== null) return { relay: read.relay.giaddr, client: read.relay.link };
  if (packet.ciaddr !== '0.0.0.0') return { relay: null, client: packet.ciaddr };
  return { relay: null, client: via === 'proxy' ? from.address : null };
}

function subnetLabel(s: SubnetConfig | null): string | null {
  return s === null ? null : s.name === null ? s.cidr : `${s.cidr} (${s.name})`;
}

function subnetFields(c: AddressChoice): LogFields {
  return { server: c.address, serverWhy: c.why, ...(c.subnet === null ? {} : { subnet: subnetLabel(c.subnet) }) };
}

function packetFields(mac: string | null, packet: DhcpPacket, via: PxePort, from: Peer): LogFields {
  return { mac, xid: hex(packet.xid), via, peer: `${from.address}:${from.port}` };
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
