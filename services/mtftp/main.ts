// Composition root of the mtftp process: the TFTP service over the configured root (the native
// UDP addon loaded here, once), boot hooks that ask the PXE server over its local channel (from
// the followed copy of its view when current), and this process's own control socket (GET /status).
import { configPathFrom, loadConfig, type Config } from '../../platform/runtime/config.ts';
import { ControlServer, controlSocketPath } from '../../platform/local/control.ts';
import { errorMessage } from '../../platform/runtime/errors.ts';
import { ChannelClient, channelSocketPath } from '../../platform/local/local-channel.ts';
import { runUntilSignal } from '../../platform/runtime/lifecycle.ts';
import { createLogger, type Logger } from '../../platform/runtime/logger.ts';
import { notifyReady } from '../../platform/runtime/sd-notify.ts';
import { serverBootHooks, type BootHooks } from './boot-hooks.ts';
import { HttpBootServer } from './http-server.ts';
import { MtftpService } from './mtftp-service.ts';
import { loadNativeLink, type NativeSupport } from './native-link.ts';
import { ServerView } from './server-view.ts';
import { TftpRoot } from './tftp-root.ts';
import { TftpServer } from './tftp-server.ts';

/** The TFTP service with its server and root; `native`: the addon, or why not (tests). */
export function buildMtftp(config: Config, log: Logger, hooks: BootHooks, native: NativeSupport = loadNativeLink()): MtftpService {
  const m = config.mtftp;
  const root = new TftpRoot(config.paths.tftpRoot);
  const server = new TftpServer({
    bind: m.bind,
    port: m.port,
    root,
    limits: { maxBlockSize: m.maxBlockSize, maxWindowSize: m.maxWindowSize, timeoutMs: m.timeoutMs, retries: m.retries },
    hooks,
    log,
    sendPath: m.sendPath,
    native,
    maxTransfers: m.maxTransfers,
    maxTransfersPerClient: m.maxTransfersPerClient,
    maxSessionMs: m.maxSessionS * 1000,
  });
  return new MtftpService(server, root, log);
}

/** Boot HTTP over the same root and hooks, or null when `[http] enabled = false`. */
export function buildHttpBoot(config: Config, log: Logger, hooks: BootHooks): HttpBootServer | null {
  const h = config.http;
  if (!h.enabled) return null;
  return new HttpBootServer({
    bind: h.bind,
    port: h.port,
    root: new TftpRoot(config.paths.tftpRoot),
    hooks,
    log,
    maxConnections: h.maxConnections,
    maxConnectionsPerClient: h.maxConnectionsPerClient,
    idleTimeoutMs: h.idleTimeoutS * 1000,
    maxResponseMs: h.maxResponseS * 1000,
  });
}

export async function main(config: Config, log: Logger): Promise<number> {
  const mlog = log.child({ service: 'mtftp' });
  const channel = new ChannelClient(channelSocketPath(config.paths.data, 'server'));
  const view = new ServerView(channel, { tftpRoot: config.paths.tftpRoot, data: config.paths.data, ...(config.http.enabled ? { httpPort: config.http.port } : {}) }, mlog);
  const hooks = serverBootHooks(channel, view, mlog);
  const service = buildMtftp(config, mlog, hooks);
  const http = buildHttpBoot(config, mlog, hooks);
  const control = new ControlServer(controlSocketPath(config.paths.data, 'mtftp'), {
    // `view`: whether netboot/ paths are resolved from the followed copy, or asked per request.
    'GET /status': () => ({
      ...service.status(),
      view: view.current ? 'following' : 'asking',
      http: http === null ? null : { port: http.port, connections: http.connections, responses: http.activeResponses },
    }),
  }, mlog);
  // Control first, so status answers "starting" and "stopping" while the service changes state.
  // Ready for systemd once port 69 is bound (Type=notify: without this the unit never leaves
  // "activating", and systemd fails it at its start timeout).
  return runUntilSignal('mtftp', [control, view, service, ...(http === null ? [] : [http])], mlog, () => void notifyReady(mlog, `serving TFTP on port ${service.status().ports.tftp}`));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--config');
  let config: Config;
  try {
    config = loadConfig(configPathFrom(at >= 0 ? args[at + 1] : undefined, process.env));
  } catch (err) {
    process.stderr.write(`mtftp: ${errorMessage(err)}\n`);
    process.exit(2);
  }
  process.exitCode = await main(config, createLogger({ level: config.log.level }));
}
