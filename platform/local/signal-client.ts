// The PXE server's side of the Signal port: say "I (re)started" and wait for the ack. One call,
// one short connection; the caller decides what a failure means (Signal being down must not stop
// a PXE server from serving its persisted state). Signal answers only our own processes: the
// connection first proves the local key (platform/trust/local-key.ts: localProof), whose
// challenge-response is handed in here as `proof`.
import { WebSocket } from 'ws';
import type { Config } from '../runtime/config.ts';
import { reachablePort } from './bound-port.ts';
import { NetbootError, errorMessage } from '../runtime/errors.ts';
import type { FromSignal } from './signal-protocol.ts';

/** The client side of a challenge-response: each frame from the server in, the reply (or none once proved) out. */
export interface ClientProof {
  next(text: string): { readonly reply: string | null };
}

/**
 * Where a process on this host reaches Signal: its bind address, or loopback for a wildcard bind;
 * for port 0 (tests) the port Signal recorded (bound-port.ts). Ask again before each attempt.
 */
export function signalUrl(config: Config): string {
  const host = config.signal.bind === '0.0.0.0' ? '127.0.0.1' : config.signal.bind;
  return `ws://${host}:${reachablePort(config.paths.data, 'signal', config.signal.port)}/`;
}

export async function announceServerStarted(url: string, proof: () => ClientProof, timeoutMs = 5000, pid = process.pid): Promise<void> {
  const ws = new WebSocket(url, { handshakeTimeout: timeoutMs, maxPayload: 64 * 1024 });
  try {
    const handshake = proof();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      let proved = false;
      ws.once('error', fail);
      ws.on('close', (code, reason) => fail(new Error(`closed (code ${code}${reason.length > 0 ? `: ${reason.toString().slice(0, 80)}` : ''})`)));
      ws.on('message', (data) => {
        if (!proved) {
          try {
            const step = handshake.next(String(data));
            if (step.reply !== null) ws.send(step.reply);
            else {
              proved = true;
              ws.send(JSON.stringify({ type: 'server-started', pid, at: new Date().toISOString() }));
            }
          } catch (err) {
            fail(err as Error);
          }
          return;
        }
        clearTimeout(timer);
        let reply: FromSignal;
        try {
          reply = JSON.parse(String(data)) as FromSignal;
        } catch {
          return reject(new Error('answer is not JSON'));
        }
        if (reply.type === 'ack') resolve();
        else reject(new Error(`refused: ${reply.type === 'error' ? reply.message.slice(0, 200) : 'unknown answer'}`));
      });
    });
  } catch (err) {
    throw new NetbootError('SIGNAL_UNREACHABLE', `signal at ${url}: ${errorMessage(err)}`);
  } finally {
    ws.terminate();
  }
}
