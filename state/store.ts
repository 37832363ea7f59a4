// The Interface's durable state: SQLite (WAL) under the data folder. Everything an instruction
// changes is written in one transaction together with the instruction's id, so a crash at any
// point either has applied it completely or not at all, and re-applying it is a no-op.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { JOBS_SCHEMA, jobStatements } from './jobs-store.ts';

export type Table = 'config' | 'clients' | 'images' | 'predefined';

export interface ObjectRow {
  readonly tbl: Table;
  readonly key: string;
  /** JSON of the object, or null for a removal (a tombstone keeps its `issued`). */
  readonly value: string | null;
  readonly issued: string;
  readonly issuedMs: number;
  readonly instructionId: string;
}

export interface InstructionRow {
  readonly id: string;
  readonly kind: string;
  readonly tbl: Table;
  readonly issuedMs: number;
  readonly doc: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS instructions (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, tbl TEXT NOT NULL, obj_key TEXT,
  issued TEXT NOT NULL, issued_ms INTEGER NOT NULL, file TEXT, source TEXT NOT NULL,
  applied_at TEXT NOT NULL, effect TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS instructions_tbl ON instructions (tbl, issued_ms);
CREATE TABLE IF NOT EXISTS objects (
  tbl TEXT NOT NULL, obj_key TEXT NOT NULL, value TEXT, issued TEXT NOT NULL,
  issued_ms INTEGER NOT NULL, instruction_id TEXT NOT NULL, PRIMARY KEY (tbl, obj_key));
CREATE TABLE IF NOT EXISTS snapshots (
  tbl TEXT PRIMARY KEY, issued TEXT NOT NULL, issued_ms INTEGER NOT NULL, instruction_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, change TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  event_id TEXT PRIMARY KEY, body TEXT NOT NULL, created_at TEXT NOT NULL, delivered_at TEXT);
CREATE TABLE IF NOT EXISTS peer_outbox (
  peer_id TEXT NOT NULL, instruction_id TEXT NOT NULL, mac TEXT NOT NULL, issued_ms INTEGER NOT NULL,
  doc TEXT NOT NULL, queued_at_ms INTEGER NOT NULL, PRIMARY KEY (peer_id, instruction_id));
CREATE TABLE IF NOT EXISTS built_images (id TEXT PRIMARY KEY, value TEXT NOT NULL, built_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS consumptions (
  event_id TEXT PRIMARY KEY, mac TEXT NOT NULL, image TEXT NOT NULL, at_ms INTEGER NOT NULL);
`;

export type Db = Database.Database;

export function openStore(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, 'interface.sqlite'));
  db.pragma('journal_mode = WAL');
  // FULL: a commit survives power loss too, not only a process crash; batching keeps it cheap.
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  db.exec(JOBS_SCHEMA);
  return db;
}

/** Prepared statements for everything the Interface does; made once per database. */
export function statements(db: Db) {
  return {
    hasInstruction: db.prepare<[string], { effect: string }>('SELECT effect FROM instructions WHERE id = ?'),
    insertInstruction: db.prepare(
      `INSERT INTO instructions (id, kind, tbl, obj_key, issued, issued_ms, file, source, applied_at, effect, doc)
       VALUES (@id, @kind, @tbl, @key, @issued, @issuedMs, @file, @source, @appliedAt, @effect, @doc)`,
    ),
    updatesAfter: db.prepare<[string, number], InstructionRow>(
      `SELECT id, kind, tbl, issued_ms AS issuedMs, doc FROM instructions
       WHERE tbl = ? AND issued_ms > ? AND kind NOT IN ('config','clients','images','predefined-computers')
       ORDER BY issued_ms, rowid`,
    ),
    getObject: db.prepare<[string, string], ObjectRow>(
      'SELECT tbl, obj_key AS key, value, issued, issued_ms AS issuedMs, instruction_id AS instructionId FROM objects WHERE tbl = ? AND obj_key = ?',
    ),
    putObject: db.prepare(
      `INSERT INTO objects (tbl, obj_key, value, issued, issued_ms, instruction_id) VALUES (@tbl, @key, @value, @issued, @issuedMs, @instructionId)
       ON CONFLICT (tbl, obj_key) DO UPDATE SET value = excluded.value, issued = excluded.issued,
         issued_ms = excluded.issued_ms, instruction_id = excluded.instruction_id`,
    ),
    setObjectValue: db.prepare('UPDATE objects SET value = ? WHERE tbl = ? AND obj_key = ?'),
    clearTable: db.prepare('DELETE FROM objects WHERE tbl = ?'),
    allObjects: db.prepare<[], ObjectRow>(
      'SELECT tbl, obj_key AS key, value, issued, issued_ms AS issuedMs, instruction_id AS instructionId FROM objects ORDER BY tbl, obj_key',
    ),
    tableObjects: db.prepare<[string], ObjectRow>(
      'SELECT tbl, obj_key AS key, value, issued, issued_ms AS issuedMs, instruction_id AS instructionId FROM objects WHERE tbl = ? AND value IS NOT NULL ORDER BY obj_key',
    ),
    getSnapshot: db.prepare<[string], { issued: string; issuedMs: number; instructionId: string }>(
      'SELECT issued, issued_ms AS issuedMs, instruction_id AS instructionId FROM snapshots WHERE tbl = ?',
    ),
    allSnapshots: db.prepare<[], { tbl: Table; issued: string; instructionId: string }>(
      'SELECT tbl, issued, instruction_id AS instructionId FROM snapshots',
    ),
    putSnapshot: db.prepare(
      `INSERT INTO snapshots (tbl, issued, issued_ms, instruction_id) VALUES (?, ?, ?, ?)
       ON CONFLICT (tbl) DO UPDATE SET issued = excluded.issued, issued_ms = excluded.issued_ms, instruction_id = excluded.instruction_id`,
    ),
    appendChange: db.prepare('INSERT INTO changes (change) VALUES (?)'),
    changesAfter: db.prepare<[number], { seq: number; change: string }>('SELECT seq, change FROM changes WHERE seq > ? ORDER BY seq'),
    lastSeq: db.prepare<[], { seq: number | null }>('SELECT max(seq) AS seq FROM changes'),
    firstSeq: db.prepare<[], { seq: number | null }>('SELECT min(seq) AS seq FROM changes'),
    trimChanges: db.prepare('DELETE FROM changes WHERE seq <= ?'),
    insertEvent: db.prepare('INSERT OR IGNORE INTO events (event_id, body, created_at) VALUES (?, ?, ?)'),
    pendingEvents: db.prepare<[number], { eventId: string; body: string }>(
      'SELECT event_id AS eventId, body FROM events WHERE delivered_at IS NULL ORDER BY rowid LIMIT ?',
    ),
    markDelivered: db.prepare('UPDATE events SET delivered_at = ? WHERE event_id = ?'),
    insertConsumption: db.prepare('INSERT OR IGNORE INTO consumptions (event_id, mac, image, at_ms) VALUES (?, ?, ?, ?)'),
    // Images this site built itself (bootwiz): served unless a snapshot or update names the id.
    putBuiltImage: db.prepare(
      `INSERT INTO built_images (id, value, built_at) VALUES (?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET value = excluded.value, built_at = excluded.built_at`,
    ),
    getBuiltImage: db.prepare<[string], { value: string }>('SELECT value FROM built_images WHERE id = ?'),
    builtImagesUnnamed: db.prepare<[], { id: string; value: string }>(
      `SELECT b.id, b.value FROM built_images b
       WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.tbl = 'images' AND o.obj_key = b.id) ORDER BY b.id`,
    ),
    consumptionsAfter: db.prepare<[number], { mac: string; image: string; atMs: number }>(
      'SELECT mac, image, at_ms AS atMs FROM consumptions WHERE at_ms > ? ORDER BY at_ms',
    ),
    ...jobStatements(db),
  };
}

export type Statements = ReturnType<typeof statements>;
