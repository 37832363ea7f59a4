// This server's links to its configured peers for packages: one feed subscription each (refs and
// their statuses pushed to us), the periodic full comparison that catches anything a push
// missed, and the ranking of peers as chunk sources.
import type { Config } from '../platform/runtime/config.ts';
import { errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { quote } from '../platform/runtime/quote.ts';
import type { RecordsMessage } from './feed-messages.ts';
import { checkRef, checkStatus, type PackageRef } from './model.ts';
import type { PackageStore } from './package-store.ts';
import type { PeerKeys } from '../platform/trust/peer-keys.ts';
import { PeerLink } from './peer-link.ts';

export interface PeerEvents {
  /** A peer told us of a ref (pushed or found by comparison); not necessarily newer. */
  onRef(ref: PackageRef, from: string): void;
  /** A feed link came up: anything still to do may now find a source. */
  onLinkUp(peerId: string): void;
}

export class PackagePeers {
  private readonly links = new Map<string, PeerLink>();
  private stopped = true;

  constructor(
    private readonly config: Config,
    private readonly keys: PeerKeys,
    private readonly store: PackageStore,
    private readonly events: PeerEvents,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    for (const peer of this.keys.peers) {
      const key = this.keys.keyFor(peer.id);
      if (key === null) {
        this.log.warn('no key for peer; not replicating with it', { peer: peer.id });
        continue;
      }
      const link = new PeerLink(this.config.site.id, peer, key, {
        cursor: (id) => this.store.db.getCursor(id),
        onRecords: (id, msg) => this.onRecords(id, msg),
        onConnection: (id, up) => {
          if (up) this.events.onLinkUp(id);
        },
      }, this.log.child({ part: 'pkg-link', peer: peer.id }), this.config.packages.fetchConcurrency + 2);
      this.links.set(peer.id, link);
      link.start();
    }
  }

  stop(): void {
    this.stopped = true;
    for (const link of this.links.values()) link.stop();
    this.links.clear();
  }

  get size(): number {
    return this.links.size;
  }

  get(id: string): PeerLink | undefined {
    return this.links.get(id);
  }

  /** Connected peers as sources for a package's chunks, best first: Ready at the digest, the owner, `announcer`, the rest; nearest first within each. */
  ranked(ref: PackageRef, announcer: string | undefined): PeerLink[] {
    const ready = new Set(this.store.db.peerStatusesOf(ref.package).filter((s) => s.state === 'ready' && s.digest === ref.digest).map((s) => s.server));
    const rank = (l: PeerLink): number => (ready.has(l.id) ? 0 : l.id === ref.owner ? 1 : l.id === announcer ? 2 : 3);
    return [...this.links.values()].filter((l) => l.connected).sort((a, b) => rank(a) - rank(b) || (a.rttMs ?? 1e9) - (b.rttMs ?? 1e9));
  }

  describe(): Array<{ peer: string; connected: boolean; rttMs: number | null }> {
    return [...this.links.values()].map((l) => ({ peer: l.id, connected: l.connected, rttMs: l.rttMs === null ? null : Math.round(l.rttMs * 10) / 10 }));
  }

  private onRecords(peerId: string, msg: RecordsMessage): void {
    if (this.stopped) return;
    for (const r of msg.records) {
      if (r.type === 'ref') this.events.onRef(r.ref, peerId);
      else if (r.status.server === peerId) this.store.db.putPeerStatus(r.status);
    }
    this.store.db.putCursor(peerId, msg.epoch, msg.cursor);
  }

  /** Full comparison with every connected peer: its refs and its own statuses. */
  async antiEntropy(): Promise<void> {
    for (const link of this.links.values()) {
      if (this.stopped || !link.connected) continue;
      try {
        const body = JSON.parse((await link.getBody('/pkg/refs', 64 * 1024 * 1024)).toString('utf8')) as { refs?: unknown[]; statuses?: unknown[] };
        if (this.stopped) return;
        for (const r of body.refs ?? []) {
          const ref = checkRef(r);
          if (ref !== null) this.events.onRef(ref, link.id);
        }
        for (const s of body.statuses ?? []) {
          const st = checkStatus(s);
          if (st !== null && st.server === link.id) this.store.db.putPeerStatus(st);
        }
      } catch (err) {
        this.log.debug('anti-entropy with peer failed', { peer: link.id, err: quote(errorMessage(err), 200) });
      }
    }
  }
}
