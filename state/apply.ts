// Applies SBS instructions to the store with the spec's ordering rules (sbs-v1 "Ordering"):
// idempotent by `id`; an update older than the object's `issued` is recorded but changes
// nothing; a snapshot replaces its table and then re-applies every newer update on top.
// Runs inside the caller's transaction; returns the feed changes it caused.
import type { FeedChange } from '../boot/feed-protocol.ts';
import type { Action, Client, Image, Predefined, PxeConfig, SbsDocument } from '../sbs/types.ts';
import type { Statements, Table } from './store.ts';
import { toUtc } from '../sbs/time.ts';
import { applyJobDoc, isJobDoc, jobKey, reapplyJobOutcomes } from './jobs-apply.ts';

export type Effect = 'applied' | 'stale' | 'duplicate';

export interface ApplyResult {
  readonly effect: Effect;
  readonly changes: FeedChange[];
}

type UpdateDoc = Extract<SbsDocument, { kind: 'client' | 'client-remove' | 'image' | 'image-remove' | 'predefined-computer' | 'predefined-computer-remove' }>;
type SnapshotDoc = Extract<SbsDocument, { kind: 'config' | 'clients' | 'images' | 'predefined-computers' }>;

export function tableOf(doc: Exclude<SbsDocument, { kind: 'job' | 'job-cancel' }>): Table {
  switch (doc.kind) {
    case 'config':
      return 'config';
    case 'clients': case 'client': case 'client-remove':
      return 'clients';
    case 'images': case 'image': case 'image-remove':
      return 'images';
    case 'predefined-computers': case 'predefined-computer': case 'predefined-computer-remove':
      return 'predefined';
  }
}

/** The object an update targets and its new value (null = removal). */
function target(doc: UpdateDoc): { key: string; value: Client | Image | Predefined | null } {
  switch (doc.kind) {
    case 'client': return { key: doc.client.mac, value: doc.client };
    case 'client-remove': return { key: doc.mac, value: null };
    case 'image': return { key: doc.image.id, value: doc.image };
    case 'image-remove': return { key: doc.imageId, value: null };
    case 'predefined-computer': return { key: doc.computer.mac, value: doc.computer };
    case 'predefined-computer-remove': return { key: doc.mac, value: null };
  }
}

function isSnapshot(doc: SbsDocument): doc is SnapshotDoc {
  return doc.kind === 'config' || doc.kind === 'clients' || doc.kind === 'images' || doc.kind === 'predefined-computers';
}

/**
 * `issued` as epoch milliseconds, whatever offset it was written with. A leap second (:60) counts
 * as the last millisecond of its minute (Date.parse refuses it); finer fractions are truncated.
 */
export function issuedMs(issued: string): number {
  const t = toUtc(issued);
  const second = Math.min(t.second, 59);
  const ms = t.second === 60 ? 999 : Number(t.fraction.slice(0, 3).padEnd(3, '0'));
  // Date.UTC maps years 0-99 to 1900-1999; 2000 is a leap year, so any valid day fits first.
  const d = new Date(Date.UTC(2000, t.month - 1, t.day, t.hour, t.minute, second, ms));
  d.setUTCFullYear(t.year);
  return d.getTime();
}

export interface ApplySource {
  readonly file: string | null;
  /** 'sbs' (dropped file), 'peer:<id>', 'seed'. */
  readonly source: string;
  readonly now: Date;
}

export function applyInstruction(st: Statements, doc: SbsDocument, src: ApplySource): ApplyResult {
  if (st.hasInstruction.get(doc.id) !== undefined) return { effect: 'duplicate', changes: [] };
  if (isJobDoc(doc)) {
    // Jobs keep their own table (state/jobs-store.ts); the instruction is recorded like any other.
    const ms = issuedMs(doc.issued);
    const result = applyJobDoc(st, doc, ms, src);
    st.insertInstruction.run({
      id: doc.id, kind: doc.kind, tbl: 'jobs', key: jobKey(doc), issued: doc.issued, issuedMs: ms, file: src.file,
      source: src.source, appliedAt: src.now.toISOString(), effect: result.effect, doc: JSON.stringify(doc),
    });
    return result;
  }
  const tbl = tableOf(doc);
  const result = isSnapshot(doc) ? applySnapshot(st, doc, tbl) : applyUpdate(st, doc, tbl);
  st.insertInstruction.run({
    id: doc.id, kind: doc.kind, tbl, key: isSnapshot(doc) ? null : target(doc).key, issued: doc.issued,
    issuedMs: issuedMs(doc.issued), file: src.file, source: src.source, appliedAt: src.now.toISOString(),
    effect: result.effect, doc: JSON.stringify(doc),
  });
  return result;
}

