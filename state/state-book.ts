// The Interface's state: durable in SQLite, mirrored in memory for the feed. Batches of
// instructions are applied in one transaction; each change gets the next sequence number and is
// handed to listeners only after the transaction committed.
import type { FeedChange, FeedEvent, FeedJob, FeedState } from '../boot/feed-protocol.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import type { Client, Image, Predefined, PxeConfig, SbsDocument } from '../sbs/types.ts';
import { applyInstruction, consume, type ApplySource, type Effect } from './apply.ts';
import { feedJob, markJobBooted } from './jobs-apply.ts';
import { statements, type Db, type Statements, type Table } from './store.ts';

export interface SequencedChange {
  readonly seq: number;
  readonly change: FeedChange;
}

export interface BatchItem {
  readonly doc: SbsDocument;
  readonly source: ApplySource;
}

export interface ObjectInfo {
  readonly table: Table;
  readonly key: string;
  readonly value: unknown;
  readonly issued: string;
  readonly instructionId: string;
}

type Listener = (changes: readonly SequencedChange[]) => void;

/** Keep this many changes for resuming subscribers; older ones get a fresh snapshot. */
const CHANGE_LOG_KEEP = 50_000;

export class StateBook {
  private readonly st: Statements;
  private config: PxeConfig | null = null;
  private readonly tables = { clients: new Map<string, Client>(), images: new Map<string, Image>(), predefined: new Map<string, Predefined>(), jobs: new Map<string, FeedJob>() };
  private readonly snapshotted = new Set<Table>();
  private seq = 0;
  private readonly listeners = new Set<Listener>();

  constructor(private readonly db: Db, private readonly log: Logger) {
    this.st = statements(db);
  }

  /** Loads the persisted state into memory. */
  load(): void {
    for (const s of this.st.allSnapshots.all()) this.snapshotted.add(s.tbl);
    for (const row of this.st.allObjects.all()) {
      if (row.value === null) continue;
      const value = JSON.parse(row.value) as unknown;
      if (row.tbl === 'config') this.config = value as PxeConfig;
      else (this.tables[row.tbl] as Map<string, unknown>).set(row.key, value);
    }
    for (const row of this.st.builtImagesUnnamed.all()) this.tables.images.set(row.id, JSON.parse(row.value) as Image);
    for (const row of this.st.activeJobs.all()) if (row.job !== null) this.tables.jobs.set(row.jobId, feedJob(row));
    this.seq = this.st.lastSeq.get()?.seq ?? 0;
  }

  /**
   * An image this site built itself (bootwiz): kept in its own table and served, unless a
   * snapshot or an update from the management server (or the SBS folder) names the same id;
   * a snapshot that does not name it leaves it served. Returns whether it is served now.
   */
  putBuiltImage(image: Image, now: Date): boolean {
    const changes: SequencedChange[] = [];
    const served = this.db.transaction(() => {
      this.st.putBuiltImage.run(image.id, JSON.stringify(image), now.toISOString());
      if (this.st.getObject.get('images', image.id) !== undefined) return false;
      changes.push(this.logChange({ table: 'images', op: 'put', image }));
      return true;
    })();
    this.publish(changes);
    return served;
  }

  get lastSeq(): number {
    return this.seq;
  }

  hasSnapshot(tbl: Table): boolean {
    return this.snapshotted.has(tbl);
  }

  state(): FeedState {
    return {
      config: this.snapshotted.has('config') ? this.config : null,
      clients: this.snapshotted.has('clients') ? sorted(this.tables.clients) : null,
      images: this.snapshotted.has('images') ? sorted(this.tables.images) : null,
      predefined: this.snapshotted.has('predefined') ? sorted(this.tables.predefined) : null,
      jobs: sorted(this.tables.jobs),
    };
  }

  /** Every change after `seq`, or null when the log no longer reaches back that far. */
  changesSince(seq: number): SequencedChange[] | null {
    if (seq > this.seq) return null;
    if (seq === this.seq) return [];
    const first = this.st.firstSeq.get()?.seq ?? null;
    if (first === null || first > seq + 1) return null;
    return this.st.changesAfter.all(seq).map((r) => ({ seq: r.seq, change: JSON.parse(r.change) as FeedChange }));
  }

