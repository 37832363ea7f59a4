// Keys shared with each configured peer (its own key file, or the site key), read once at start.
import type { Config } from '../runtime/config.ts';
import { NetbootError } from '../runtime/errors.ts';
import { parseHostPort } from '../runtime/host-port.ts';
import { readKeyFile } from './peer-auth.ts';

export interface PeerAddress {
  readonly id: string;
  readonly host: string;
  readonly port: number;
}

export class PeerKeys {
  private readonly keys = new Map<string, Buffer>();
  readonly peers: readonly PeerAddress[];

  constructor(config: Config) {
    const siteKey = config.site.keyFile === null ? null : readKeyFile(config.site.keyFile);
    const peers: PeerAddress[] = [];
    for (const p of config.peers) {
      const key = p.keyFile !== null ? readKeyFile(p.keyFile) : siteKey;
      if (key !== null) this.keys.set(p.id, key);
      peers.push({ id: p.id, ...parseAddress(p.address, config.interface.port) });
    }
    this.peers = peers;
  }

  /** The key shared with `peerId`, or null for a server that is not a configured peer. */
  keyFor(peerId: string): Buffer | null {
    return this.keys.get(peerId) ?? null;
  }

  address(peerId: string): string | null {
    const p = this.peers.find((x) => x.id === peerId);
    return p === undefined ? null : `${p.host}:${p.port}`;
  }
}

/** A configured peer's address (validated at load, so this cannot fail; it throws if it does). */
export function parseAddress(address: string, defaultPort: number): { host: string; port: number } {
  const r = parseHostPort(address, defaultPort);
  if (!r.ok) throw new NetbootError('PEER_ADDRESS_INVALID', `peer address ${JSON.stringify(address)}: ${r.reason}`);
  return { host: r.host, port: r.port };
}
