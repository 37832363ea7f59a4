// Composition root of the PXE server process: builds every part from the config and hands each
// its collaborators (the native socket addon is loaded here, once); nothing starts here. Tests
// build the same server with buildServer and start/stop it themselves.
import { join } from 'node:path';
import type { Config } from '../../platform/runtime/config.ts';
import { ControlServer, controlSocketPath } from '../../platform/local/control.ts';
import { ChannelServer, channelSocketPath } from '../../platform/local/local-channel.ts';
import { runUntilSignal, type Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { notifyReady } from '../../platform/runtime/sd-notify.ts';
import { announceServerStarted, signalUrl } from '../../platform/local/signal-client.ts';
import { ReplyOptionCache } from '../../boot/pxe-reply.ts';
import { RecentRequests } from '../../boot/recent-requests.ts';
import { TftpViewPublisher } from '../../boot/tftp-view.ts';
import { loadUdpBatch } from './batch-socket.ts';
import { BootEvents } from './boot-events.ts';
import { DhcpTransport, defaultReplyMode } from './dhcp-transport.ts';
import { FeedClient } from './feed-client.ts';
import { ServerAddresses } from './server-address.ts';
import { ServerService, type ServerServiceOptions } from './server-service.ts';
import { reachablePort } from '../../platform/local/bound-port.ts';
import { LocalKey, localProof } from '../../platform/trust/local-key.ts';
import { SignalAnnouncer } from './signal-announcer.ts';

const NO_ANNOUNCER: Lifecycle = Object.freeze({ start: async () => {}, stop: async () => {} });

export function buildServer(config: Config, log: Logger, options: ServerServiceOptions = {}): ServerService {
  // The parts report to the service, built last: the closures run only once it has started.
  const addresses = new ServerAddresses(config.server, config.source, options.addressDeps);
  const replyMode = options.replyMode ?? defaultReplyMode(config.server.bind);
  // Several segments only where broadcasts are received and sent: the wildcard bind.
  const segmentsEnabled = replyMode === 'broadcast' && config.server.bind === '0.0.0.0';
  const native = (options.loadNative ?? loadUdpBatch)();
  const transport = new DhcpTransport(
    { bind: config.server.bind, dhcpPort: config.server.dhcpPort, proxyPort: config.server.proxyPort, ioPath: config.server.ioPath, loadNative: () => native, batchEnd: () => service.offersSent(), ...(segmentsEnabled ? { segments: () => addresses.segments() } : {}) },
    (msg, from, via, receivedAt) => service.onDatagram(msg, from, via, receivedAt),
    log.child({ part: 'dhcp' }),
  );
  const host = config.interface.bind === '0.0.0.0' ? '127.0.0.1' : config.interface.bind;
  // Port 0 (tests): the port the Interface recorded at its start, asked again at each reconnect.
  const feedUrl = (): string => `ws://${host}:${reachablePort(config.paths.data, 'interface', config.interface.port)}/feed`;
  const feed = new FeedClient(feedUrl, LocalKey.of(config.paths.data), {
    onState: (state, change) => service.onState(state, change),
    onEventAck: (eventId) => service.onEventAck(eventId),
    onConnected: () => service.resendEvents(),
  }, log.child({ part: 'feed' }));
  const view = new TftpViewPublisher();
  const events = new BootEvents(join(config.paths.data, 'server', 'pending-events.json'), log.child({ part: 'events' }));
  const recent = new RecentRequests();
  const control = new ControlServer(controlSocketPath(config.paths.data, 'server'), {
    'GET /status': () => service.status(),
    'GET /explain': (req) => service.explain(req),
    'GET /recent': (req) => recent.list(Number(req.query.get('since') ?? 0), Number(req.query.get('limit') ?? 50)),
  }, log.child({ part: 'control' }));
  // MTFTP's questions, on their own low-latency channel: a machine waits for each answer.
  const channel = new ChannelServer(channelSocketPath(config.paths.data, 'server'), {
    'tftp.follow': (_body, peer) => view.follow(peer, { state: feed.state, consumed: [...events.consumedMacs()] }),
    'tftp.resolve': (body) => service.resolve(body),
    'tftp.fetched': (body) => service.fetched(body),
  }, log.child({ part: 'channel' }));
  const service: ServerService = new ServerService(
    { feed, events, transport, control, channel, addresses, view, recent, cache: new ReplyOptionCache(), announcer: options.announcer ?? NO_ANNOUNCER },
    { config, replyMode, segmentsEnabled, now: options.now ?? (() => new Date()), onServing: options.onServing ?? (() => {}) },
    log,
  );
  return service;
}

export async function main(config: Config, log: Logger): Promise<number> {
  let service: ServerService;
  try {
    const proof = localProof(LocalKey.of(config.paths.data));
    const announcer = new SignalAnnouncer(() => announceServerStarted(signalUrl(config), proof), log.child({ part: 'signal' }));
    // Ready for systemd only once it holds complete state and has bound its ports.
    service = buildServer(config, log, { announcer, onServing: () => void notifyReady(log, 'serving proxyDHCP') });
  } catch (err) {
    log.error('server failed to start', { err });
    return 1;
  }
  return runUntilSignal('server', [service], log);
}
