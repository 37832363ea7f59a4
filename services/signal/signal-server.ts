// The Signal port: a ws server that the PXE server tells when it (re)started. Owns the socket;
// a message it cannot read is answered with an error and logged, and the port keeps serving.
import { WebSocketServer, type WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../../platform/runtime/errors.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { decodeToSignal, encodeFromSignal, MAX_MESSAGE_BYTES, type ServerStarted } from '../../platform/local/signal-protocol.ts';

export class SignalServer implements Lifecycle {
  private wss: WebSocketServer | null = null;

  constructor(
    private readonly bind: string,
    private readonly port: number,
    private readonly onServerStarted: (message: ServerStarted, peer: string) => void,
    private readonly log: Logger,
  ) {}

  /** The bound port (differs from the configured one when that is 0). */
  get boundPort(): number | null {
    const address = this.wss?.address();
    return typeof address === 'object' && address !== null ? (address as AddressInfo).port : null;
  }

  async start(): Promise<void> {
    const wss = new WebSocketServer({ host: this.bind, port: this.port, maxPayload: MAX_MESSAGE_BYTES });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    wss.on('error', (err) => this.log.error('signal port error', { err }));
    wss.on('connection', (ws, req) => this.accept(ws, `${req.socket.remoteAddress}:${req.socket.remotePort}`));
    this.wss = wss;
    this.log.info('signal port listening', { bind: this.bind, port: this.boundPort });
  }

  private accept(ws: WebSocket, peer: string): void {
    const log = this.log.child({ peer });
    log.debug('signal connection');
    ws.on('error', (err) => log.warn('signal connection error', { err }));
    ws.on('message', (data, isBinary) => {
      try {
        if (isBinary) throw new Error('binary frames are not part of the protocol');
        const message = decodeToSignal(rawText(data));
        log.info('PXE server started', { pid: message.pid, at: message.at });
        ws.send(encodeFromSignal({ type: 'ack' }));
        this.onServerStarted(message, peer);
      } catch (err) {
        log.warn('signal message dropped', { reason: errorMessage(err) });
        ws.send(encodeFromSignal({ type: 'error', message: errorMessage(err) }));
      }
    });
  }

  async stop(): Promise<void> {
    const wss = this.wss;
    this.wss = null;
    if (wss === null) return;
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }
}

function rawText(data: Buffer | ArrayBuffer | Buffer[]): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}
