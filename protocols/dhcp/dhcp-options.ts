// DHCP options kept as raw bytes (RFC 2132), with typed accessors that refuse a wrong length.
// A code that appeared several times in a packet is stored once, its parts joined (RFC 3396).
import { ProtocolError } from '../../platform/runtime/errors.ts';
import { RelayAgentInfo } from './relay-agent-info.ts';

export const OPT = {
  PAD: 0,
  VENDOR_SPECIFIC: 43,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  MAX_MESSAGE_SIZE: 57,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE_NAME: 67,
  USER_CLASS: 77,
  RELAY_AGENT_INFO: 82,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_UUID: 97,
  IPXE_ENCAP: 175,
  END: 255,
} as const;

export const MESSAGE_TYPE = {
  DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8,
} as const;

const MESSAGE_TYPE_NAMES: Record<number, string> = {
  1: 'DISCOVER', 2: 'OFFER', 3: 'REQUEST', 4: 'DECLINE', 5: 'ACK', 6: 'NAK', 7: 'RELEASE', 8: 'INFORM',
};

export function messageTypeName(type: number | undefined): string {
  return type === undefined ? 'BOOTP' : (MESSAGE_TYPE_NAMES[type] ?? `type-${type}`);
}

function malformed(message: string): ProtocolError {
  return new ProtocolError('dhcp', message);
}

const NO_ENTRIES: readonly (readonly [number, Buffer])[] = [];

/**
 * Immutable set of options in first-appearance order. Decoded options are kept as ranges of the
 * packet and made into Buffers only when asked for: the typed accessors read the packet's bytes
 * where they are, so a request costs no Buffer object per option it carries.
 */
export class DhcpOptions {
  /** Codes, in first-appearance order; `codeList.indexOf` finds one (at most 254 of them). */
  private readonly codeList: number[];
  /** Each code's value; undefined while it is still a range of `source`. */
  private readonly values: (Buffer | undefined)[];
  /** Where each code's value is in `source`: ranges[2i] to ranges[2i + 1]. */
  private readonly ranges: number[];
  private readonly source: Buffer | undefined;

  constructor(entries: Iterable<readonly [number, Buffer]> = NO_ENTRIES) {
    this.codeList = [];
    this.values = [];
    this.ranges = [];
    this.source = undefined;
    if (entries !== NO_ENTRIES) for (const [code, data] of entries) this.set(code, data);
  }

  /**
   * Options from codes and their values, in that order (a later duplicate replaces the value).
   * Takes the arrays when the codes are distinct: the caller does not touch them again.
   */
  static of(codes: number[], values: Buffer[]): DhcpOptions {
    if (codes.length !== values.length) throw new RangeError(`${codes.length} codes but ${values.length} values`);
    const o = new DhcpOptions();
    for (let i = 0; i < codes.length; i++) {
      const code = codes[i]!;
      if (!Number.isInteger(code) || code <= OPT.PAD || code >= OPT.END) throw new RangeError(`option code ${code} out of range 1-254`);
      if (codes.indexOf(code) !== i) {
        for (let k = 0; k < codes.length; k++) o.set(codes[k]!, values[k]!);
        return o;
      }
    }
    const w = o as unknown as { codeList: number[]; values: Buffer[] };
    w.codeList = codes;
    w.values = values;
    return o;
  }

  /**
   * The decoder's: options as ranges of `source` (values[i] set where parts were joined, RFC
   * 3396). Codes are 1-254 and distinct by construction; the caller does not touch the arrays again.
   */
  static view(source: Buffer, codes: number[], values: (Buffer | undefined)[], ranges: number[]): DhcpOptions {
    const o = new DhcpOptions();
    const w = o as unknown as { codeList: number[]; values: (Buffer | undefined)[]; ranges: number[]; source: Buffer };
    w.codeList = codes;
    w.values = values;
    w.ranges = ranges;
    w.source = source;
    return o;
  }

  /** Construction only: the instance is immutable once made. */
  private set(code: number, data: Buffer): void {
    if (!Number.isInteger(code) || code <= OPT.PAD || code >= OPT.END) throw new RangeError(`option code ${code} out of range 1-254`);
    const i = this.codeList.indexOf(code);
    if (i === -1) {
      this.codeList.push(code);
      this.values.push(data);
    } else {
      this.values[i] = data;
    }
  }

