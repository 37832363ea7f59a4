// The PXE server: follows the Interface's state feed, binds the DHCP sockets once the state is
// complete, answers PXE clients by the one answer path (boot/answer.ts), resolves netboot/ paths
// for the MTFTP service and consumes `once` boots when a boot program was fetched. main.ts builds
// every part and passes it in; this class starts them, stops them, and sends, logs and records
// what the answer path decides.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
// Imported, not the global: `performance` on globalThis is a lazy getter, called at every use.
import { performance } from 'node:perf_hooks';
import type { Config } from '../../platform/runtime/config.ts';
import type { ControlRequest, ControlServer, ServiceStatusBody } from '../../platform/local/control.ts';
import { NetbootError } from '../../platform/runtime/errors.ts';
import type { ChannelServer } from '../../platform/local/local-channel.ts';
import { isComplete, type FeedChange, type FeedState } from '../../boot/feed-protocol.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { LogFields, Logger } from '../../platform/runtime/logger.ts';
import type { BootEvents } from './boot-events.ts';
import type { DhcpPacket } from '../../protocols/dhcp/dhcp-codec.ts';
import { messageTypeName } from '../../protocols/dhcp/dhcp-options.ts';
import type { BatchSupport } from './batch-socket.ts';
import type { DhcpTransport, Peer, ReplyMode } from './dhcp-transport.ts';
import type { FeedClient } from './feed-client.ts';
import { answer, type AddressChoice, type Arrival, type Reply } from '../../boot/answer.ts';
import type { ReplyOptionCache } from '../../boot/pxe-reply.ts';
import type { PxePort, PxeRequest } from '../../boot/pxe-request.ts';
import type { RecentRequests } from '../../boot/recent-requests.ts';
import { relayFields, type RelayRead } from '../../boot/relay.ts';
import type { AddressDeps, ServerAddresses } from './server-address.ts';
import { explainMachine, type Explained } from './explain-route.ts';
import { LiveAnswerState } from './live-answer-state.ts';
import { matchSubnet, type SubnetConfig } from '../../platform/runtime/config.ts';
import { consumedBy, resolveTftpPath, type TftpResolution } from '../../boot/tftp-resolve.ts';
import type { TftpViewPublisher } from '../../boot/tftp-view.ts';
import { readyPackagePath } from '../../packages/layout.ts';
import { warmUp, warmUpState } from '../../boot/warm-up.ts';
import { countPxeRequest, observeOffer } from '../../boot/pxe-metrics.ts';
import { enrolSecrets } from '../../boot/enrol-secret.ts';
import { LocalKey } from '../../platform/trust/local-key.ts';

export type ServerState = 'waiting-for-state' | 'serving' | 'stopping';

/** What a test (or main) may choose when the server is built (main.ts, buildServer). */
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

/** The parts the server runs, built by main.ts. */
export interface ServerParts {
  readonly feed: FeedClient;
  readonly events: BootEvents;
  readonly transport: DhcpTransport;
  readonly control: ControlServer;
  readonly channel: ChannelServer;
  readonly addresses: ServerAddresses;
  readonly view: TftpViewPublisher;
  readonly recent: RecentRequests;
  /** Encoded option values that repeat, for the answer path. */
  readonly cache: ReplyOptionCache;
  /** Tells Signal that we (re)started (a no-op part without Signal). */
  readonly announcer: Lifecycle;
}

export interface ServerSettings {
  readonly config: Config;
  readonly replyMode: ReplyMode;
  /** Several segments only where broadcasts are received and sent: the wildcard bind. */
  readonly segmentsEnabled: boolean;
  readonly now: () => Date;
  readonly onServing: () => void;
}

const BIND_RETRY_MS = 5000;
/** Offers of one batch whose latency waits for the batch's end; past this many, observed at once. */
const MAX_UNOBSERVED = 1024;

export class ServerService implements Lifecycle {
  private phase: ServerState = 'waiting-for-state';
  private binding: Promise<void> | null = null;
  private bindTimer: NodeJS.Timeout | null = null;
  private warnings: readonly string[] = [];
  private readonly config: Config;
  /** What the answer path is given for a datagram on the sockets (fields read per datagram). */
  private readonly live: LiveAnswerState;
  /** Initial deployment: each unknown machine's enrolment secret, from the local key (read on first use). */
  private readonly enrolSecret: (mac: string) => string;
  /**
   * Offers sent in the batch being delivered, until offersSent(): arrival times and ports (1:
   * proxy). Typed arrays filled from the start: no allocation, no keyed look-up per offer.
   */
  private readonly unobservedAt = new Float64Array(MAX_UNOBSERVED);
  private readonly unobservedProxy = new Uint8Array(MAX_UNOBSERVED);
  private unobserved = 0;

