// The Interface service: drop folder -> durable state -> state feed, plus the event outbox, the
// package component and the control socket. main.ts builds every part and passes it in; this
// class only starts them in order, stops them in reverse, and routes what the parts report.
// It reports `serving` only once every part is up: the supervisor starts the next service then.
import { randomUUID } from 'node:crypto';
import type { ControlServer, ServiceStatusBody } from '../../platform/local/control.ts';
import type { FeedEvent } from '../../boot/feed-protocol.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import type { PackageStatus } from '../../packages/model.ts';
import { issuedMs } from '../../state/apply.ts';
import type { DropFolder, ReadyFile, Rejection } from '../../state/drop-folder.ts';
import type { FeedServer } from './feed-server.ts';
import type { PeerHub } from './peer-hub.ts';
import type { PortServer } from './port-server.ts';
import { seedDocuments } from '../../state/seed.ts';
import type { BootwizService } from '../../bootwiz/bootwiz-service.ts';
import type { JobBook } from '../../state/jobs.ts';
import type { StateBook } from '../../state/state-book.ts';
import type { Db, Table } from '../../state/store.ts';

const BATCH = 500;
/** A slow full rescan catches anything a watcher missed (network filesystems). */
const RESCAN_MS = 30_000;

/** Delivers recorded events to the management server (EventOutbox), or keeps them (standalone). */
export interface Outbox extends Lifecycle {
  kick(): void;
  pendingCount(): number;
}

/** Standalone: events stay recorded in the store; nothing delivers them. */
export const NO_OUTBOX: Outbox = Object.freeze({ start: async () => {}, stop: async () => {}, kick: () => {}, pendingCount: () => 0 });

export type InterfaceState = 'new' | 'starting' | 'serving' | 'stopping' | 'stopped';

export interface InterfaceParts {
  readonly db: Db;
  readonly book: StateBook;
  readonly control: ControlServer;
  readonly port: PortServer;
  readonly feed: FeedServer;
  readonly peers: PeerHub;
  readonly outbox: Outbox;
  readonly folder: DropFolder;
  /** The package component (PackageService): started last, so it never delays the SBS intake. */
  readonly packages: Lifecycle;
  /** Preboot builds (bootwiz/): started after the packages it publishes into. */
  readonly bootwiz: BootwizService;
  /** Imaging jobs: the agent's API, the job list, mayRead/mayWrite for the package routes. */
  readonly jobs: JobBook;
}

export interface InterfaceSettings {
  /** No management server: an empty store is seeded so PXE clients get the default answer. */
  readonly standalone: boolean;
  readonly sbsDir: string;
  /** Standalone and [bootwiz] seed_menu: unknown machines first get this menu (local disk or the image). */
  readonly seedMenu: { readonly image: string; readonly timeoutSec: number } | null;
}

export class InterfaceService implements Lifecycle {
  private phase: InterfaceState = 'new';
  private rescan: NodeJS.Timeout | undefined;
  /** Parts started so far (or being started): stop() stops these. */
  private readonly running: { stop(): unknown }[] = [];

  constructor(private readonly parts: InterfaceParts, private readonly settings: InterfaceSettings, private readonly log: Logger) {}

  get boundPort(): number {
    return this.parts.port.boundPort;
  }

  get jobs(): JobBook {
    return this.parts.jobs;
  }

  get state(): StateBook {
    return this.parts.book;
  }

  async start(): Promise<void> {
    const { book, control, port, feed, peers, outbox, folder, packages, bootwiz } = this.parts;
    this.phase = 'starting';
    // The control socket first: `netboot status` and the supervisor see "starting" meanwhile.
    await this.up(control, () => control.start());
    book.load();
    if (this.settings.standalone) this.seed(book);
    await this.up(feed, async () => feed.start());
    await this.up(port, () => port.start());
    await this.up(outbox, () => outbox.start());
    await this.up(peers, async () => peers.start());
    await this.up(folder, () => folder.start());
    await this.up(packages, () => packages.start());
    await this.up(bootwiz, async () => bootwiz.start());
    this.rescan = setInterval(() => folder.scan(), RESCAN_MS);
    this.phase = 'serving';
    this.log.info('interface serving', { port: this.boundPort, sbs: this.settings.sbsDir, seq: book.lastSeq });
  }