  get size(): number {
    return this.codeList.length;
  }
  has(code: number): boolean {
    return this.codeList.indexOf(code) !== -1;
  }
  get(code: number): Buffer | undefined {
    const i = this.codeList.indexOf(code);
    return i === -1 ? undefined : this.valueAt(i);
  }
  /** The code at position `i` (0 to size - 1) in first-appearance order. */
  codeAt(i: number): number {
    return this.codeList[i]!;
  }
  /** The value at position `i` (0 to size - 1). */
  valueAt(i: number): Buffer {
    let v = this.values[i];
    if (v === undefined) {
      v = this.source!.subarray(this.ranges[2 * i]!, this.ranges[2 * i + 1]!);
      this.values[i] = v;
    }
    return v;
  }
  entries(): IterableIterator<[number, Buffer]> {
    return this.codeList.map((code, i): [number, Buffer] => [code, this.valueAt(i)]).values();
  }
  codes(): number[] {
    return [...this.codeList];
  }
  /** A copy with `code` set (appended, or replaced in place). */
  with(code: number, data: Buffer): DhcpOptions {
    return new DhcpOptions([...this.entries(), [code, data]]);
  }
  without(code: number): DhcpOptions {
    return new DhcpOptions([...this.entries()].filter(([c]) => c !== code));
  }

  private lengthAt(i: number): number {
    const v = this.values[i];
    return v !== undefined ? v.length : this.ranges[2 * i + 1]! - this.ranges[2 * i]!;
  }
  /** Byte `k` of the value at position `i` (k within its length). */
  private byteAt(i: number, k: number): number {
    const v = this.values[i];
    return v !== undefined ? v[k]! : this.source![this.ranges[2 * i]! + k]!;
  }
  /** Position of a fixed-length option, -1 when absent; a wrong length throws. */
  private fixed(code: number, length: number): number {
    const i = this.codeList.indexOf(code);
    if (i !== -1 && this.lengthAt(i) !== length) throw malformed(`option ${code} must be ${length} byte(s), got ${this.lengthAt(i)}`);
    return i;
  }
  private text(i: number): string {
    const v = this.values[i];
    return v !== undefined ? v.toString('latin1') : this.source!.toString('latin1', this.ranges[2 * i]!, this.ranges[2 * i + 1]!);
  }

  /** Option 53. */
  messageType(): number | undefined {
    const i = this.fixed(OPT.MESSAGE_TYPE, 1);
    return i === -1 ? undefined : this.byteAt(i, 0);
  }
  /** Option 54, dotted quad. */
  serverId(): string | undefined {
    const i = this.fixed(OPT.SERVER_ID, 4);
    return i === -1 ? undefined : `${this.byteAt(i, 0)}.${this.byteAt(i, 1)}.${this.byteAt(i, 2)}.${this.byteAt(i, 3)}`;
  }
  /** Option 55. */
  parameterRequestList(): number[] | undefined {
    const v = this.get(OPT.PARAMETER_REQUEST_LIST);
    if (v !== undefined && v.length === 0) throw malformed('option 55 must not be empty');
    return v === undefined ? undefined : [...v];
  }
  /** Option 57 (RFC 2132 9.10: at least 576). */
  maxMessageSize(): number | undefined {
    const i = this.fixed(OPT.MAX_MESSAGE_SIZE, 2);
    if (i === -1) return undefined;
    const n = (this.byteAt(i, 0) << 8) | this.byteAt(i, 1);
    if (n < 576) throw malformed(`option 57 must be at least 576, got ${n}`);
    return n;
  }
  /** Option 60, as latin1 text. */
  vendorClass(): string | undefined {
    const i = this.codeList.indexOf(OPT.VENDOR_CLASS);
    if (i === -1) return undefined;
    if (this.lengthAt(i) === 0) throw malformed('option 60 must not be empty');
    return this.text(i);
  }
  /** Whether option 60 begins with `prefix` (ASCII), without making its text. Absent: false. */
  vendorClassStartsWith(prefix: string): boolean {
    const i = this.codeList.indexOf(OPT.VENDOR_CLASS);
    if (i === -1) return false;
    const n = this.lengthAt(i);
    if (n === 0) throw malformed('option 60 must not be empty');
    if (n < prefix.length) return false;
    for (let k = 0; k < prefix.length; k++) if (this.byteAt(i, k) !== prefix.charCodeAt(k)) return false;
    return true;
  }
  /** Option 61 (type byte + identifier). */
  clientId(): Buffer | undefined {
    const v = this.get(OPT.CLIENT_ID);
    if (v !== undefined && v.length < 2) throw malformed(`option 61 must be at least 2 bytes, got ${v.length}`);
    return v;
  }
  /**
   * Option 77. RFC 3004 says length-prefixed instances, but iPXE sends the bare text `iPXE`: when
   * the bytes do not parse as RFC 3004 instances they are taken as one instance.
   */
  userClasses(): string[] | undefined {
    const v = this.get(OPT.USER_CLASS);
    if (v === undefined) return undefined;
    if (v.length === 0) throw malformed('option 77 must not be empty');
    const out: string[] = [];
    let i = 0;
    while (i < v.length) {
      const n = v[i]!;
      if (n === 0 || i + 1 + n > v.length) return [v.toString('latin1')];
      out.push(v.toString('latin1', i + 1, i + 1 + n));
      i += 1 + n;
    }
    return out;
  }
  /** Option 93 (RFC 4578 2.1): a non-empty list of 16-bit architecture types. */
  clientArch(): number[] | undefined {
    const i = this.codeList.indexOf(OPT.CLIENT_ARCH);
    if (i === -1) return undefined;
    const n = this.lengthAt(i);
    if (n === 0 || n % 2 !== 0) throw malformed(`option 93 must be a non-zero even number of bytes, got ${n}`);
    const out: number[] = [];
    for (let k = 0; k < n; k += 2) out.push((this.byteAt(i, k) << 8) | this.byteAt(i, k + 1));
    return out;
  }
  /** Option 93's first type (the client's own architecture), without making the list. */
  firstClientArch(): number | undefined {
    const i = this.codeList.indexOf(OPT.CLIENT_ARCH);
    if (i === -1) return undefined;
    const n = this.lengthAt(i);
    if (n === 0 || n % 2 !== 0) throw malformed(`option 93 must be a non-zero even number of bytes, got ${n}`);
    return (this.byteAt(i, 0) << 8) | this.byteAt(i, 1);
  }
  /** Option 94 (RFC 4578 2.2): interface type 1 (UNDI) and version. */
  clientNdi(): { type: number; major: number; minor: number } | undefined {
    const i = this.fixed(OPT.CLIENT_NDI, 3);
    return i === -1 ? undefined : { type: this.byteAt(i, 0), major: this.byteAt(i, 1), minor: this.byteAt(i, 2) };
  }
  /**
   * Option 97 (RFC 4578 2.3): type 0 + 16-byte SMBIOS UUID, shown as a GUID string. SMBIOS
   * stores the first three fields little-endian; the string is the one dmidecode and the
   * firmware setup show (QEMU `-uuid` round-trips).
   */
  clientUuid(): string | undefined {
    const i = this.fixed(OPT.CLIENT_UUID, 17);
    if (i === -1) return undefined;
    const v = this.valueAt(i);
    if (v[0] !== 0) throw malformed(`option 97 type must be 0, got ${v[0]}`);
    return uuidFromSmbios(v.subarray(1));
  }
  /** Option 82 (RFC 3046), added by a relay agent; malformed sub-options throw. */
  relayAgentInfo(): RelayAgentInfo | undefined {
    const v = this.get(OPT.RELAY_AGENT_INFO);
    return v === undefined ? undefined : RelayAgentInfo.decode(v);
  }
  /** Option 43 decoded as PXE sub-options (PXE 2.1 table 2-1); only for PXE clients. */
  pxeSubOptions(): PxeSubOptions | undefined {
    const v = this.get(OPT.VENDOR_SPECIFIC);
    return v === undefined ? undefined : PxeSubOptions.decode(v);
  }
}

