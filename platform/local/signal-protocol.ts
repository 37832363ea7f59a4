// Messages on the Signal port (ws on TCP 806 by default, any path). JSON text frames.
//
// First the caller proves it is one of our processes: the challenge-response of
// platform/trust/peer-handshake.ts (challenge, hello, welcome) keyed with the local key
// (<data>/run/local.key). Only then:
// PXE server -> signal: { type: 'server-started', pid, at }   (at: RFC 3339)
// signal -> PXE server: { type: 'ack' }                        (the start-up sequence is queued)
//                       { type: 'error', message }             (the message was not understood)
//
// Pure codec: text in, typed value out; throws only ProtocolError.
import { ProtocolError } from '../runtime/errors.ts';

export interface ServerStarted {
  readonly type: 'server-started';
  readonly pid: number;
  readonly at: string;
}

export type ToSignal = ServerStarted;

export type FromSignal = { readonly type: 'ack' } | { readonly type: 'error'; readonly message: string };

export const MAX_MESSAGE_BYTES = 4096;

export function decodeToSignal(text: string): ToSignal {
  if (Buffer.byteLength(text, 'utf8') > MAX_MESSAGE_BYTES) throw new ProtocolError('signal', `message longer than ${MAX_MESSAGE_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError('signal', 'message is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProtocolError('signal', 'message must be a JSON object');
  const m = value as Record<string, unknown>;
  if (m.type !== 'server-started') throw new ProtocolError('signal', `unknown message type ${JSON.stringify(m.type)}`);
  if (typeof m.pid !== 'number' || !Number.isInteger(m.pid) || m.pid <= 0) throw new ProtocolError('signal', 'server-started: pid must be a positive integer');
  if (typeof m.at !== 'string' || Number.isNaN(Date.parse(m.at))) throw new ProtocolError('signal', 'server-started: at must be an RFC 3339 time');
  return { type: 'server-started', pid: m.pid, at: m.at };
}

export function encodeFromSignal(message: FromSignal): string {
  return JSON.stringify(message);
}
