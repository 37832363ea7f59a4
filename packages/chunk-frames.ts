// Framing of a batched chunk response (POST /pkg/chunks): for each requested digest, in order,
//   32 bytes  the chunk's SHA-256 (raw)
//    4 bytes  big-endian: 0xffffffff = "not held here" (no data follows); otherwise the top bit
//             says the data is raw-deflated (RFC 1951) and the other 31 bits are its length
//    n bytes  the chunk (as sent)
// One response carries a delta of many chunks without a round trip each; chunks that compress
// (filesystem metadata, free space, text) travel deflated. The digest is always of the
// uncompressed chunk. Pure codec.
import { ProtocolError } from '../platform/runtime/errors.ts';

export const FRAME_HEADER = 36;
export const MISSING = 0xffffffff;
const DEFLATED = 0x80000000;
export const MAX_FRAME_DATA = 16 * 1024 * 1024;

export function encodeFrameHeader(digest: string, length: number | null, deflated = false): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER);
  h.write(digest, 0, 32, 'hex');
  h.writeUInt32BE(length === null ? MISSING : deflated ? (DEFLATED | length) >>> 0 : length, 32);
  return h;
}

export interface Frame {
  readonly digest: string;
  /** null: the server does not hold this chunk. */
  readonly data: Buffer | null;
  /** The data is raw deflate of the chunk. */
  readonly deflated: boolean;
}

/** Incremental parser: push() the response as it arrives, get whole frames back. */
export class FrameParser {
  private parts: Buffer[] = [];
  private buffered = 0;

  push(data: Buffer): Frame[] {
    this.parts.push(data);
    this.buffered += data.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.buffered < FRAME_HEADER) break;
      const head = this.peek(FRAME_HEADER);
      const word = head.readUInt32BE(32);
      const missing = word === MISSING;
      const deflated = !missing && (word & DEFLATED) !== 0;
      const length = missing ? 0 : word & ~DEFLATED;
      if (length > MAX_FRAME_DATA) throw new ProtocolError('chunk-frames', `frame of ${length} bytes exceeds ${MAX_FRAME_DATA}`);
      const total = FRAME_HEADER + length;
      if (this.buffered < total) break;
      const whole = this.take(total);
      frames.push({ digest: whole.subarray(0, 32).toString('hex'), data: missing ? null : whole.subarray(FRAME_HEADER), deflated });
    }
    return frames;
  }

  /** Throws if the stream ended inside a frame. */
  end(): void {
    if (this.buffered !== 0) throw new ProtocolError('chunk-frames', `response ended inside a frame (${this.buffered} bytes left over)`);
  }

  /** The first n buffered bytes: a view when the first part holds them, else the one copy of them. */
  private peek(n: number): Buffer {
    const first = this.parts[0]!;
    return first.length >= n ? first.subarray(0, n) : this.gather(n, false);
  }

  private take(n: number): Buffer {
    const first = this.parts[0]!;
    if (first.length < n) return this.gather(n, true);
    const out = first.subarray(0, n);
    if (first.length === n) this.parts.shift();
    else this.parts[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }

  /**
   * The first n bytes, spread over several parts, copied once into a buffer of their own (a
   * frame arrives in several socket reads; concatenating everything buffered at each step
   * copied each byte several times, into fresh memory each time).
   */
  private gather(n: number, consume: boolean): Buffer {
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    let i = 0;
    while (at < n) {
      const part = this.parts[i]!;
      const k = Math.min(part.length, n - at);
      part.copy(out, at, 0, k);
      at += k;
      if (consume && k === part.length) this.parts.shift();
      else if (consume) this.parts[i] = part.subarray(k);
      else i++;
    }
    if (consume) this.buffered -= n;
    return out;
  }
}
