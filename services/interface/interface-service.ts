// The Interface service: drop folder -> durable state -> state feed, plus the event outbox and
// the control socket. Built by main (or a test) with its collaborators; start/stop only.
import { randomUUID } from 'node:crypto';
import type { Config } from '../../platform/runtime/config.ts';
import { ControlServer, controlSocketPath } from '../../platform/local/control.ts';
import type { FeedEvent, FeedState } from '../../boot/feed-protocol.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { issuedMs } from '../../state/apply.ts';
import { DropFolder, type ReadyFile, type Rejection } from '../../state/drop-folder.ts';
import { EventOutbox } from '../../state/event-outbox.ts';
import { FeedServer } from './feed-server.ts';
import { PeerHub } from './peer-hub.ts';
import type { PackageService } from '../../packages/package-service.ts';
import { packageControlRoutes } from '../../packages/control-routes.ts';
import { PortServer } from './port-server.ts';
import { SEED_DOCUMENTS } from '../../state/seed.ts';
import { StateBook } from '../../state/state-book.ts';
import { JobBook } from '../../state/jobs.ts';
import { AgentRoutes } from '../../state/jobs-agent-routes.ts';
import { openStore, type Db, type Table } from '../../state/store.ts';

const BATCH = 500;
/** A slow full rescan catches anything a watcher missed (network filesystems). */
const RESCAN_MS = 30_000;

export class InterfaceService implements Lifecycle {
  private db: Db | null = null;
  private book: StateBook | null = null;
  private folder: DropFolder | null = null;
  private feed: FeedServer | null = null;
  private port: PortServer | null = null;
  private outbox: EventOutbox | null = null;
  private peers: PeerHub | null = null;
  private packages: PackageService | null = null;
  private control: ControlServer | null = null;
  private rescan: NodeJS.Timeout | null = null;
  private jobBook: JobBook | null = null;

  constructor(private readonly config: Config, private readonly log: Logger) {}

  get boundPort(): number {
    return this.port?.boundPort ?? this.config.interface.port;
  }

  /** Imaging jobs: the agent's API, the job list, mayRead/mayWrite for the package routes. */
  get jobs(): JobBook {
    if (this.jobBook === null) throw new Error('interface not started');
    return this.jobBook;
  }

  get state(): StateBook {
    if (this.book === null) throw new Error('interface not started');
    return this.book;
  }

  async start(): Promise<void> {
    const { config, log } = this;
    this.db = openStore(config.paths.data);
    const book = new StateBook(this.db, log);
    this.book = book;
    book.load();
    if (config.management.url === null) this.seed(book);
    if (config.management.url !== null) {
      this.outbox = new EventOutbox(this.db, { url: config.management.url, serverId: config.site.id, timeoutMs: config.management.timeoutMs }, log.child({ part: 'outbox' }));
    }
    this.feed = new FeedServer(book, log.child({ part: 'feed' }), (id, event) => this.onEvent(id, event));
    this.feed.start();
    this.port = new PortServer(config.interface.bind, config.interface.port, log);
    this.port.upgrade('/feed', this.feed.handleUpgrade);
    this.peers = new PeerHub(config, this.db, book, log.child({ part: 'peers' }));
    this.peers.mount(this.port);
    this.jobBook = new JobBook(book, () => this.outbox?.kick());
    this.port.http('/agent/', new AgentRoutes(this.jobBook, log.child({ part: 'agent' })).handle);
    await this.port.start();
    this.control = new ControlServer(controlSocketPath(config.paths.data, 'interface'), {
      'GET /status': () => this.status(),
      'GET /state': () => ({ ...book.describe(), state: withoutSecrets(book.state()) }),
      'GET /peers': () => this.peers?.status(),
      'GET /jobs': () => ({ jobs: this.jobBook?.list() ?? [] }),
      'GET /peers/latencies': () => this.peers?.latencies(),
      ...packageControlRoutes(() => this.packages),
    }, log);
    await this.control.start();
    await this.outbox?.start();
    this.peers.start();
    this.folder = new DropFolder({
      dir: config.paths.sbs, storeDir: config.paths.sbsStore, settleMs: config.interface.settleMs,
      parseRetryMs: config.interface.parseRetryMs, maxFileBytes: config.interface.maxSbsFileMib * 1024 * 1024, onReady: (files) => this.applyFiles(files), onRejected: (r) => this.onRejected(r),
    }, log.child({ part: 'sbs' }));
    await this.folder.start();
    // Package replication (images/): /pkg/... and /pkg-feed; status changes go to the outbox.
    // Loaded after the SBS intake is running, so it never delays it.
    const { PackageService } = await import('../../packages/package-service.ts');
    this.packages = new PackageService(config, log.child({ part: 'packages' }), this.port, {
      onStatusChange: (s) => { book.recordOutboundEvent(randomUUID(), { kind: 'package-status', ...s }, new Date()); this.outbox?.kick(); },
    });
    await this.packages.start();
    this.rescan = setInterval(() => this.folder?.scan(), RESCAN_MS);
    log.info('interface serving', { port: this.boundPort, sbs: config.paths.sbs, seq: book.lastSeq });
  }

