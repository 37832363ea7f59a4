// A pure DHCP/BOOTP codec (RFC 2131 section 2, RFC 951): Buffer in, typed packet out, and back.
// No sockets, files or clock. Every read is bounds-checked; decode throws only ProtocolError.
// Imported, not the global: `Buffer` on globalThis is a getter, called at every use (encode runs per reply).
import { Buffer } from 'node:buffer';
import { ProtocolError } from '../../platform/runtime/errors.ts';
import { DhcpOptions, OPT, ipv4ToString, writeIpv4 } from './dhcp-options.ts';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const FLAG_BROADCAST = 0x8000;
const MAGIC_COOKIE = 0x63825363;
const SNAME_OFFSET = 44;
const SNAME_LENGTH = 64;
const FILE_OFFSET = 108;
const FILE_LENGTH = 128;
const COOKIE_OFFSET = 236;
const OPTIONS_OFFSET = 240;
/** RFC 1542 3.1.1: BOOTP relays and old clients expect at least 300 bytes. */
export const MIN_PACKET_LENGTH = 300;

export interface DhcpPacket {
  readonly op: number;
  readonly htype: number;
  readonly hlen: number;
  readonly hops: number;
  readonly xid: number;
  readonly secs: number;
  readonly flags: number;
  readonly ciaddr: string;
  readonly yiaddr: string;
  readonly siaddr: string;
  readonly giaddr: string;
  /** The 16-byte chaddr field as sent. */
  readonly chaddr: Buffer;
  /** Text up to the first NUL; '' when the field carries options (overload). */
  readonly sname: string;
  readonly file: string;
  readonly options: DhcpOptions;
}

export interface EncodeOptions {
  /** Pad with zeros up to this many bytes (default 300, RFC 1542). */
  readonly minLength?: number;
  /**
   * Largest packet the receiver takes (its option 57, or 576). Options that do not fit go to the
   * file and then the sname field when those are empty (RFC 2132 9.3 overload); else RangeError.
   */
  readonly maxLength?: number;
}

function malformed(message: string): ProtocolError {
  return new ProtocolError('dhcp', message);
}

/** The packet's option values and chaddr share memory with `buf` (no copies): do not reuse `buf`. */
export function decode(buf: Buffer): DhcpPacket {
  if (buf.length < OPTIONS_OFFSET) throw malformed(`packet is ${buf.length} bytes, shorter than the 240-byte header`);
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw malformed(`op must be 1 or 2, got ${op}`);
  const hlen = buf[2]!;
  if (hlen > 16) throw malformed(`hlen must be at most 16, got ${hlen}`);
  const cookie = buf.readUInt32BE(COOKIE_OFFSET);
  if (cookie !== MAGIC_COOKIE) throw malformed(`magic cookie must be 63825363, got ${cookie.toString(16).padStart(8, '0')}`);

  // RFC 3396: all parts of an option, in the options field, then file, then sname, are joined.
  // Options stay ranges of `buf` (made Buffers only when read); joined ones get a value of their own.
  const codes: number[] = [];
  const values: (Buffer | undefined)[] = [];
  const ranges: number[] = [];
  readOptionArea(buf, OPTIONS_OFFSET, buf.length, 'options', codes, values, ranges);
  let overload = 0;
  const ov = codes.indexOf(OPT.OVERLOAD);
  if (ov !== -1) {
    const v = values[ov] ?? buf.subarray(ranges[2 * ov]!, ranges[2 * ov + 1]!);
    if (v.length !== 1 || v[0]! < 1 || v[0]! > 3) throw malformed(`option 52 must be 1 byte of value 1-3, got ${v.toString('hex')}`);
    overload = v[0]!;
    codes.splice(ov, 1);
    values.splice(ov, 1);
    ranges.splice(2 * ov, 2);
    if (overload & 1) readOptionArea(buf, FILE_OFFSET, FILE_OFFSET + FILE_LENGTH, 'file', codes, values, ranges);
    if (overload & 2) readOptionArea(buf, SNAME_OFFSET, SNAME_OFFSET + SNAME_LENGTH, 'sname', codes, values, ranges);
    if (codes.includes(OPT.OVERLOAD)) throw malformed('option 52 must not appear inside an overloaded field');
  }
  const options = DhcpOptions.view(buf, codes, values, ranges);

  return {
    op,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: address(buf, 12),
    yiaddr: address(buf, 16),
    siaddr: address(buf, 20),
    giaddr: address(buf, 24),
    chaddr: buf.subarray(28, 44),
    sname: overload & 2 ? '' : cString(buf, SNAME_OFFSET, SNAME_LENGTH),
    file: overload & 1 ? '' : cString(buf, FILE_OFFSET, FILE_LENGTH),
    options,
  };
}

