// The last PXE request seen from each machine and what became of it, for `netboot explain`:
// which relay and subnet it came through, which server address it was given. Bounded: beyond
// `max` machines, those first seen longest ago are forgotten first (an update keeps a machine's
// place: cheaper on the hot path than re-inserting it).
import { messageTypeName } from '../protocols/dhcp/dhcp-options.ts';
import { archFromCode } from './pxe-arch.ts';
import type { PxePort } from './pxe-request.ts';
import type { RelayRead } from './relay.ts';

export interface SeenRequest {
  readonly at: number;
  /** Option 53. */
  readonly type: number;
  readonly via: PxePort;
  readonly relay: RelayRead;
  /** The file offered when answered (a reply was sent), else why not. */
  readonly outcome: string;
  readonly answered: boolean;
  readonly server: string | null;
  readonly subnet: string | null;
  /** Option 93 (absent in entries recorded before it was kept). */
  readonly arch?: number | null;
}

/** One machine in the list of those seen recently (the status page, `netboot top`). */
export interface SeenMachine extends SeenReport {
  readonly mac: string;
  readonly atMs: number;
  readonly arch: string;
  readonly answered: boolean;
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
  private readonly seen = new Map<string, Slot>();

  constructor(private readonly max = 4096) {}

  /**
   * Copies `entry` into the machine's slot: a machine seen again reuses its slot, so the table
   * takes no new long-lived object per request (those would go to the old generation and cost
   * full collections under a storm; `entry` itself dies young).
   */
  record(mac: string, entry: SeenRequest): void {
    const slot = this.seen.get(mac);
    if (slot !== undefined) {
      slot.set(entry);
      return;
    }
    this.seen.set(mac, new Slot(entry));
    if (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value!);
  }

  get(mac: string): SeenRequest | undefined {
    return this.seen.get(mac);
  }

  /** The `limit` machines seen most recently after `sinceMs` (epoch ms), newest first. */
  list(sinceMs = 0, limit = 50): SeenMachine[] {
    const hits: [string, Slot][] = [];
    for (const e of this.seen) if (e[1].at > sinceMs) hits.push(e);
    hits.sort((a, b) => b[1].at - a[1].at);
    return hits.slice(0, Math.max(0, Math.min(limit, 1000))).map(([mac, s]) => ({
      mac, atMs: s.at, arch: s.arch === null ? 'none' : (archFromCode(s.arch) ?? `code ${s.arch}`), answered: s.answered, ...this.report(mac)!,
    }));
  }

  report(mac: string): SeenReport | null {
    const s = this.seen.get(mac);
    if (s === undefined) return null;
    return {
      at: new Date(s.at).toISOString(), type: messageTypeName(s.type), port: s.via,
      relay: s.relay.relay?.giaddr ?? null, hops: s.relay.relay?.hops ?? null, agentInfo: s.relay.agentInfo?.describe() ?? null,
      outcome: s.answered ? `answered: ${s.outcome}` : s.outcome, server: s.server, subnet: s.subnet,
    };
  }
}

class Slot implements SeenRequest {
  at!: number;
  type!: number;
  via!: PxePort;
  relay!: RelayRead;
  outcome!: string;
  answered!: boolean;
  server!: string | null;
  subnet!: string | null;
  arch!: number | null;

  constructor(entry: SeenRequest) {
    this.set(entry);
  }

  set(e: SeenRequest): void {
    this.at = e.at;
    this.type = e.type;
    this.via = e.via;
    this.relay = e.relay;
    this.outcome = e.outcome;
    this.answered = e.answered;
    this.server = e.server;
    this.subnet = e.subnet;
    this.arch = e.arch ?? null;
  }
}
