// The durable outbox of job instructions for peer servers (SQLite, same database as the state, so
// a job is queued in the same transaction that applied it). Only active jobs travel: queuing a job
// drops older queued jobs for the same machine and peer, and a job superseded by a newer
// instruction for its machine is dropped instead of sent.
import { statements as stateStatements, type Db } from './store.ts';

export interface QueuedJob {
  readonly peerId: string;
  readonly instructionId: string;
  readonly mac: string;
  readonly issuedMs: number;
  readonly doc: string;
  readonly queuedAtMs: number;
}

export class PeerOutbox {
  private readonly st;
  private readonly state;

  constructor(db: Db) {
    this.state = stateStatements(db);
    this.st = {
      insert: db.prepare(`INSERT OR IGNORE INTO peer_outbox (peer_id, instruction_id, mac, issued_ms, doc, queued_at_ms) VALUES (?, ?, ?, ?, ?, ?)`),
      dropOlder: db.prepare('DELETE FROM peer_outbox WHERE peer_id = ? AND mac = ? AND issued_ms < ?'),
      newerQueued: db.prepare<[string, string, number], { n: number }>('SELECT count(*) AS n FROM peer_outbox WHERE peer_id = ? AND mac = ? AND issued_ms > ?'),
      next: db.prepare<[string, number], QueuedJob>(
        `SELECT peer_id AS peerId, instruction_id AS instructionId, mac, issued_ms AS issuedMs, doc, queued_at_ms AS queuedAtMs
         FROM peer_outbox WHERE peer_id = ? ORDER BY issued_ms, rowid LIMIT ?`,
      ),
      remove: db.prepare('DELETE FROM peer_outbox WHERE peer_id = ? AND instruction_id = ?'),
      count: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM peer_outbox WHERE peer_id = ?'),
    };
  }

  /** Call inside the transaction that applied the job. */
  enqueue(peerId: string, instructionId: string, mac: string, issuedMs: number, doc: string, nowMs: number): void {
    if (this.st.newerQueued.get(peerId, mac, issuedMs)!.n > 0) return;
    this.st.dropOlder.run(peerId, mac, issuedMs);
    this.st.insert.run(peerId, instructionId, mac, issuedMs, doc, nowMs);
  }

  /** The next jobs for a peer, oldest issued first, skipping (and dropping) superseded ones. */
  next(peerId: string, limit: number): QueuedJob[] {
    const out: QueuedJob[] = [];
    for (const job of this.st.next.all(peerId, limit)) {
      const row = this.state.getObject.get('clients', job.mac);
      if (row !== undefined && row.instructionId !== job.instructionId && row.issuedMs > job.issuedMs) {
        this.st.remove.run(peerId, job.instructionId); // superseded before delivery
        continue;
      }
      out.push(job);
    }
    return out;
  }

  remove(peerId: string, instructionId: string): void {
    this.st.remove.run(peerId, instructionId);
  }

  count(peerId: string): number {
    return this.st.count.get(peerId)!.n;
  }
}

/** One peer link as the Interface reports it (`GET /peers`): read by `netboot peers` and the status page. */
export interface PeerLinkStatus {
  readonly id: string;
  readonly address: string;
  readonly connected: boolean;
  readonly authenticated: boolean;
  readonly queued: number;
  readonly delivered: number;
  readonly lastLatencyMs: number | null;
  readonly lastError: string | null;
}