const ZERO_ADDRESS = '0.0.0.0';

/** Most addresses in a request are 0.0.0.0: no string is made for those. */
function address(buf: Buffer, offset: number): string {
  return buf[offset] === 0 && buf[offset + 1] === 0 && buf[offset + 2] === 0 && buf[offset + 3] === 0 ? ZERO_ADDRESS : ipv4ToString(buf, offset);
}

function readOptionArea(buf: Buffer, start: number, end: number, where: string, codes: number[], values: (Buffer | undefined)[], ranges: number[]): void {
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === OPT.END) return;
    if (code === OPT.PAD) {
      i++;
      continue;
    }
    if (i + 1 >= end) throw malformed(`option ${code} at offset ${i} in ${where} has no length byte`);
    const n = buf[i + 1]!;
    if (i + 2 + n > end) throw malformed(`option ${code} at offset ${i} in ${where} overruns it (length ${n}, ${end - i - 2} bytes left)`);
    const k = codes.indexOf(code);
    if (k === -1) {
      codes.push(code);
      values.push(undefined);
      ranges.push(i + 2, i + 2 + n);
    } else {
      const earlier = values[k] ?? buf.subarray(ranges[2 * k]!, ranges[2 * k + 1]!);
      values[k] = Buffer.concat([earlier, buf.subarray(i + 2, i + 2 + n)]);
    }
    i += 2 + n;
  }
  // A missing END at the very end of the packet is tolerated (seen in the wild, harmless).
}

function cString(buf: Buffer, offset: number, length: number): string {
  if (buf[offset] === 0) return '';
  const end = buf.indexOf(0, offset);
  return buf.toString('latin1', offset, end === -1 || end > offset + length ? offset + length : end);
}

/** Bytes one option takes in the option area, split into 255-byte parts (RFC 3396). */
function optionBytes(data: Buffer): number {
  return data.length === 0 ? 2 : data.length + 2 * Math.ceil(data.length / 255);
}

function optionsBytes(options: DhcpOptions): number {
  let n = 1; // END
  for (let i = 0; i < options.size; i++) if (options.codeAt(i) !== OPT.OVERLOAD) n += optionBytes(options.valueAt(i));
  return n;
}

const HEX_DIGITS = '0123456789abcdef';
/** Character codes of each byte's two lower-case hex digits. */
const HI = Array.from({ length: 256 }, (_, i) => HEX_DIGITS.charCodeAt(i >> 4));
const LO = Array.from({ length: 256 }, (_, i) => HEX_DIGITS.charCodeAt(i & 15));

export function encodingLength(packet: DhcpPacket, opts: EncodeOptions = {}): number {
  return layout(packet, opts).length;
}

interface Layout {
  readonly length: number;
  /** Overloaded only: options for the options field, the file field and the sname field. */
  readonly areas: readonly (readonly [number, Buffer][])[] | null;
  readonly overload: number;
}

function layout(packet: DhcpPacket, opts: EncodeOptions): Layout {
  const minLength = opts.minLength ?? MIN_PACKET_LENGTH;
  const plain = OPTIONS_OFFSET + optionsBytes(packet.options);
  if (opts.maxLength === undefined || plain <= opts.maxLength) return { length: Math.max(minLength, plain), areas: null, overload: 0 };
  // Overload: each option goes to the first of options field (less 3 bytes for option 52), file
  // and sname with room; an option is never split across fields.
  const capacity = [opts.maxLength - OPTIONS_OFFSET - 1 - 3, packet.file === '' ? FILE_LENGTH - 1 : -1, packet.sname === '' ? SNAME_LENGTH - 1 : -1];
  const areas: [number, Buffer][][] = [[], [], []];
  const used = [0, 0, 0];
  for (const entry of packet.options.entries()) {
    if (entry[0] === OPT.OVERLOAD) continue;
    const need = optionBytes(entry[1]);
    const area = [0, 1, 2].find((a) => used[a]! + need <= capacity[a]!);
    if (area === undefined) throw new RangeError(`options do not fit in ${opts.maxLength} bytes, even with overload`);
    areas[area]!.push(entry);
    used[area]! += need;
  }
  const overload = (areas[1]!.length > 0 ? 1 : 0) | (areas[2]!.length > 0 ? 2 : 0);
  let length = OPTIONS_OFFSET + 1 + 3;
  for (const [, data] of areas[0]!) length += optionBytes(data);
  return { length: Math.max(minLength, length), areas, overload };
}