function applyUpdate(st: Statements, doc: UpdateDoc, tbl: Table): ApplyResult {
  const { key, value } = target(doc);
  const ms = issuedMs(doc.issued);
  const row = st.getObject.get(tbl, key);
  if (row !== undefined && row.issuedMs > ms) return { effect: 'stale', changes: [] };
  // A snapshot speaks for every object of its table, also those it does not list: an update
  // older than the snapshot in force cannot bring back what the snapshot left out.
  const snapshot = st.getSnapshot.get(tbl);
  if (snapshot !== undefined && snapshot.issuedMs > ms) return { effect: 'stale', changes: [] };
  st.putObject.run({ tbl, key, value: value === null ? null : JSON.stringify(value), issued: doc.issued, issuedMs: ms, instructionId: doc.id });
  if (value === null) {
    // Removing what is not there changes nothing a subscriber can see, but the tombstone still
    // keeps an older update from resurrecting the object.
    const served = row?.value != null || (tbl === 'images' && st.getBuiltImage.get(key) !== undefined);
    return { effect: 'applied', changes: served ? [deleteChange(tbl, key)] : [] };
  }
  return { effect: 'applied', changes: [putChange(tbl, value)] };
}

function applySnapshot(st: Statements, doc: SnapshotDoc, tbl: Table): ApplyResult {
  const ms = issuedMs(doc.issued);
  const previous = st.getSnapshot.get(tbl);
  // A snapshot older than the one in force is recorded but changes nothing, like a late update.
  if (previous !== undefined && previous.issuedMs > ms) return { effect: 'stale', changes: [] };
  st.clearTable.run(tbl);
  for (const [key, value] of snapshotEntries(doc)) {
    st.putObject.run({ tbl, key, value: JSON.stringify(value), issued: doc.issued, issuedMs: ms, instructionId: doc.id });
  }
  st.putSnapshot.run(tbl, doc.issued, ms, doc.id);
  for (const row of st.updatesAfter.all(tbl, ms)) {
    applyUpdate(st, JSON.parse(row.doc) as UpdateDoc, tbl);
  }
  if (tbl === 'clients') {
    for (const c of st.consumptionsAfter.all(ms)) consume(st, c.mac, c.image, c.atMs);
    reapplyJobOutcomes(st, ms);
  }
  return { effect: 'applied', changes: [replaceChange(st, tbl)] };
}

function snapshotEntries(doc: SnapshotDoc): Array<[string, unknown]> {
  switch (doc.kind) {
    case 'config': return [['', doc.config]];
    case 'clients': return doc.clients.map((c) => [c.mac, c]);
    case 'images': return doc.images.map((i) => [i.id, i]);
    case 'predefined-computers': return doc.computers.map((c) => [c.mac, c]);
  }
}

/**
 * A `once` boot was used: the client becomes `local` if it still holds that boot and was not
 * re-assigned after the boot happened. Keeps the client's `issued` and instruction id, so any
 * newer instruction for the machine still applies normally.
 */
export function consume(st: Statements, mac: string, image: string, atMs: number): FeedChange | null {
  const row = st.getObject.get('clients', mac);
  if (row === undefined || row.value === null || row.issuedMs > atMs) return null;
  const client = JSON.parse(row.value) as Client;
  const action: Action = client.action;
  if (action.type !== 'boot' || !action.once || action.image !== image) return null;
  const updated: Client = { ...client, action: { type: 'local' } };
  st.setObjectValue.run(JSON.stringify(updated), 'clients', mac);
  return { table: 'clients', op: 'put', client: updated };
}

function putChange(tbl: Table, value: unknown): FeedChange {
  switch (tbl) {
    case 'clients': return { table: 'clients', op: 'put', client: value as Client };
    case 'images': return { table: 'images', op: 'put', image: value as Image };
    case 'predefined': return { table: 'predefined', op: 'put', computer: value as Predefined };
    case 'config': return { table: 'config', op: 'replace', config: value as PxeConfig };
  }
}

function deleteChange(tbl: Table, key: string): FeedChange {
  switch (tbl) {
    case 'clients': return { table: 'clients', op: 'delete', mac: key };
    case 'images': return { table: 'images', op: 'delete', id: key };
    case 'predefined': return { table: 'predefined', op: 'delete', mac: key };
    case 'config': throw new Error('config cannot be deleted');
  }
}

function replaceChange(st: Statements, tbl: Table): FeedChange {
  const values = st.tableObjects.all(tbl).map((r) => JSON.parse(r.value as string) as unknown);
  switch (tbl) {
    case 'config': return { table: 'config', op: 'replace', config: values[0] as PxeConfig };
    case 'clients': return { table: 'clients', op: 'replace', clients: values as Client[] };
    case 'images': {
      // Images the site built itself fill in the ids the snapshot and its updates do not name.
      const built = st.builtImagesUnnamed.all().map((r) => JSON.parse(r.value) as Image);
      return { table: 'images', op: 'replace', images: [...(values as Image[]), ...built].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) };
    }
    case 'predefined': return { table: 'predefined', op: 'replace', computers: values as Predefined[] };
  }
}
