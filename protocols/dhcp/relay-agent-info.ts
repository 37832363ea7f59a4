// Option 82, the Relay Agent Information option (RFC 3046): sub-options added by a relay agent.
// Pure codec. The server echoes the option's bytes verbatim (RFC 3046 2.2) and reads the
// sub-options only to log them and for the link selection (RFC 3527). A malformed option makes
// the whole packet malformed (ProtocolError): see README.md, "Relay agents".
import { ProtocolError } from '../../platform/runtime/errors.ts';

export const AGENT_SUB = {
  CIRCUIT_ID: 1,
  REMOTE_ID: 2,
  /** RFC 3527: the client's subnet, when giaddr is not an address in it. */
  LINK_SELECTION: 5,
  SUBSCRIBER_ID: 6,
} as const;

function malformed(message: string): ProtocolError {
  return new ProtocolError('dhcp', `option 82 ${message}`);
}

export class RelayAgentInfo {
  private constructor(
    /** The option's bytes as received: what a reply echoes. */
    readonly raw: Buffer,
    /** Sub-options in order; a code sent twice appears twice. */
    readonly subOptions: readonly (readonly [number, Buffer])[],
  ) {}

  /** RFC 3046 2.0: a non-empty sequence of code/length/value sub-options filling the option. */
  static decode(data: Buffer): RelayAgentInfo {
    if (data.length === 0) throw malformed('is empty (RFC 3046: at least one sub-option)');
    const subs: [number, Buffer][] = [];
    let i = 0;
    while (i < data.length) {
      const code = data[i]!;
      if (i + 1 >= data.length) throw malformed(`sub-option ${code} at offset ${i} has no length byte`);
      const n = data[i + 1]!;
      if (i + 2 + n > data.length) throw malformed(`sub-option ${code} at offset ${i} overruns the option (length ${n}, ${data.length - i - 2} bytes left)`);
      const value = data.subarray(i + 2, i + 2 + n);
      if (code === AGENT_SUB.LINK_SELECTION && n !== 4) throw malformed(`sub-option 5 (link selection) must be 4 bytes, got ${n}`);
      subs.push([code, value]);
      i += 2 + n;
    }
    return new RelayAgentInfo(data, subs);
  }

  static encode(subOptions: Iterable<readonly [number, Buffer]>): Buffer {
    const parts: Buffer[] = [];
    for (const [code, value] of subOptions) {
      if (value.length > 255) throw new RangeError(`option 82 sub-option ${code} longer than 255 bytes`);
      parts.push(Buffer.from([code, value.length]), value);
    }
    return Buffer.concat(parts);
  }

  get(code: number): Buffer | undefined {
    return this.subOptions.find(([c]) => c === code)?.[1];
  }

  /** Sub-option 5 (RFC 3527) as a dotted quad. */
  linkSelection(): string | undefined {
    const v = this.get(AGENT_SUB.LINK_SELECTION);
    return v === undefined ? undefined : `${v[0]}.${v[1]}.${v[2]}.${v[3]}`;
  }

  /** For logs: `circuit-id "cl0" remote-id 0a0b` (text when printable, else hex). */
  describe(): string {
    return this.subOptions.map(([code, value]) => `${SUB_NAMES[code] ?? `sub-${code}`} ${code === AGENT_SUB.LINK_SELECTION ? this.linkSelection() : show(value)}`).join(' ');
  }
}

const SUB_NAMES: Record<number, string> = { 1: 'circuit-id', 2: 'remote-id', 5: 'link-selection', 6: 'subscriber-id' };

function show(value: Buffer): string {
  return value.length > 0 && value.every((b) => b >= 0x20 && b < 0x7f) ? JSON.stringify(value.toString('latin1')) : value.toString('hex');
}
