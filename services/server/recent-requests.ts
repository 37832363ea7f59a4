// The last PXE request seen from each machine and what became of it, for `netboot explain`:
// which relay and subnet it came through, which server address it was given. Bounded: the
// machines seen least recently are forgotten first.
import type { PxePort } from './pxe-request.ts';
import type { RelayRead } from './relay.ts';

export interface SeenRequest {
  readonly at: number;
  readonly type: string;
  readonly via: PxePort;
  readonly relay: RelayRead;
  /** 'answered', or why not. */
  readonly outcome: string;
  readonly server: string | null;
  readonly subnet: string | null;
}

/** What explain reports: plain JSON. */
export interface SeenReport {
  readonly at: string;
  readonly type: string;
  readonly port: PxePort;
  readonly relay: string | null;
  readonly hops: number | null;
  readonly agentInfo: string | null;
  readonly outcome: string;
  readonly server: string | null;
  readonly subnet: string | null;
}

export class RecentRequests {
  private readonly seen = new Map<string, SeenRequest>();

  constructor(private readonly max = 4096) {}

  record(mac: string, entry: SeenRequest): void {
    this.seen.delete(mac);
    this.seen.set(mac, entry);
    if (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value!);
  }

  get(mac: string): SeenRequest | undefined {
    return this.seen.get(mac);
  }

  report(mac: string): SeenReport | null {
    const s = this.seen.get(mac);
    if (s === undefined) return null;
    return {
      at: new Date(s.at).toISOString(), type: s.type, port: s.via,
      relay: s.relay.relay?.giaddr ?? null, hops: s.relay.relay?.hops ?? null, agentInfo: s.relay.agentInfo?.describe() ?? null,
      outcome: s.outcome, server: s.server, subnet: s.subnet,
    };
  }
}