  constructor(private readonly parts: ServerParts, private readonly settings: ServerSettings, private readonly log: Logger) {
    this.config = settings.config;
    const localKey = LocalKey.of(this.config.paths.data);
    this.enrolSecret = enrolSecrets(() => localKey.get());
    const { feed, events, addresses, transport, cache } = parts;
    this.live = new LiveAnswerState(feed, events, transport, addresses, settings.replyMode, cache, this.config.http.enabled ? this.config.http.port : undefined);
  }

  get state(): ServerState {
    return this.phase;
  }

  /** Bound DHCP ports, once serving. */
  get ports(): { dhcp: number; proxy: number } | null {
    return this.parts.transport.ports();
  }

  /** Which sockets serve 67 and 4011 (`[server] io_path`), and why. */
  get ioPath(): 'native' | 'dgram' {
    return this.parts.transport.chooseIoPath().kind;
  }

  async start(): Promise<void> {
    const { transport, events, control, channel, feed, announcer } = this.parts;
    // io_path = "native" without the addon: refused now, not at every bind retry.
    const io = transport.chooseIoPath();
    events.load();
    await control.start();
    await channel.start();
    await feed.start();
    await announcer.start();
    if (!existsSync(this.config.paths.tftpRoot)) this.warn([`tftp_root ${this.config.paths.tftpRoot} does not exist: every boot file fetch will fail`]);
    this.log.info('waiting for complete state from the Interface', { feed: `${this.config.interface.port}`, io: io.kind, ioReason: io.reason });
  }

  async stop(): Promise<void> {
    const { transport, channel, control, feed, announcer } = this.parts;
    this.phase = 'stopping';
    if (this.bindTimer !== null) clearTimeout(this.bindTimer);
    await announcer.stop();
    await feed.stop();
    await this.binding;
    await transport.stop();
    await channel.stop();
    await control.stop();
  }

  onState(state: FeedState, change: FeedChange | null): void {
    const { events, view } = this.parts;
    events.onChange(change);
    if (view.count > 0) view.publish({ ...(change === null ? { state } : { change }), consumed: [...events.consumedMacs()] });
    if (change === null || change.table === 'config') this.checkBootFiles(state);
    if (this.phase === 'waiting-for-state' && isComplete(state) && this.binding === null) this.bind();
  }

  onEventAck(eventId: string): void {
    this.parts.events.acknowledge(eventId, this.parts.feed.state);
    this.publishConsumed();
  }

  /** The feed (re)connected: events not yet acknowledged are sent again. */
  resendEvents(): void {
    for (const p of this.parts.events.unacknowledged()) this.parts.feed.sendEvent(p.eventId, p.event);
  }

  /** Start-up checks that would fail every request: logged once each, and in the status. */
  private warn(found: readonly string[]): void {
    for (const w of found) if (!this.warnings.includes(w)) this.log.warn(w);
    this.warnings = found;
  }

  /** The boot files config.bootFiles names must be in the TFTP root (netboot/ paths are resolved, not files). */
  private checkBootFiles(state: FeedState): void {
    const root = this.config.paths.tftpRoot;
    const found: string[] = [];
    if (!existsSync(root)) found.push(`tftp_root ${root} does not exist: every boot file fetch will fail`);
    for (const [arch, file] of Object.entries(state.config?.bootFiles ?? {})) {
      const rel = (file ?? '').replaceAll('\\', '/').replace(/^\/+/, '');
      if (rel === '' || rel.toLowerCase().startsWith('netboot/')) continue;
      if (!existsSync(join(root, rel))) found.push(`boot file ${file} (config.bootFiles ${arch}) is not in tftp_root ${root}: machines offered it cannot boot`);
    }
    this.warn(found);
  }

