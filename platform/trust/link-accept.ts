// The serving side of an authenticated link on an accepted WebSocket: send the challenge, check
// the hello (peer-handshake.ts), then hand each later message to the route, opened from its
// sealed frame (peers) or as it came (local processes on loopback, where nobody else can inject
// into the connection). A hello that is late, malformed or fails its proof ends the connection
// before anything reaches the route, with one (rate-limited) log line whose strings are quoted.
import type { WebSocket } from 'ws';
import { errorMessage } from '../runtime/errors.ts';
import type { RateLimitedLog } from '../runtime/log-limit.ts';
import type { Logger } from '../runtime/logger.ts';
import { ServerHandshake, type SealedChannel } from './peer-handshake.ts';

export interface AcceptOptions {
  readonly serverId: string;
  readonly keyFor: (peerId: string) => Buffer | null;
  /** Later frames sealed (counter + MAC) or plain. */
  readonly sealed: boolean;
  readonly helloTimeoutMs: number;
  /** Close code sent with a refusal (the route's own; clients show it). */
  readonly refuseCode: number;
  /** The log line for a refusal, e.g. 'peer refused'. */
  readonly refusedMessage: string;
  /** Where the connection comes from, for logs. */
  readonly remote: string;
  readonly log: Logger;
  readonly refusals: RateLimitedLog;
}

/** An authenticated connection, as its route sees it. */
export interface AcceptedLink {
  readonly peerId: string;
  send(text: string): void;
  /** Ends the connection after a protocol error (logged by the caller). */
  close(code: number, reason: string): void;
}

export interface AcceptHooks {
  /** Authenticated: returns the handler of every later message (a throw ends the connection). */
  onAuthenticated(link: AcceptedLink): (text: string) => void;
  /** Claimed id, once a hello arrived (also for a refused one; quoted when malformed). */
  onHello?(peerId: string | null): void;
  onClose?(): void;
}

export function acceptLink(ws: WebSocket, o: AcceptOptions, hooks: AcceptHooks): void {
  const handshake = new ServerHandshake(o.serverId, o.keyFor);
  let channel: SealedChannel | null = null;
  let handler: ((text: string) => void) | null = null;
  let refused = false;
  const refuse = (reason: string): void => {
    if (refused) return;
    refused = true;
    o.refusals.warn(o.refusedMessage, { remote: o.remote, peer: handshake.peerId ?? undefined, reason });
    ws.close(o.refuseCode, 'authentication failed');
    setTimeout(() => ws.terminate(), 1000).unref();
  };
  const timer = setTimeout(() => refuse('no hello in time'), o.helloTimeoutMs);
  ws.on('close', () => {
    clearTimeout(timer);
    hooks.onClose?.();
  });
  ws.on('error', (err: Error & { code?: string }) => {
    // ws refuses a frame past maxPayload (or a broken one) with a WS_ERR_* code and closes.
    if (err.code?.startsWith('WS_ERR') === true) o.refusals.warn('link frame refused', { remote: o.remote, peer: handshake.peerId ?? undefined, reason: errorMessage(err), code: err.code });
    else o.log.debug('link connection error', { remote: o.remote, err: errorMessage(err) });
  });
  ws.send(handshake.challenge);
  ws.on('message', (data, isBinary) => {
    if (refused) return;
    const text = isBinary ? '' : data.toString();
    if (handler === null) {
      clearTimeout(timer);
      try {
        const ok = handshake.accept(text);
        hooks.onHello?.(ok.peerId);
        ws.send(ok.welcome);
        channel = o.sealed ? ok.channel : null;
        const ch = channel;
        handler = hooks.onAuthenticated({
          peerId: ok.peerId,
          send: (body) => {
            if (ws.readyState === ws.OPEN) ws.send(ch === null ? body : ch.seal(body));
          },
          close: (code, reason) => ws.close(code, reason),
        });
      } catch (err) {
        hooks.onHello?.(handshake.peerId);
        refuse(errorMessage(err));
      }
      return;
    }
    let body: string;
    try {
      body = channel === null ? text : channel.open(text);
    } catch (err) {
      return refuse(errorMessage(err));
    }
    try {
      handler(body);
    } catch (err) {
      o.log.warn('link message not handled; closing', { remote: o.remote, peer: handshake.peerId ?? undefined, reason: errorMessage(err) });
      ws.close(4400, 'bad message');
    }
  });
}
