// The peer channel's handshake and sealed frames (the protocol is in peer-auth.ts) as small state
// machines with no socket. The job channel (/peer) and the package feed (/pkg-feed) both run them
// over their WebSocket, so both check a peer the same way and refuse it with the same reasons.
import { quote } from '../runtime/quote.ts';
import { PeerAuthError, clientProof, newNonce, openFrame, safeEqualHex, sealFrame, serverProof, sessionKey, type Direction } from './peer-auth.ts';

const NONCE = /^[0-9a-f]{64}$/;
/** A site's id, as [site] id allows it (config.ts). */
export const PEER_ID = /^[A-Za-z0-9._-]{1,64}$/;

function parseObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new PeerAuthError(`${what} is not JSON`);
  }
  if (typeof v !== 'object' || v === null) throw new PeerAuthError(`malformed ${what}`);
  return v as Record<string, unknown>;
}

/** Frames after the handshake, counted from 0 each way; open() refuses any out of order or forged. */
export class SealedChannel {
  private sent = 0;
  private received = 0;

  constructor(
    private readonly session: Buffer,
    private readonly out: Direction,
  ) {}

  seal(body: string): string {
    return sealFrame(this.session, this.out, this.sent++, body);
  }

  open(frame: string): string {
    const body = openFrame(this.session, this.out === 'c2s' ? 's2c' : 'c2s', this.received, frame);
    this.received++;
    return body;
  }
}

/** Server side: send `challenge` first, then hand the first frame received to accept(). */
export class ServerHandshake {
  private readonly nonce = newNonce();
  /**
   * Who the hello claims to be, once one arrived (before its proof is checked: for logs). A claim
   * that is not a well-formed id is kept only quoted (cut and escaped): it came from anyone.
   */
  peerId: string | null = null;

  constructor(
    private readonly serverId: string,
    private readonly keyFor: (peerId: string) => Buffer | null,
  ) {}

  get challenge(): string {
    return JSON.stringify({ type: 'challenge', serverId: this.serverId, nonce: this.nonce });
  }

  /** Checks the hello: the welcome to send and the channel, or PeerAuthError with the reason. */
  accept(text: string): { peerId: string; welcome: string; channel: SealedChannel } {
    const { type, peerId, nonce, proof } = parseObject(text, 'hello');
    if (type !== 'hello' || typeof peerId !== 'string' || typeof nonce !== 'string' || !NONCE.test(nonce) || typeof proof !== 'string') throw new PeerAuthError('malformed hello');
    if (!PEER_ID.test(peerId)) {
      this.peerId = quote(peerId, 64);
      throw new PeerAuthError('malformed hello: peerId is not an id ([A-Za-z0-9._-]{1,64})');
    }
    this.peerId = peerId;
    const key = this.keyFor(peerId);
    if (key === null) throw new PeerAuthError('not a configured peer');
    if (!safeEqualHex(proof, clientProof(key, peerId, this.serverId, this.nonce, nonce))) throw new PeerAuthError('wrong key (proof does not verify)');
    const welcome = JSON.stringify({ type: 'welcome', proof: serverProof(key, this.serverId, peerId, nonce, this.nonce) });
    return { peerId, welcome, channel: new SealedChannel(sessionKey(key, this.nonce, nonce), 's2c') };
  }
}

/** Client side: each frame from the server goes to next(): the hello to send, then the channel. */
export class ClientHandshake {
  private readonly nonce = newNonce();
  private serverNonce: string | null = null;

  constructor(
    private readonly key: Buffer,
    private readonly selfId: string,
    /** The configured id of the peer dialled: a server calling itself anything else is refused. */
    private readonly serverId: string,
  ) {}

  next(text: string): { reply: string; channel: null } | { reply: null; channel: SealedChannel } {
    if (this.serverNonce === null) {
      const { type, serverId, nonce } = parseObject(text, 'challenge');
      if (type !== 'challenge' || typeof nonce !== 'string' || !NONCE.test(nonce)) throw new PeerAuthError('malformed challenge');
      if (serverId !== this.serverId) throw new PeerAuthError(`the server says it is ${quote(serverId, 64)}, not peer ${this.serverId}`);
      this.serverNonce = nonce;
      const proof = clientProof(this.key, this.selfId, this.serverId, nonce, this.nonce);
      return { reply: JSON.stringify({ type: 'hello', peerId: this.selfId, nonce: this.nonce, proof }), channel: null };
    }
    const { type, proof } = parseObject(text, 'welcome');
    if (type !== 'welcome' || typeof proof !== 'string' || !safeEqualHex(proof, serverProof(this.key, this.serverId, this.selfId, this.nonce, this.serverNonce))) {
      throw new PeerAuthError('the peer did not prove it holds the shared key');
    }
    return { reply: null, channel: new SealedChannel(sessionKey(this.key, this.serverNonce, this.nonce), 'c2s') };
  }
}