  async stop(): Promise<void> {
    if (this.phase === 'stopped') return;
    this.phase = 'stopping';
    clearInterval(this.rescan);
    // The intake first, the sockets last: the feed's subscribers (WebSockets the port's close
    // would wait for) go before the port. Only parts that were started, plus the package
    // component, which holds its store from the moment it is built. The rest still stops when
    // one part's stop fails.
    const { folder, bootwiz, peers, packages, outbox, feed, port, control } = this.parts;
    const started = new Set(this.running.splice(0));
    for (const part of [folder, bootwiz, peers, packages, outbox, feed, port, control]) {
      if (!started.has(part) && part !== packages) continue;
      try {
        await part.stop();
      } catch (err) {
        this.log.error('stop failed', { err });
      }
    }
    this.parts.db.close();
    this.phase = 'stopped';
  }

  /** Counts a part as running before its start: one that fails part-way is stopped too. */
  private async up(part: { stop(): unknown }, start: () => Promise<void>): Promise<void> {
    this.running.push(part);
    await start();
  }

  private seed(book: StateBook): void {
    const missing = seedDocuments(this.settings.seedMenu).filter((d) => !book.hasSnapshot(tableFor(d.kind)) && !book.hasApplied(d.id));
    if (missing.length === 0) return;
    book.applyBatch(missing.map((doc) => ({ doc, source: { file: null, source: 'seed', now: new Date() } })));
    this.log.info('standalone: seeded empty state', { tables: missing.map((d) => d.kind) });
  }

  /** Applies files in the spec's order (issued, then name), commits, then archives them. */
  applyFiles(files: ReadyFile[]): void {
    const { book, peers, folder } = this.parts;
    files.sort((a, b) => issuedMs(a.doc.issued) - issuedMs(b.doc.issued) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (let i = 0; i < files.length; i += BATCH) {
      const chunk = files.slice(i, i + BATCH);
      let effects;
      try {
        const now = new Date();
        effects = book.applyBatch(chunk.map((f) => ({ doc: f.doc, source: { file: f.name, source: 'sbs', now } })), peers.queueAlongside);
      } catch (err) {
        this.log.error('applying SBS files failed; they stay in the folder and are retried', { err, files: chunk.length });
        for (const f of chunk) folder.release(f);
        continue;
      }
      peers.kick();
      chunk.forEach((f, n) => {
        this.log.info('SBS file applied', { file: f.name, id: f.doc.id, kind: f.doc.kind, issued: f.doc.issued, effect: effects[n] });
        try {
          folder.archive(f);
        } catch (err) {
          this.log.error('cannot move applied SBS file to the store', { file: f.name, err });
        }
      });
      folder.syncArchive();
    }
  }

  /** An event from the PXE server on the state feed: persisted, then delivered. */
  onEvent(eventId: string, event: FeedEvent): void {
    const isNew = this.parts.book.recordEvent(eventId, event, new Date());
    this.log.info('event recorded', { eventId, ...event, duplicate: !isNew });
    if (isNew) this.parts.outbox.kick();
  }

  onRejected(r: Rejection): void {
    this.parts.book.recordOutboundEvent(randomUUID(), { kind: 'sbs-rejected', file: r.name, field: r.field, problem: r.problem, at: new Date().toISOString() }, new Date());
    this.parts.outbox.kick();
  }

  /** A package's state here changed: reported to the management server. */
  onPackageStatus(s: PackageStatus): void {
    this.parts.book.recordOutboundEvent(randomUUID(), { kind: 'package-status', ...s }, new Date());
    this.parts.outbox.kick();
  }

  status(): InterfaceStatus {
    return {
      service: 'interface', pid: process.pid, state: this.phase === 'new' ? 'starting' : this.phase === 'stopped' ? 'stopping' : this.phase,
      ports: { interface: this.boundPort }, seq: this.parts.book.lastSeq, subscribers: this.parts.feed.subscriberCount,
      pendingEvents: this.parts.outbox.pendingCount(), warnings: [],
      bootwiz: this.parts.bootwiz.status(),
    };
  }
}

export interface InterfaceStatus extends ServiceStatusBody {
  readonly service: 'interface';
  readonly pid: number;
  readonly state: 'starting' | 'serving' | 'stopping';
  readonly ports: { readonly interface: number };
  readonly seq: number;
  readonly subscribers: number;
  readonly pendingEvents: number;
  /** Preboot builds by id (bootwiz/). */
  readonly bootwiz: ReturnType<BootwizService['status']>;
  /** Start-up checks that would fail requests (none for the Interface so far). */
  readonly warnings: readonly string[];
}

function tableFor(kind: string): Table {
  return kind === 'config' ? 'config' : kind === 'clients' ? 'clients' : kind === 'images' ? 'images' : 'predefined';
}
