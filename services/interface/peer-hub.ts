// Site-to-site job replication: after a `client` or `client-remove` instruction with
// `replicateTo` is applied from the SBS folder, the same document (same id) is queued for each
// named peer in the same transaction, and delivered by that peer's link. Jobs received from peers
// are applied locally and never forwarded again.
import type { Config, PeerConfig } from '../../platform/runtime/config.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { type PeerKeys, parseAddress } from '../../platform/trust/peer-keys.ts';
import type { SbsDocument } from '../../sbs/types.ts';
import { issuedMs, type Effect } from '../../state/apply.ts';
import { PeerIntake, type InboundPeer } from '../../state/peer-intake.ts';
import { PeerLink, type PeerLinkStatus } from './peer-link.ts';
import { PeerOutbox } from '../../state/peer-outbox.ts';
import type { PortServer } from './port-server.ts';
import type { BatchItem, StateBook } from '../../state/state-book.ts';
import type { Db } from '../../state/store.ts';

export class PeerHub {
  private readonly links = new Map<string, PeerLink>();
  private readonly outbox: PeerOutbox;
  readonly intake: PeerIntake;

  /** `keys`: read once by the composition root, shared with the package component. */
  constructor(private readonly config: Config, db: Db, private readonly book: StateBook, private readonly keys: PeerKeys, private readonly log: Logger) {
    this.outbox = new PeerOutbox(db);
    this.intake = new PeerIntake(config.site.id, (id) => this.keys.keyFor(id), (doc, peerId) => this.applyFromPeer(doc, peerId), log.child({ part: 'peer-intake' }));
  }

  mount(port: PortServer): void {
    port.upgrade('/peer', this.intake.handleUpgrade);
  }

  start(): void {
    for (const peer of this.config.peers) {
      const key = this.keys.keyFor(peer.id);
      if (key === null) {
        this.log.warn('no key for peer ([site] key_file or its key_file); jobs for it stay queued', { peer: peer.id });
        continue;
      }
      const link = new PeerLink(peer, `ws://${this.keys.address(peer.id)}/peer`, this.config.site.id, key, this.outbox, this.log.child({ part: 'peer-link', peer: peer.id }));
      this.links.set(peer.id, link);
      link.start();
    }
  }

  stop(): void {
    for (const link of this.links.values()) link.stop();
    this.links.clear();
    this.intake.stop();
  }

  /** Runs inside the transaction that applied a dropped file: queues it for the named peers. */
  readonly queueAlongside = (item: BatchItem, effect: Effect): void => {
    const doc = item.doc;
    if (effect !== 'applied' || item.source.source !== 'sbs') return;
    if ((doc.kind !== 'client' && doc.kind !== 'client-remove') || doc.replicateTo === undefined) return;
    const mac = doc.kind === 'client' ? doc.client.mac : doc.mac;
    for (const target of doc.replicateTo) {
      const peer = this.resolve(target);
      if (peer === null) {
        this.log.warn('replicateTo names no configured peer; not sent there', { id: doc.id, target });
        continue;
      }
      this.outbox.enqueue(peer.id, doc.id, mac, issuedMs(doc.issued), JSON.stringify(doc), item.source.now.getTime());
    }
  };

  /** After the transaction committed: wake the links that have new work. */
  kick(): void {
    for (const link of this.links.values()) link.kick();
  }

  status(): { site: string; peers: PeerLinkStatus[]; inbound: InboundPeer[] } {
    return { site: this.config.site.id, peers: [...this.links.values()].map((l) => l.status()), inbound: this.intake.connections() };
  }

  latencies(): Record<string, number[]> {
    return Object.fromEntries([...this.links].map(([id, l]) => [id, [...l.latencies]]));
  }

  /** A replicateTo entry is a peer's id, its `host:port`, or its host. Never ourselves. */
  private resolve(target: string): PeerConfig | null {
    const lower = target.toLowerCase();
    return this.config.peers.find((p) => {
      const addr = p.address.toLowerCase();
      return p.id.toLowerCase() === lower || addr === lower || withPort(addr, this.config.interface.port) === withPort(lower, this.config.interface.port);
    }) ?? null;
  }

  private applyFromPeer(doc: SbsDocument, peerId: string): Effect {
    const [effect] = this.book.applyBatch([{ doc, source: { file: null, source: `peer:${peerId}`, now: new Date() } }]);
    return effect!;
  }
}

function withPort(address: string, defaultPort: number): string {
  const { host, port } = parseAddress(address, defaultPort);
  return `${host}:${port}`;
}