/** PXE 2.1 vendor options carried inside option 43. */
export const PXE_SUB = {
  DISCOVERY_CONTROL: 6,
  BOOT_SERVERS: 8,
  BOOT_MENU: 9,
  MENU_PROMPT: 10,
  BOOT_ITEM: 71,
} as const;

export class PxeSubOptions {
  private constructor(private readonly map: ReadonlyMap<number, Buffer>) {}

  static decode(data: Buffer): PxeSubOptions {
    const map = new Map<number, Buffer>();
    let i = 0;
    while (i < data.length) {
      const code = data[i]!;
      if (code === OPT.END) break;
      if (code === OPT.PAD) {
        i++;
        continue;
      }
      if (i + 1 >= data.length) throw malformed(`option 43 sub-option ${code} at offset ${i} has no length byte`);
      const n = data[i + 1]!;
      if (i + 2 + n > data.length) throw malformed(`option 43 sub-option ${code} at offset ${i} overruns the option (length ${n}, ${data.length - i - 2} bytes left)`);
      const prev = map.get(code);
      const part = data.subarray(i + 2, i + 2 + n);
      map.set(code, prev === undefined ? part : Buffer.concat([prev, part]));
      i += 2 + n;
    }
    return new PxeSubOptions(map);
  }

  static encode(entries: Iterable<readonly [number, Buffer]>): Buffer {
    const parts: Buffer[] = [];
    for (const [code, data] of entries) {
      if (data.length > 255) throw new RangeError(`PXE sub-option ${code} longer than 255 bytes`);
      parts.push(Buffer.from([code, data.length]), data);
    }
    parts.push(Buffer.from([OPT.END]));
    return Buffer.concat(parts);
  }

