// Messages on the Interface's local state feed (ws on TCP 490, path /feed). JSON text frames.
//
// subscriber -> interface: { type: 'subscribe', since?: number, jobs?: true } (since: last seq it applied)
// interface -> subscriber: { type: 'snapshot', seq, state }         (full state as of seq)
//                          { type: 'change', seq, change }          (one applied change, seq+1 each)
// subscriber -> interface: { type: 'event', eventId, event }        (e.g. pxe-booted; eventId unique)
// interface -> subscriber: { type: 'event-ack', eventId }           (persisted; safe to forget)
//
// A subscriber that reconnects with `since` gets every change after it, or a new snapshot when
// the Interface no longer holds them. Changes are sent strictly in seq order with no gaps.
import type { Client, Image, JobTask, Predefined, PxeConfig } from '../sbs/types.ts';

/**
 * An imaging job while it is active (pending or running): what the PXE server needs to offer the
 * job's preboot and to put its secret on that machine's kernel command line. Ended jobs leave the
 * feed. The feed is local (loopback) only, so the secret may travel on it.
 */
export interface FeedJob {
  readonly jobId: string;
  readonly mac: string;
  readonly task: JobTask;
  readonly preboot: string;
  readonly state: 'pending' | 'running';
  /** The machine fetched the preboot's boot program for this job (consumed like `once`). */
  readonly booted: boolean;
  /** A newer job or a job-cancel came while it ran: the agent is told at its next check. */
  readonly cancelRequested: boolean;
  /** 64 hex digits (32 random bytes), made when the job was applied. */
  readonly secret: string;
}

export interface FeedState {
  readonly config: PxeConfig | null;
  /** null until a `clients` snapshot has been applied. */
  readonly clients: readonly Client[] | null;
  readonly images: readonly Image[] | null;
  readonly predefined: readonly Predefined[] | null;
  /** Active imaging jobs, by jobId. Absent (an older Interface) = none. */
  readonly jobs?: readonly FeedJob[];
}

export type FeedChange =
  | { readonly table: 'config'; readonly op: 'replace'; readonly config: PxeConfig }
  | { readonly table: 'clients'; readonly op: 'replace'; readonly clients: readonly Client[] }
  | { readonly table: 'clients'; readonly op: 'put'; readonly client: Client }
  | { readonly table: 'clients'; readonly op: 'delete'; readonly mac: string }
  | { readonly table: 'images'; readonly op: 'replace'; readonly images: readonly Image[] }
  | { readonly table: 'images'; readonly op: 'put'; readonly image: Image }
  | { readonly table: 'images'; readonly op: 'delete'; readonly id: string }
  | { readonly table: 'predefined'; readonly op: 'replace'; readonly computers: readonly Predefined[] }
  | { readonly table: 'predefined'; readonly op: 'put'; readonly computer: Predefined }
  | { readonly table: 'predefined'; readonly op: 'delete'; readonly mac: string }
  | { readonly table: 'jobs'; readonly op: 'put'; readonly job: FeedJob }
  | { readonly table: 'jobs'; readonly op: 'delete'; readonly jobId: string };

/** Reported by the PXE server when a `once` boot was consumed (the machine fetched its boot program). */
export interface PxeBootedEvent {
  readonly kind: 'pxe-booted';
  readonly mac: string;
  readonly image: string;
  /** RFC 3339 time the boot program was fetched. */
  readonly at: string;
  /** Set when the boot was an imaging job's preboot: that job's boot is consumed, not the client's. */
  readonly jobId?: string;
}

export type FeedEvent = PxeBootedEvent;

export type ToInterface =
  // jobs: the subscriber understands the `jobs` table. Without it (a subscriber older than imaging
  // jobs) it never sees one: where a batch of changes touches jobs, it gets a snapshot instead.
  | { readonly type: 'subscribe'; readonly since?: number; readonly jobs?: boolean }
  | { readonly type: 'event'; readonly eventId: string; readonly event: FeedEvent };

export type FromInterface =
  | { readonly type: 'snapshot'; readonly seq: number; readonly state: FeedState }
  | { readonly type: 'change'; readonly seq: number; readonly change: FeedChange }
  | { readonly type: 'event-ack'; readonly eventId: string }
  | { readonly type: 'error'; readonly message: string };

/** The state as a subscriber that does not know the `jobs` table sees it. */
export function withoutJobs(state: FeedState): FeedState {
  if (state.jobs === undefined) return state;
  const { jobs: _jobs, ...rest } = state;
  return rest;
}

/** Applies one change to a state value (pure); used by every subscriber and by the Interface. */
export function applyChange(state: FeedState, change: FeedChange): FeedState {
  switch (change.table) {
    case 'config':
      return { ...state, config: change.config };
    case 'clients':
      if (change.op === 'replace') return { ...state, clients: change.clients };
      return { ...state, clients: upsert(state.clients ?? [], (c) => c.mac, change.op === 'put' ? change.client : null, change.op === 'delete' ? change.mac : change.client.mac) };
    case 'images':
      if (change.op === 'replace') return { ...state, images: change.images };
      return { ...state, images: upsert(state.images ?? [], (i) => i.id, change.op === 'put' ? change.image : null, change.op === 'delete' ? change.id : change.image.id) };
    case 'predefined':
      if (change.op === 'replace') return { ...state, predefined: change.computers };
      return { ...state, predefined: upsert(state.predefined ?? [], (c) => c.mac, change.op === 'put' ? change.computer : null, change.op === 'delete' ? change.mac : change.computer.mac) };
    case 'jobs':
      return { ...state, jobs: upsert(state.jobs ?? [], (j) => j.jobId, change.op === 'put' ? change.job : null, change.op === 'delete' ? change.jobId : change.job.jobId) };
  }
}

function upsert<T>(list: readonly T[], key: (t: T) => string, value: T | null, k: string): readonly T[] {
  const rest = list.filter((t) => key(t) !== k);
  return value === null ? rest : [...rest, value];
}

export const EMPTY_STATE: FeedState = { config: null, clients: null, images: null, predefined: null };

/** The spec's rule: the PXE server answers only once it holds config, clients and images. */
export function isComplete(state: FeedState): boolean {
  return state.config !== null && state.clients !== null && state.images !== null;
}