  private bind(): void {
    const { transport, addresses } = this.parts;
    this.warmUp();
    this.binding = transport.start().then(
      () => {
        if (this.phase === 'stopping') return;
        this.phase = 'serving';
        const ports = transport.ports()!;
        this.log.info(`state complete; serving on ${this.config.server.bind}:${ports.dhcp} and :${ports.proxy}`, {
          bind: this.config.server.bind, ports, address: addresses.mode, subnets: this.config.server.subnets.length, replyMode: this.settings.replyMode,
          segments: transport.segments().map((x) => `${x.name} ${x.address}`), io: transport.chooseIoPath().kind,
        });
        this.settings.onServing();
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
      const address = this.parts.addresses.primary ?? '127.0.0.1';
      this.live.rehearse(warmUpState(address, this.parts.cache), () => warmUp(address, this.parts.cache, undefined, this.live));
    } catch (err) {
      this.log.warn('warm-up of the answer path failed (the first answers may be slower)', { err });
    }
    this.parts.addresses.prime();
  }

  /**
   * The socket handler: the answer path decides; this sends, logs and records. `receivedAt`:
   * performance.now() when the transport took the datagram (one reading per received batch).
   */
  onDatagram(msg: Buffer, from: Peer, via: PxePort, receivedAt = performance.now()): void {
    const arrival: Arrival = { from, via };
    const a = answer(msg, arrival, this.live);
    if (a.kind === 'lookup') {
      // Our address toward a destination never seen: its route is looked up, then asked again.
      const pending = this.parts.addresses.choose(a.target);
      void Promise.resolve(pending).then(
        (chosen) => this.act(answer(msg, arrival, { ...this.live.snapshot(), address: () => chosen }), from, via, receivedAt, false),
        (err: unknown) => this.log.error('packet dropped: handler failed', { via, err }),
      );
      return;
    }
    this.act(a, from, via, receivedAt, true);
  }

  /** `inBatch`: called while the transport delivers the datagram's batch (not later, from a timer or a look-up). */
  private act(a: ReturnType<typeof answer>, from: Peer, via: PxePort, receivedAt: number, inBatch: boolean): void {
    // Log fields are built only when a record is written: this runs for every packet on the LAN.
    const log = this.log;
    switch (a.kind) {
      case 'malformed':
        countPxeRequest(null, 'dropped', 'malformed');
        log.info('packet dropped: malformed', { via, peer: `${from.address}:${from.port}`, ...(a.xid === undefined ? {} : { xid: a.xid }), ...(a.mac === undefined ? {} : { mac: a.mac }), reason: a.reason });
        return;
      case 'ignored':
        countPxeRequest(null, 'ignored', a.reason);
        if (log.enabled('debug')) log.debug('ignored', { ...packetFields(a.mac, a.packet, via, from), reason: a.reason });
        return;
      case 'dropped':
        countPxeRequest(a.request.archCode, 'dropped', a.reason);
        log.info('packet dropped', { ...packetFields(a.request.mac, a.packet, via, from), hops: a.packet.hops, giaddr: a.packet.giaddr, reason: a.reason });
        return;
      case 'not-ours':
        this.seen(a.request, via, a.relay, a.reason);
        if (log.enabled('debug')) log.debug('ignored', { ...packetFields(a.request.mac, a.packet, via, from), ...relayFields(a.relay), reason: a.reason });
        return;
      case 'no-offer':
        this.seen(a.request, via, a.relay, `no offer: ${a.reason}`);
        if (log.enabled('info')) log.info('no offer', { ...packetFields(a.request.mac, a.packet, via, from), ...relayFields(a.relay), type: messageTypeName(a.request.messageType), arch: a.request.archCode, ipxe: a.request.isIpxe, reason: a.reason });
        return;
      case 'no-address':
        this.seen(a.request, via, a.relay, `no offer: ${a.reason}`);
        log.warn('no offer', { ...packetFields(a.request.mac, a.packet, via, from), ...relayFields(a.relay), reason: a.reason });
        return;
      case 'lookup':
        log.error('packet dropped: handler failed', { via, err: 'our address is still unknown after its route was looked up' });
        return;
      case 'reply':
        if (a.offer.delayMs > 0) setTimeout(() => this.reply(a, from, via, receivedAt, false), a.offer.delayMs).unref();
        else this.reply(a, from, via, receivedAt, inBatch);
    }
  }

  private seen(request: PxeRequest, via: PxePort, relay: RelayRead, outcome: string, chosen: AddressChoice | null = null, server: string | null = chosen?.address ?? null): void {
    countPxeRequest(request.archCode, chosen === null ? 'no-offer' : 'offered', chosen === null ? outcome : '');
    const subnet = chosen?.subnet ?? (relay.relay === null ? null : matchSubnet(this.config.server.subnets, relay.relay.link));
    this.parts.recent.record(request.mac, { at: Date.now(), type: request.messageType, via, relay, outcome, answered: chosen !== null, server, subnet: subnetLabel(subnet), arch: request.archCode });
  }

  private reply(a: Reply, from: Peer, via: PxePort, receivedAt: number, inBatch: boolean): void {
    if (this.phase !== 'serving') return;
    const to = a.to;
    const transport = this.parts.transport;
    for (const r of a.replies) {
      if (r.segment === null) transport.send(r.bytes, to, via);
      else transport.sendOnSegment(r.bytes, to, r.segment);
    }
    // Inside a batch the offer leaves when the batch is done: its latency is observed then
    // (offersSent), with one clock reading for the whole batch.
    const n = this.unobserved;
    if (inBatch && n < MAX_UNOBSERVED) {
      this.unobservedAt[n] = receivedAt;
      this.unobservedProxy[n] = via === 'proxy' ? 1 : 0;
      this.unobserved = n + 1;
    } else {
      observeOffer(via, (performance.now() - receivedAt) / 1000);
    }
    const first = a.replies[0]!;
    const server = a.replies.length === 1 ? first.chosen.address : a.replies.map((r) => r.chosen.address).join(', ');
    this.seen(a.request, via, a.relay, a.offer.file, first.chosen, server);
    if (this.log.enabled('info')) {
      const where = first.segment === null ? subnetFields(first.chosen) : { server, serverWhy: 'one offer per segment, each with its address', segments: a.replies.map((r) => `${r.segment!.name} ${r.chosen.address}`).join(', ') };
      this.log.info(`${messageTypeName(a.request.messageType)} answered`, {
        ...packetFields(a.request.mac, a.packet, via, from), ...relayFields(a.relay), ...where,
        file: a.offer.file, arch: a.offer.arch, ipxe: a.request.isIpxe, to: `${to.address}:${to.port}`, reason: a.offer.reason,
      });
    }
  }

  /**
   * The transport has sent the replies of the batch it just delivered (native path), or of the
   * datagram (node:dgram): their offers' latencies are observed, from one clock reading.
   */
  offersSent(): void {
    const n = this.unobserved;
    if (n === 0) return;
    const now = performance.now();
    for (let i = 0; i < n; i++) observeOffer(this.unobservedProxy[i] === 1 ? 'proxy' : 'dhcp', (now - this.unobservedAt[i]!) / 1000);
    this.unobserved = 0;
  }

  status(): ServiceStatusBody & Record<string, unknown> {
    const { transport, addresses, feed, events } = this.parts;
    const ports = transport.ports();
    return {
      service: 'server', pid: process.pid, state: this.phase, io: transport.chooseIoPath().kind, batches: transport.batchStats(),
      ports: { dhcp: ports?.dhcp ?? this.config.server.dhcpPort, proxy: ports?.proxy ?? this.config.server.proxyPort },
      address: addresses.primary, addressMode: addresses.mode,
      subnets: this.config.server.subnets.map((x) => ({ cidr: x.cidr, address: x.address, name: x.name })),
      feed: { connected: feed.connected, complete: isComplete(feed.state), seq: feed.appliedSeq },
      pendingEvents: events.unacknowledged().length,
      warnings: this.warnings,
    };
  }

  /** `netboot explain`: the DISCOVER this machine would send, through the answer path. */
  explain(req: ControlRequest): Promise<Explained> {
    const { recent, transport, addresses } = this.parts;
    // Before the sockets are bound: the segments they would be bound on.
    const bound = transport.segments();
    const segments = !this.settings.segmentsEnabled ? [] : bound.length > 0 ? bound : addresses.segments();
    return explainMachine(req, { recent, addresses, paths: this.config.paths, state: { ...this.live.snapshot(), segments } });
  }

  resolve(request: unknown): TftpResolution {
    const body = tftpBody(request);
    const result = resolveTftpPath(body.path, this.parts.feed.state, { consumed: this.parts.events.consumedMacs(), httpPort: this.live.httpPort, enrolSecret: this.enrolSecret }, this.config.paths.tftpRoot, (id) => readyPackagePath(this.config.paths.data, id));
    if (this.log.enabled('debug')) this.log.debug('tftp path resolved', { path: body.path, peer: `${body.address}:${body.port}`, result: result.type, reason: result.type === 'none' ? result.reason : undefined });
    return result;
  }

  fetched(request: unknown): unknown {
    const body = tftpBody(request);
    const hit = consumedBy(body.path, this.parts.feed.state, { consumed: this.parts.events.consumedMacs() });
    if (hit === null) return { consumed: false };
    const p = this.parts.events.consume(hit.mac, hit.image, this.settings.now(), hit.jobId);
    this.log.info(hit.jobId === undefined ? 'once boot consumed: machine is now local' : 'job preboot consumed: machine waits until the job ends', { mac: hit.mac, image: hit.image, jobId: hit.jobId, eventId: p.eventId, peer: `${body.address}:${body.port}` });
    this.parts.feed.sendEvent(p.eventId, p.event);
    this.publishConsumed();
    return { consumed: true, eventId: p.eventId };
  }

  private publishConsumed(): void {
    if (this.parts.view.count > 0) this.parts.view.publish({ consumed: [...this.parts.events.consumedMacs()] });
  }
}

function tftpBody(body: unknown): { path: string; address: string; port: number } {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof b.path !== 'string' || b.path.length === 0 || b.path.length > 1024) throw new NetbootError('TFTP_BAD_REQUEST', 'path: required string');
  return { path: b.path, address: typeof b.address === 'string' ? b.address : '?', port: typeof b.port === 'number' ? b.port : 0 };
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
