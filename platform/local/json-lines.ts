// Framing of the local channel: one JSON document per line, UTF-8, ended by `\n`. JSON.stringify
// never writes a raw newline (it escapes them in strings), so a line is always one message. Pure:
// bytes in, documents out; the transports own the sockets.
import { ProtocolError } from '../runtime/errors.ts';

/** Longest line accepted: a whole state (every client of a site) travels in one line. */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;

const NEWLINE = 0x0a;

export function encodeLine(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value)}\n`, 'utf8');
}

/** Cuts a byte stream into lines, keeping a partial line until its end arrives. */
export class LineSplitter {
  private partial: Buffer[] = [];
  private partialBytes = 0;

  constructor(private readonly maxLineBytes = MAX_LINE_BYTES) {}

  /** The complete lines in `chunk` (and what was kept before it), without their `\n`. */
  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, nl);
      if (this.partialBytes + piece.length > this.maxLineBytes) throw this.tooLong();
      lines.push(this.partialBytes === 0 ? piece : Buffer.concat([...this.partial, piece]));
      this.partial = [];
      this.partialBytes = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.partialBytes + rest.length > this.maxLineBytes) throw this.tooLong();
      this.partial.push(rest);
      this.partialBytes += rest.length;
    }
    return lines;
  }

  private tooLong(): ProtocolError {
    return new ProtocolError('channel', `line longer than ${this.maxLineBytes} bytes`);
  }
}

/** A line as a JSON object with a numeric `id`; anything else is a ProtocolError. */
export function decodeMessage(line: Buffer): Record<string, unknown> & { id: number } {
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    throw new ProtocolError('channel', 'line is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProtocolError('channel', 'message is not a JSON object');
  const id = (value as { id?: unknown }).id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw new ProtocolError('channel', 'message has no id');
  return value as Record<string, unknown> & { id: number };
}
