// The Signal port: a ws server that the PXE server tells when it (re)started. Owns the socket;
// a message it cannot read is answered with an error and logged, and the port keeps serving.
// Only our own processes are heard: a connection proves the local key (<data>/run/local.key,
// mode 0600; platform/trust/local-key.ts) by challenge-response before any message counts, and a
// local user without it is refused and logged. The port holds at most MAX_CONNECTIONS
// connections (MAX_PER_ADDRESS from one address), each for at most HELLO_TIMEOUT_MS unproved.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { errorMessage } from '../../platform/runtime/errors.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import { RateLimitedLog } from '../../platform/runtime/log-limit.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { quote } from '../../platform/runtime/quote.ts';
import { ConnectionGate, type ConnectionLimits } from '../../platform/trust/connection-gate.ts';
import { acceptLink } from '../../platform/trust/link-accept.ts';
import { LOCAL_SERVER_ID, type LocalKey } from '../../platform/trust/local-key.ts';
import { decodeToSignal, encodeFromSignal, MAX_MESSAGE_BYTES, type ServerStarted } from '../../platform/local/signal-protocol.ts';

export const SIGNAL_LIMITS: ConnectionLimits = { maxConnections: 64, maxConnectionsPerAddress: 32 };
const HELLO_TIMEOUT_MS = 3000;
const MAX_HEADER_BYTES = 8 * 1024;

export class SignalServer implements Lifecycle {
  private http: Server | null = null;
  private wss: WebSocketServer | null = null;
  private readonly refusals: RateLimitedLog;
  readonly gate: ConnectionGate;

  constructor(
    private readonly bind: string,
    private readonly port: number,
    private readonly onServerStarted: (message: ServerStarted, peer: string) => void,
    private readonly log: Logger,
    private readonly localKey: LocalKey,
    limits: ConnectionLimits = SIGNAL_LIMITS,
  ) {
    this.refusals = new RateLimitedLog(log);
    this.gate = new ConnectionGate(limits, this.refusals, 'signal port');
  }

  /** The bound port (differs from the configured one when that is 0). */
  get boundPort(): number | null {
    const address = this.http?.address();
    return typeof address === 'object' && address !== null ? (address as AddressInfo).port : null;
  }

  async start(): Promise<void> {
    this.localKey.get(); // made now if Signal is the first service to start
    const http = createServer({ maxHeaderSize: MAX_HEADER_BYTES, headersTimeout: HELLO_TIMEOUT_MS, requestTimeout: 10_000 }, (_req, res) => {
      res.writeHead(426, { connection: 'close' }).end('the Signal port speaks WebSocket\n');
    });
    http.on('connection', (socket: Socket) => void this.gate.admit(socket));
    http.on('clientError', (err, socket) => {
      this.refusals.warn('signal port: request refused', { remote: (socket as Socket).remoteAddress, reason: errorMessage(err).slice(0, 80) });
      socket.destroy();
    });
    const wss = new WebSocketServer({ server: http, maxPayload: MAX_MESSAGE_BYTES });
    wss.on('error', (err) => this.log.error('signal port error', { err }));
    wss.on('connection', (ws, req) => this.accept(ws, `${req.socket.remoteAddress}:${req.socket.remotePort}`, req.socket));
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(this.port, this.bind, () => {
        http.off('error', reject);
        resolve();
      });
    });
    http.on('error', (err) => this.log.error('signal port error', { err }));
    this.http = http;
    this.wss = wss;
    this.log.info('signal port listening', { bind: this.bind, port: this.boundPort });
  }

  private accept(ws: WebSocket, peer: string, socket: Socket): void {
    const log = this.log.child({ peer });
    log.debug('signal connection');
    acceptLink(ws, {
      serverId: LOCAL_SERVER_ID, keyFor: () => this.localKey.get(), sealed: false, helloTimeoutMs: HELLO_TIMEOUT_MS,
      refuseCode: 4001, refusedMessage: 'signal connection refused: no proof of the local key', remote: peer, log, refusals: this.refusals,
    }, {
      onAuthenticated: (link) => {
        this.gate.prove(socket);
        return (text) => {
          try {
            const message = decodeToSignal(text);
            log.info('PXE server started', { pid: message.pid, at: message.at });
            link.send(encodeFromSignal({ type: 'ack' }));
            this.onServerStarted(message, peer);
          } catch (err) {
            log.warn('signal message dropped', { reason: quote(errorMessage(err), 200) });
            link.send(encodeFromSignal({ type: 'error', message: errorMessage(err) }));
          }
        };
      },
    });
  }

  async stop(): Promise<void> {
    const http = this.http;
    const wss = this.wss;
    this.http = null;
    this.wss = null;
    if (http === null || wss === null) return;
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  }
}