  onChanges(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  hasApplied(id: string): boolean {
    return this.st.hasInstruction.get(id) !== undefined;
  }

  /**
   * Applies a batch (already in the order it must be applied) in one transaction. `alongside`
   * runs inside that transaction for each item, so what it writes (e.g. a peer outbox entry)
   * commits or rolls back with the instruction.
   */
  applyBatch(items: readonly BatchItem[], alongside?: (item: BatchItem, effect: Effect) => void): Effect[] {
    const collected: SequencedChange[] = [];
    const effects = this.db.transaction(() =>
      items.map((item) => {
        const r = applyInstruction(this.st, item.doc, item.source);
        for (const change of r.changes) collected.push(this.logChange(change));
        alongside?.(item, r.effect);
        return r.effect;
      }),
    )();
    this.publish(collected);
    return effects;
  }

  /**
   * Records an event from the PXE server (idempotent by eventId) and, for pxe-booted, turns the
   * machine's `once` boot into `local` in the same transaction. Returns true if it was new.
   */
  recordEvent(eventId: string, event: FeedEvent, now: Date): boolean {
    const changes: SequencedChange[] = [];
    const isNew = this.db.transaction(() => {
      const inserted = this.st.insertEvent.run(eventId, JSON.stringify(event), now.toISOString()).changes > 0;
      if (!inserted) return false;
      if (event.kind === 'pxe-booted' && event.jobId !== undefined) {
        // A job's preboot boot: consumed for that job; the client's own action is untouched.
        const change = markJobBooted(this.st, event.jobId);
        if (change !== null) changes.push(this.logChange(change));
      } else if (event.kind === 'pxe-booted') {
        const atMs = Date.parse(event.at);
        this.st.insertConsumption.run(eventId, event.mac, event.image, Number.isFinite(atMs) ? atMs : now.getTime());
        const change = consume(this.st, event.mac, event.image, Number.isFinite(atMs) ? atMs : now.getTime());
        if (change !== null) changes.push(this.logChange(change));
      }
      return true;
    })();
    this.publish(changes);
    return isNew;
  }

  /**
   * Runs `fn` in one transaction with the statements; the feed changes it returns are logged and
   * published after the commit, like an instruction's (used for imaging jobs: state/jobs.ts).
   */
  transact<T>(fn: (st: Statements) => { value: T; changes: readonly FeedChange[] }): T {
    const collected: SequencedChange[] = [];
    const value = this.db.transaction(() => {
      const r = fn(this.st);
      for (const change of r.changes) collected.push(this.logChange(change));
      return r.value;
    })();
    this.publish(collected);
    return value;
  }

  /** Reads with the statements, outside any write. */
  read<T>(fn: (st: Statements) => T): T {
    return fn(this.st);
  }

  /** Records an event that only travels to the management server (e.g. a rejected file). */
  recordOutboundEvent(eventId: string, event: Record<string, unknown>, now: Date): void {
    this.st.insertEvent.run(eventId, JSON.stringify(event), now.toISOString());
  }

  /** Objects with the `issued` and instruction `id` that last changed each (for `netboot state`). */
  describe(): { seq: number; snapshots: Array<{ table: Table; issued: string; id: string }>; objects: ObjectInfo[] } {
    return {
      seq: this.seq,
      snapshots: this.st.allSnapshots.all().map((s) => ({ table: s.tbl, issued: s.issued, id: s.instructionId })),
      objects: this.st.allObjects.all().filter((r) => r.value !== null).map((r) => ({
        table: r.tbl, key: r.key, value: JSON.parse(r.value as string), issued: r.issued, instructionId: r.instructionId,
      })),
    };
  }

  /** Inside a transaction: appends a change to the durable log and returns it with its seq. */
  private logChange(change: FeedChange): SequencedChange {
    return { seq: Number(this.st.appendChange.run(JSON.stringify(change)).lastInsertRowid), change };
  }

  private publish(sequenced: readonly SequencedChange[]): void {
    if (sequenced.length === 0) return;
    for (const s of sequenced) this.mirror(s.change);
    const before = this.seq;
    this.seq = sequenced[sequenced.length - 1]!.seq;
    if (Math.floor(before / 1000) !== Math.floor(this.seq / 1000)) this.st.trimChanges.run(this.seq - CHANGE_LOG_KEEP);
    for (const listener of this.listeners) {
      try {
        listener(sequenced);
      } catch (err) {
        this.log.error('change listener failed', { err });
      }
    }
  }

  private mirror(change: FeedChange): void {
    if (change.op === 'replace') this.snapshotted.add(change.table);
    switch (change.table) {
      case 'config':
        this.config = change.config;
        return;
      case 'clients':
        return mirrorTable(this.tables.clients, change.op === 'replace' ? change.clients : null, change.op === 'put' ? change.client : null, change.op === 'delete' ? change.mac : null, (c) => c.mac);
      case 'images':
        return mirrorTable(this.tables.images, change.op === 'replace' ? change.images : null, change.op === 'put' ? change.image : null, change.op === 'delete' ? change.id : null, (i) => i.id);
      case 'predefined':
        return mirrorTable(this.tables.predefined, change.op === 'replace' ? change.computers : null, change.op === 'put' ? change.computer : null, change.op === 'delete' ? change.mac : null, (c) => c.mac);
      case 'jobs':
        return mirrorTable(this.tables.jobs, null, change.op === 'put' ? change.job : null, change.op === 'delete' ? change.jobId : null, (j) => j.jobId);
    }
  }
}

/** Values in key order, so every reader sees the same order. */
function sorted<T>(map: Map<string, T>): T[] {
  return [...map.keys()].sort().map((k) => map.get(k) as T);
}

function mirrorTable<T>(map: Map<string, T>, all: readonly T[] | null, put: T | null, del: string | null, key: (t: T) => string): void {
  if (all !== null) {
    map.clear();
    for (const v of all) map.set(key(v), v);
  }
  if (put !== null) map.set(key(put), put);
  if (del !== null) map.delete(del);
}
