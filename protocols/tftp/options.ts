// Option negotiation for a read request: RFC 2347 (framework), 2348 (blksize), 2349 (timeout,
// tsize), 7440 (windowsize). Pure. The OACK carries only options the client asked for and we
// accept, spelled as the client spelled them; an option we cannot honour is left out, which per
// RFC 2347 means "not supported" to the client. No accepted option means no OACK at all.
// A generated iPXE script that fits one 512-byte block declines them all (declineOptions).
import type { TftpOption } from './tftp-codec.ts';

export interface NegotiationLimits {
  readonly maxBlockSize: number;
  readonly maxWindowSize: number;
  /** Retransmission timeout when the client does not ask for one. */
  readonly timeoutMs: number;
}

export interface Negotiated {
  readonly blockSize: number;
  readonly windowSize: number;
  readonly timeoutMs: number;
  /** Options for the OACK, in request order; empty = send no OACK. */
  readonly reply: readonly TftpOption[];
  /** Options left out, with why (for the log). */
  readonly ignored: readonly { readonly name: string; readonly value: string; readonly reason: string }[];
}

const DEFAULT_BLOCK_SIZE = 512;

function parseDecimal(value: string): number | null {
  return /^[0-9]{1,10}$/.test(value) ? Number(value) : null;
}

/**
 * Why every option of a request is declined, or null to negotiate. A script netboot generated
 * (only iPXE is ever pointed at one) that fits one default block goes out as DATA 1 at once: its
 * OACK would cost the client a round trip for nothing (a block of 1432 bytes or a tsize change
 * nothing for under 512 bytes), and RFC 2347 lets a server ignore options. Not for other files:
 * GRUB, for one, asks for options and then waits for an OACK, and never takes DATA 1 instead.
 */
export function declineOptions(generated: boolean, size: number): string | null {
  return generated && size < DEFAULT_BLOCK_SIZE ? 'generated script fits one 512-byte block: DATA 1 at once, no OACK' : null;
}

/** `fileSize` null: size unknown, so tsize is not acknowledged. `decline`: see declineOptions. */
export function negotiate(requested: readonly TftpOption[], limits: NegotiationLimits, fileSize: number | null, decline: string | null = null): Negotiated {
  if (decline !== null) {
    return { blockSize: DEFAULT_BLOCK_SIZE, windowSize: 1, timeoutMs: limits.timeoutMs, reply: [], ignored: requested.map(({ name, value }) => ({ name, value, reason: decline })) };
  }
  let blockSize = DEFAULT_BLOCK_SIZE;
  let windowSize = 1;
  let timeoutMs = limits.timeoutMs;
  const reply: TftpOption[] = [];
  const ignored: { name: string; value: string; reason: string }[] = [];
  const seen = new Set<string>();

  for (const { name, value } of requested) {
    const key = name.toLowerCase();
    const skip = (reason: string): void => void ignored.push({ name, value, reason });
    if (seen.has(key)) {
      skip('duplicate option, first one used');
      continue;
    }
    seen.add(key);
    const n = parseDecimal(value);
    switch (key) {
      case 'blksize': // RFC 2348: 8..65464; the server may answer with a smaller size.
        if (n === null || n < 8 || n > 65464) skip('blksize must be 8 to 65464');
        else {
          blockSize = Math.min(n, limits.maxBlockSize);
          reply.push({ name, value: String(blockSize) });
        }
        break;
      case 'windowsize': // RFC 7440: 1..65535; the server may answer with a smaller window.
        if (n === null || n < 1 || n > 65535) skip('windowsize must be 1 to 65535');
        else {
          windowSize = Math.min(n, limits.maxWindowSize);
          reply.push({ name, value: String(windowSize) });
        }
        break;
      case 'timeout': // RFC 2349: seconds, 1..255, echoed unchanged or not at all.
        if (n === null || n < 1 || n > 255) skip('timeout must be 1 to 255 seconds');
        else {
          timeoutMs = n * 1000;
          reply.push({ name, value });
        }
        break;
      case 'tsize': // RFC 2349: a read request asks with 0; we answer with the size.
        if (n === null) skip('tsize must be a decimal number');
        else if (fileSize === null) skip('size not known in advance');
        else reply.push({ name, value: String(fileSize) });
        break;
      case 'msftwindow':
        skip('Microsoft variable window is not implemented; RFC 7440 windowsize is');
        break;
      default:
        skip('unknown option');
    }
  }
  return { blockSize, windowSize, timeoutMs, reply, ignored };
}