  async stop(): Promise<void> {
    if (this.rescan !== null) clearInterval(this.rescan);
    await this.folder?.stop();
    this.peers?.stop();
    await this.packages?.stop();
    await this.outbox?.stop();
    this.feed?.stop();
    await this.port?.stop();
    await this.control?.stop();
    this.db?.close();
    this.db = null;
  }

  private seed(book: StateBook): void {
    const missing = SEED_DOCUMENTS.filter((d) => !book.hasSnapshot(tableFor(d.kind)) && !book.hasApplied(d.id));
    if (missing.length === 0) return;
    book.applyBatch(missing.map((doc) => ({ doc, source: { file: null, source: 'seed', now: new Date() } })));
    this.log.info('standalone: seeded empty state', { tables: missing.map((d) => d.kind) });
  }

  /** Applies files in the spec's order (issued, then name), commits, then archives them. */
  private applyFiles(files: ReadyFile[]): void {
    const book = this.state;
    files.sort((a, b) => issuedMs(a.doc.issued) - issuedMs(b.doc.issued) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (let i = 0; i < files.length; i += BATCH) {
      const chunk = files.slice(i, i + BATCH);
      let effects;
      try {
        const now = new Date();
        effects = book.applyBatch(chunk.map((f) => ({ doc: f.doc, source: { file: f.name, source: 'sbs', now } })), this.peers?.queueAlongside);
      } catch (err) {
        this.log.error('applying SBS files failed; they stay in the folder and are retried', { err, files: chunk.length });
        for (const f of chunk) this.folder?.release(f);
        continue;
      }
      this.peers?.kick();
      chunk.forEach((f, n) => {
        this.log.info('SBS file applied', { file: f.name, id: f.doc.id, kind: f.doc.kind, issued: f.doc.issued, effect: effects[n] });
        try {
          this.folder?.archive(f);
        } catch (err) {
          this.log.error('cannot move applied SBS file to the store', { file: f.name, err });
        }
      });
      this.folder?.syncArchive();
    }
  }

  private onEvent(eventId: string, event: FeedEvent): void {
    const isNew = this.state.recordEvent(eventId, event, new Date());
    this.log.info('event recorded', { eventId, ...event, duplicate: !isNew });
    if (isNew) this.outbox?.kick();
  }

  private onRejected(r: Rejection): void {
    this.state.recordOutboundEvent(randomUUID(), { kind: 'sbs-rejected', file: r.name, field: r.field, problem: r.problem, at: new Date().toISOString() }, new Date());
    this.outbox?.kick();
  }

  private status(): unknown {
    return {
      service: 'interface', pid: process.pid, state: 'serving', ports: { interface: this.boundPort },
      seq: this.book?.lastSeq ?? 0, subscribers: this.feed?.subscriberCount ?? 0,
      pendingEvents: this.outbox?.pendingCount() ?? 0,
    };
  }
}

/** Job secrets go to the PXE server's feed only, never to a command's output. */
function withoutSecrets(state: FeedState): FeedState {
  return state.jobs === undefined ? state : { ...state, jobs: state.jobs.map((j) => ({ ...j, secret: '(hidden)' })) };
}

function tableFor(kind: string): Table {
  return kind === 'config' ? 'config' : kind === 'clients' ? 'clients' : kind === 'images' ? 'images' : 'predefined';
}