  get(code: number): Buffer | undefined {
    return this.map.get(code);
  }
  codes(): number[] {
    return [...this.map.keys()];
  }
  /** Sub-option 6: bit 3 (0x08) = boot the file in the offer without asking a boot server. */
  discoveryControl(): number | undefined {
    const v = this.map.get(PXE_SUB.DISCOVERY_CONTROL);
    if (v !== undefined && v.length !== 1) throw malformed(`PXE sub-option 6 must be 1 byte, got ${v.length}`);
    return v?.[0];
  }
  /** Sub-option 71: the boot server type and layer the client asks for (PXE 2.1 2.2.7). */
  bootItem(): { type: number; layer: number } | undefined {
    const v = this.map.get(PXE_SUB.BOOT_ITEM);
    if (v === undefined) return undefined;
    if (v.length !== 4) throw malformed(`PXE sub-option 71 must be 4 bytes, got ${v.length}`);
    return { type: v.readUInt16BE(0), layer: v.readUInt16BE(2) };
  }
  /** Sub-option 8: boot server types, each with its IPv4 addresses. */
  bootServers(): { type: number; addresses: string[] }[] | undefined {
    const v = this.map.get(PXE_SUB.BOOT_SERVERS);
    if (v === undefined) return undefined;
    const out: { type: number; addresses: string[] }[] = [];
    let i = 0;
    while (i < v.length) {
      if (i + 3 > v.length) throw malformed('PXE sub-option 8 is truncated');
      const type = v.readUInt16BE(i);
      const count = v[i + 2]!;
      if (i + 3 + 4 * count > v.length) throw malformed('PXE sub-option 8 is truncated');
      const addresses: string[] = [];
      for (let k = 0; k < count; k++) addresses.push(ipv4ToString(v, i + 3 + 4 * k));
      out.push({ type, addresses });
      i += 3 + 4 * count;
    }
    return out;
  }
  /** Sub-option 9: menu items (type, description). */
  bootMenu(): { type: number; description: string }[] | undefined {
    const v = this.map.get(PXE_SUB.BOOT_MENU);
    if (v === undefined) return undefined;
    const out: { type: number; description: string }[] = [];
    let i = 0;
    while (i < v.length) {
      if (i + 3 > v.length) throw malformed('PXE sub-option 9 is truncated');
      const n = v[i + 2]!;
      if (i + 3 + n > v.length) throw malformed('PXE sub-option 9 is truncated');
      out.push({ type: v.readUInt16BE(i), description: v.toString('latin1', i + 3, i + 3 + n) });
      i += 3 + n;
    }
    return out;
  }
  /** Sub-option 10: timeout in seconds (255 = wait for a key) and prompt text. */
  menuPrompt(): { timeoutSec: number; prompt: string } | undefined {
    const v = this.map.get(PXE_SUB.MENU_PROMPT);
    if (v === undefined) return undefined;
    if (v.length < 1) throw malformed('PXE sub-option 10 must not be empty');
    return { timeoutSec: v[0]!, prompt: v.toString('latin1', 1) };
  }
}

/** Builders for option values. */
export const encodeOption = {
  u8: (n: number): Buffer => Buffer.from([n]),
  u16: (n: number): Buffer => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    return b;
  },
  ipv4: (s: string): Buffer => ipv4ToBuffer(s),
  text: (s: string): Buffer => Buffer.from(s, 'latin1'),
  uuid: (guid: string): Buffer => Buffer.concat([Buffer.from([0]), uuidToSmbios(guid)]),
  bootItem: (type: number, layer: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt16BE(type, 0);
    b.writeUInt16BE(layer, 2);
    return b;
  },
};

export function ipv4ToString(b: Buffer, offset: number): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

export function ipv4ToBuffer(s: string): Buffer {
  const b = Buffer.alloc(4);
  writeIpv4(b, 0, s);
  return b;
}

/** Writes a dotted quad at `offset`; RangeError unless it is exactly four decimal parts 0-255. */
export function writeIpv4(b: Buffer, offset: number, s: string): void {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i === s.length ? 46 : s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || value > 255 || part > 3) throw new RangeError(`not an IPv4 address: ${s}`);
      b[offset + part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      value = value * 10 + (c - 48);
      digits++;
    } else {
      throw new RangeError(`not an IPv4 address: ${s}`);
    }
  }
  if (part !== 4) throw new RangeError(`not an IPv4 address: ${s}`);
}

const SMBIOS_ORDER = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];

export function uuidFromSmbios(b: Buffer): string {
  const hex = SMBIOS_ORDER.map((i) => b[i]!.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function uuidToSmbios(guid: string): Buffer {
  const hex = guid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new RangeError(`not a GUID: ${guid}`);
  const plain = Buffer.from(hex, 'hex');
  const out = Buffer.alloc(16);
  SMBIOS_ORDER.forEach((src, dst) => (out[dst] = plain[src]!));
  return out;
}
