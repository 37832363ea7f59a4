// The PXE server's side of the Signal port: say "I (re)started" and wait for the ack. One call,
// one short connection; the caller decides what a failure means (Signal being down must not stop
// a PXE server from serving its persisted state).
import { WebSocket } from 'ws';
import type { Config } from '../runtime/config.ts';
import { NetbootError, errorMessage } from '../runtime/errors.ts';
import type { FromSignal } from './signal-protocol.ts';

/** Where a process on this host reaches Signal: its bind address, or loopback for a wildcard bind. */
export function signalUrl(config: Config): string {
  const host = config.signal.bind === '0.0.0.0' ? '127.0.0.1' : config.signal.bind;
  return `ws://${host}:${config.signal.port}/`;
}

export async function announceServerStarted(url: string, timeoutMs = 5000, pid = process.pid): Promise<void> {
  const ws = new WebSocket(url, { handshakeTimeout: timeoutMs });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.once('open', () => ws.send(JSON.stringify({ type: 'server-started', pid, at: new Date().toISOString() })));
      ws.once('message', (data) => {
        clearTimeout(timer);
        let reply: FromSignal;
        try {
          reply = JSON.parse(String(data)) as FromSignal;
        } catch {
          return reject(new Error('answer is not JSON'));
        }
        if (reply.type === 'ack') resolve();
        else reject(new Error(`refused: ${reply.type === 'error' ? reply.message : JSON.stringify(reply)}`));
      });
    });
  } catch (err) {
    throw new NetbootError('SIGNAL_UNREACHABLE', `signal at ${url}: ${errorMessage(err)}`);
  } finally {
    ws.terminate();
  }
}
