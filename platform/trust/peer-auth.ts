// How site servers prove who they are to each other, without ever sending a key.
//
// Keys: a site key (or a per-peer key) file holding at least 32 random bytes, hex or base64, mode
// 0600 (`head -c 32 /dev/urandom | base64 > /etc/netboot/site.key`; rules in key-check.ts). Both
// ends hold the same key.
//
// WebSocket channel (/peer on TCP 490): mutual challenge-response with HMAC-SHA256.
//   server -> client  { type:'challenge', serverId, nonce: Ns }
//   client -> server  { type:'hello', peerId, nonce: Nc, proof: HMAC(k, 'client'|peerId|serverId|Ns|Nc) }
//   server -> client  { type:'welcome', proof: HMAC(k, 'server'|serverId|peerId|Nc|Ns) }
// Fresh nonces on both sides make a captured exchange useless on replay. Every later frame carries
// a counter and HMAC(session key, direction|counter|body), the session key derived from both
// nonces, so frames cannot be injected, reordered or replayed into this or another session.
//
// HTTP (package transfer): `authorization: NetbootPeer id=<peer>,ts=<ms>,nonce=<hex>,mac=<hex>`
// with mac = HMAC(k, 'http'|id|method|path|ts|nonce); accepted within a time window, each nonce
// once.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { NetbootError } from '../runtime/errors.ts';
import { readCheckedKey } from './key-check.ts';

const PROTOCOL = 'netboot-peer-v1';

export class PeerAuthError extends NetbootError {
  constructor(message: string) {
    super('PEER_AUTH_FAILED', message);
  }
}

/** Reads a key file: hex or base64 text, mode 0600, at least 32 random-looking bytes (key-check.ts). */
export function readKeyFile(path: string): Buffer {
  return readCheckedKey(path);
}

export const newNonce = (): string => randomBytes(32).toString('hex');

function mac(key: Buffer, ...parts: Array<string | number>): string {
  return createHmac('sha256', key).update([PROTOCOL, ...parts].join('|')).digest('hex');
}

export function safeEqualHex(a: string, b: string): boolean {
  if (typeof a !== 'string' || typeof b !== 'string' || a.length !== b.length || !/^[0-9a-f]*$/.test(a)) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

export function clientProof(key: Buffer, peerId: string, serverId: string, serverNonce: string, clientNonce: string): string {
  return mac(key, 'client', peerId, serverId, serverNonce, clientNonce);
}

export function serverProof(key: Buffer, serverId: string, peerId: string, clientNonce: string, serverNonce: string): string {
  return mac(key, 'server', serverId, peerId, clientNonce, serverNonce);
}

export function sessionKey(key: Buffer, serverNonce: string, clientNonce: string): Buffer {
  return createHmac('sha256', key).update(`${PROTOCOL}|session|${serverNonce}|${clientNonce}`).digest();
}

export type Direction = 'c2s' | 's2c';

/** A frame after the handshake: counter + body + MAC; `open` checks all three. */
export function sealFrame(session: Buffer, dir: Direction, counter: number, body: string): string {
  return JSON.stringify({ n: counter, body, mac: mac(session, dir, counter, body) });
}

export function openFrame(session: Buffer, dir: Direction, expectedCounter: number, frame: string): string {
  let parsed: { n?: unknown; body?: unknown; mac?: unknown };
  try {
    parsed = JSON.parse(frame) as typeof parsed;
  } catch {
    throw new PeerAuthError('frame is not JSON');
  }
  const { n, body, mac: got } = parsed;
  if (n !== expectedCounter || typeof body !== 'string' || typeof got !== 'string') throw new PeerAuthError(`frame out of order or malformed (expected #${expectedCounter})`);
  if (!safeEqualHex(got, mac(session, dir, n, body))) throw new PeerAuthError('frame MAC does not verify');
  return body;
}

export function httpAuthHeader(key: Buffer, peerId: string, method: string, path: string, now = Date.now()): string {
  const nonce = randomBytes(16).toString('hex');
  return `NetbootPeer id=${peerId},ts=${now},nonce=${nonce},mac=${mac(key, 'http', peerId, method, path, now, nonce)}`;
}

/** Verifies an HTTP request's authorization header; returns the peer id. */
export class HttpAuthVerifier {
  private readonly seen = new Map<string, number>();
  constructor(private readonly keyFor: (peerId: string) => Buffer | null, private readonly windowMs = 60_000) {}

  verify(header: string | undefined, method: string, path: string, now = Date.now()): string {
    const m = /^NetbootPeer id=([A-Za-z0-9._-]{1,64}),ts=(\d{1,16}),nonce=([0-9a-f]{32}),mac=([0-9a-f]{64})$/.exec(header ?? '');
    if (m === null) throw new PeerAuthError('missing or malformed authorization');
    const [, id, tsText, nonce, got] = m as unknown as [string, string, string, string, string];
    const key = this.keyFor(id);
    if (key === null) throw new PeerAuthError(`unknown peer ${id}`);
    const ts = Number(tsText);
    if (Math.abs(now - ts) > this.windowMs) throw new PeerAuthError('request time outside the accepted window (clock skew or replay)');
    if (!safeEqualHex(got, mac(key, 'http', id, method, path, ts, nonce))) throw new PeerAuthError(`bad request MAC from ${id}`);
    if (this.seen.has(nonce)) throw new PeerAuthError('replayed request');
    this.seen.set(nonce, ts);
    if (this.seen.size > 100_000) for (const [k, t] of this.seen) if (now - t > this.windowMs) this.seen.delete(k);
    return id;
  }
}
