// How many TCP connections a listening port holds, overall and per source address. A connection
// past the per-address bound is refused. One past the overall bound takes the place of the oldest
// connection of the address holding the most, if that address holds more than the newcomer's
// (and that connection has not proved who it is): so one address, or a few, filling the port
// cannot lock out anybody else, a legitimate peer still gets in, and a flood from the busy
// addresses is refused. Every refusal is logged with its reason, at a bounded rate.
import type { Socket } from 'node:net';
import type { RateLimitedLog } from '../runtime/log-limit.ts';

export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  /** The settings that set them, named in refusals (none for a fixed limit). */
  readonly keys?: { readonly overall: string; readonly perAddress: string };
}

interface Held {
  readonly socket: Socket;
  readonly address: string;
  proven: boolean;
}

export class ConnectionGate {
  /** Per address, its connections oldest first. */
  private readonly byAddress = new Map<string, Held[]>();
  private readonly bySocket = new Map<Socket, Held>();
  /** Connections refused or evicted since start (status, tests). */
  refused = 0;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly refusals: RateLimitedLog,
    /** The port's name in log lines, e.g. 'interface port'. */
    private readonly what: string,
  ) {}

  get count(): number {
    return this.bySocket.size;
  }

  /** For a server's 'connection' event: false when the connection was refused (and destroyed). */
  admit(socket: Socket): boolean {
    if (socket.destroyed || socket.remoteAddress === undefined) {
      socket.destroy(); // gone before it was counted: nothing to hold
      return false;
    }
    const address = normalise(socket.remoteAddress);
    const mine = this.byAddress.get(address) ?? [];
    if (mine.length >= this.limits.maxConnectionsPerAddress) {
      return this.refuse(socket, address, `more than ${this.limits.maxConnectionsPerAddress} connections from one address${hint(this.limits.keys?.perAddress)}`);
    }
    if (this.bySocket.size >= this.limits.maxConnections && !this.evictFor(mine.length)) {
      return this.refuse(socket, address, `${this.limits.maxConnections} connections open${hint(this.limits.keys?.overall)}`);
    }
    const held: Held = { socket, address, proven: false };
    mine.push(held);
    this.byAddress.set(address, mine);
    this.bySocket.set(socket, held);
    socket.once('close', () => this.forget(held));
    return true;
  }

  /** The connection proved who it is (an authenticated link): it is never evicted. */
  prove(socket: Socket): void {
    const held = this.bySocket.get(socket);
    if (held !== undefined) held.proven = true;
  }

  private evictFor(newcomerHolds: number): boolean {
    let busiest: Held[] | null = null;
    for (const list of this.byAddress.values()) {
      if (list.some((h) => !h.proven) && (busiest === null || list.length > busiest.length)) busiest = list;
    }
    if (busiest === null || busiest.length <= newcomerHolds + 1) return false;
    const victim = busiest.find((h) => !h.proven)!;
    this.forget(victim);
    this.refused++;
    this.refusals.warn(`${this.what}: connection closed to make room`, { remote: victim.address, holds: busiest.length + 1, reason: `${this.limits.maxConnections} connections open; this address holds the most` });
    victim.socket.destroy();
    return true;
  }

  private refuse(socket: Socket, address: string, reason: string): false {
    this.refused++;
    this.refusals.warn(`${this.what}: connection refused`, { remote: address, reason });
    socket.destroy();
    return false;
  }

  private forget(held: Held): void {
    if (this.bySocket.get(held.socket) !== held) return;
    this.bySocket.delete(held.socket);
    const list = this.byAddress.get(held.address);
    if (list === undefined) return;
    const i = list.indexOf(held);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byAddress.delete(held.address);
  }
}

function hint(key: string | undefined): string {
  return key === undefined ? '' : ` (${key})`;
}

function normalise(address: string | undefined): string {
  if (address === undefined) return '?';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
