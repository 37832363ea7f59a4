// Keys shared with each configured peer (its own key file, or the site key), read once at start.
import type { Config } from '../runtime/config.ts';
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

export function parseAddress(address: string, defaultPort: number): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return i < 0 ? { host: address, port: defaultPort } : { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}