const fill = Uint8Array.prototype.fill;

export function encode(packet: DhcpPacket, opts: EncodeOptions = {}): Buffer {
  const { length, areas, overload } = layout(packet, opts);
  // From the shared pool, zeroed here: a reply per packet should not cost a fresh ArrayBuffer.
  const buf = Buffer.allocUnsafe(length);
  fill.call(buf, 0);
  buf[0] = packet.op;
  buf[1] = packet.htype;
  buf[2] = packet.hlen;
  buf[3] = packet.hops;
  buf.writeUInt32BE(packet.xid >>> 0, 4);
  buf.writeUInt16BE(packet.secs, 8);
  buf.writeUInt16BE(packet.flags, 10);
  writeAddress(buf, 12, packet.ciaddr);
  writeAddress(buf, 16, packet.yiaddr);
  writeAddress(buf, 20, packet.siaddr);
  writeAddress(buf, 24, packet.giaddr);
  const chaddr = packet.chaddr;
  buf.set(chaddr.length <= 16 ? chaddr : chaddr.subarray(0, 16), 28);
  writeText(buf, packet.sname, SNAME_OFFSET, SNAME_LENGTH, 'sname');
  writeText(buf, packet.file, FILE_OFFSET, FILE_LENGTH, 'file');
  buf.writeUInt32BE(MAGIC_COOKIE, COOKIE_OFFSET);
  if (areas === null) {
    const options = packet.options;
    let at = OPTIONS_OFFSET;
    for (let i = 0; i < options.size; i++) {
      const code = options.codeAt(i);
      if (code !== OPT.OVERLOAD) at = writeOption(buf, at, code, options.valueAt(i));
    }
    buf[at] = OPT.END;
    return buf;
  }
  let at = OPTIONS_OFFSET;
  buf[at++] = OPT.OVERLOAD;
  buf[at++] = 1;
  buf[at++] = overload;
  writeOptions(buf, at, areas[0]!);
  if (overload & 1) writeOptions(buf, FILE_OFFSET, areas[1]!);
  if (overload & 2) writeOptions(buf, SNAME_OFFSET, areas[2]!);
  return buf;
}

/** The buffer is zeroed: 0.0.0.0 needs no writing. */
function writeAddress(buf: Buffer, offset: number, address: string): void {
  if (address !== ZERO_ADDRESS) writeIpv4(buf, offset, address);
}

/** latin1, as Buffer.write does it (the low byte of each code unit); short, so written here. */
function writeText(buf: Buffer, text: string, offset: number, length: number, name: string): void {
  if (text.length > length) throw new RangeError(`${name} longer than ${length} bytes`);
  for (let i = 0; i < text.length; i++) buf[offset + i] = text.charCodeAt(i) & 0xff;
}

function writeOption(buf: Buffer, at: number, code: number, data: Buffer): number {
  if (data.length <= 255) {
    buf[at] = code;
    buf[at + 1] = data.length;
    buf.set(data, at + 2);
    return at + 2 + data.length;
  }
  // RFC 3396: a long option goes as consecutive parts of at most 255 bytes.
  for (let i = 0; i < data.length; i += 255) {
    const part = data.subarray(i, Math.min(i + 255, data.length));
    buf[at++] = code;
    buf[at++] = part.length;
    buf.set(part, at);
    at += part.length;
  }
  return at;
}

function writeOptions(buf: Buffer, at: number, entries: readonly (readonly [number, Buffer])[]): number {
  for (const [code, data] of entries) at = writeOption(buf, at, code, data);
  buf[at++] = OPT.END;
  return at;
}

/** The client's hardware address as lower-case `aa:bb:..`, or null when it is not Ethernet-like. */
export function macOf(packet: DhcpPacket): string | null {
  if (packet.htype !== 1 || packet.hlen !== 6) return null;
  const c = packet.chaddr;
  // One flat string at once: a template literal makes a rope, flattened again for each Map lookup.
  return String.fromCharCode(
    HI[c[0]!]!, LO[c[0]!]!, 58, HI[c[1]!]!, LO[c[1]!]!, 58, HI[c[2]!]!, LO[c[2]!]!, 58,
    HI[c[3]!]!, LO[c[3]!]!, 58, HI[c[4]!]!, LO[c[4]!]!, 58, HI[c[5]!]!, LO[c[5]!]!,
  );
}
