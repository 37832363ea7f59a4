// TFTP packet codec (RFC 1350, options RFC 2347). Pure: Buffer in, typed packet out, and back.
// Strings are latin1 so every byte survives a decode/encode round trip; callers decide what the
// bytes mean (the root resolver wants UTF-8 file names). decode() throws only ProtocolError.
import { ProtocolError } from '../../platform/runtime/errors.ts';

export const OPCODE = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** RFC 1350 error codes, plus 8 from RFC 2347. */
export const TFTP_ERROR = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;

export interface TftpOption {
  /** As the sender spelled it; option names compare case-insensitively (RFC 2347). */
  readonly name: string;
  readonly value: string;
}

export type RequestPacket = { readonly op: 'RRQ' | 'WRQ'; readonly filename: string; readonly mode: string; readonly options: readonly TftpOption[] };
export type DataPacket = { readonly op: 'DATA'; readonly block: number; readonly data: Buffer };
export type AckPacket = { readonly op: 'ACK'; readonly block: number };
export type ErrorPacket = { readonly op: 'ERROR'; readonly code: number; readonly message: string };
export type OackPacket = { readonly op: 'OACK'; readonly options: readonly TftpOption[] };
export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

function malformed(message: string): ProtocolError {
  return new ProtocolError('tftp', message);
}

/** NUL-terminated strings from `start` to the end of `buf`. */
function readStrings(buf: Buffer, start: number, what: string): string[] {
  const out: string[] = [];
  let at = start;
  while (at < buf.length) {
    const end = buf.indexOf(0, at);
    if (end < 0) throw malformed(`${what}: string at byte ${at} is not NUL-terminated`);
    out.push(buf.toString('latin1', at, end));
    at = end + 1;
  }
  return out;
}

/** Pairs name/value; trailing empty strings (NUL padding some clients add) are ignored. */
function readOptions(strings: readonly string[], from: number, what: string): TftpOption[] {
  let end = strings.length;
  while (end > from && strings[end - 1] === '') end--;
  const options: TftpOption[] = [];
  for (let i = from; i < end; i += 2) {
    const name = strings[i] as string;
    const value = strings[i + 1];
    if (value === undefined) throw malformed(`${what}: option ${JSON.stringify(name)} has no value`);
    if (name === '') throw malformed(`${what}: empty option name`);
    options.push({ name, value });
  }
  return options;
}

export function decode(buf: Buffer): TftpPacket {
  if (buf.length < 2) throw malformed(`packet too short (${buf.length} bytes)`);
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case OPCODE.RRQ:
    case OPCODE.WRQ: {
      const op = opcode === OPCODE.RRQ ? 'RRQ' : 'WRQ';
      const strings = readStrings(buf, 2, op);
      const filename = strings[0];
      const mode = strings[1];
      if (filename === undefined || mode === undefined) throw malformed(`${op}: needs a file name and a mode`);
      if (filename === '') throw malformed(`${op}: empty file name`);
      if (mode === '') throw malformed(`${op}: empty mode`);
      return { op, filename, mode, options: readOptions(strings, 2, op) };
    }
    case OPCODE.DATA:
      if (buf.length < 4) throw malformed(`DATA too short (${buf.length} bytes)`);
      return { op: 'DATA', block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case OPCODE.ACK:
      if (buf.length < 4) throw malformed(`ACK too short (${buf.length} bytes)`);
      return { op: 'ACK', block: buf.readUInt16BE(2) };
    case OPCODE.ERROR: {
      if (buf.length < 4) throw malformed(`ERROR too short (${buf.length} bytes)`);
      // Some stacks omit the final NUL: the message then runs to the end of the datagram.
      const end = buf.indexOf(0, 4);
      return { op: 'ERROR', code: buf.readUInt16BE(2), message: buf.toString('latin1', 4, end < 0 ? buf.length : end) };
    }
    case OPCODE.OACK:
      return { op: 'OACK', options: readOptions(readStrings(buf, 2, 'OACK'), 0, 'OACK') };
    default:
      throw malformed(`unknown opcode ${opcode}`);
  }
}

function stringsLength(strings: readonly string[]): number {
  let n = 0;
  for (const s of strings) n += Buffer.byteLength(s, 'latin1') + 1;
  return n;
}

function packetStrings(p: TftpPacket): string[] {
  switch (p.op) {
    case 'RRQ':
    case 'WRQ':
      return [p.filename, p.mode, ...p.options.flatMap((o) => [o.name, o.value])];
    case 'ERROR':
      return [p.message];
    case 'OACK':
      return p.options.flatMap((o) => [o.name, o.value]);
    default:
      return [];
  }
}

export function encodingLength(p: TftpPacket): number {
  switch (p.op) {
    case 'DATA':
      return 4 + p.data.length;
    case 'ACK':
      return 4;
    case 'ERROR':
      return 4 + stringsLength(packetStrings(p));
    default:
      return 2 + stringsLength(packetStrings(p));
  }
}

export function encode(p: TftpPacket): Buffer {
  const buf = Buffer.allocUnsafe(encodingLength(p));
  buf.writeUInt16BE(OPCODE[p.op], 0);
  let at = 2;
  if (p.op === 'DATA' || p.op === 'ACK') {
    buf.writeUInt16BE(p.block & 0xffff, 2);
    if (p.op === 'DATA') p.data.copy(buf, 4);
    return buf;
  }
  if (p.op === 'ERROR') {
    buf.writeUInt16BE(p.code & 0xffff, 2);
    at = 4;
  }
  for (const s of packetStrings(p)) {
    at += buf.write(s, at, 'latin1');
    buf[at++] = 0;
  }
  return buf;
}

// Hot-path helpers for the transfer loop: no allocation, no throw.

/** The block number of an ACK, or -1 when `buf` is not a well-formed ACK. */
export function ackBlock(buf: Buffer, length = buf.length): number {
  return length >= 4 && buf[0] === 0 && buf[1] === OPCODE.ACK ? (buf[2] as number) * 256 + (buf[3] as number) : -1;
}

/** Writes an ACK of `block` (16-bit) into the first 4 bytes of `buf`. */
export function writeAck(buf: Buffer, block: number): void {
  buf[0] = 0;
  buf[1] = OPCODE.ACK;
  buf[2] = (block >>> 8) & 0xff;
  buf[3] = block & 0xff;
}

/** Writes a DATA header (opcode, 16-bit block number) at `at` in `buf` (its start by default). */
export function writeDataHeader(buf: Buffer, block: number, at = 0): void {
  buf[at] = 0;
  buf[at + 1] = OPCODE.DATA;
  buf[at + 2] = (block >>> 8) & 0xff;
  buf[at + 3] = block & 0xff;
}

export function errorPacket(code: number, message: string): Buffer {
  return encode({ op: 'ERROR', code, message });
}
