// The replication model's small records: refs (a package's current version) and statuses (how
// far a server is with a package), with their validation for when they arrive from a peer.
import { isDigest, isPackageId } from './digest.ts';
import { isPackageKind, type PackageKind } from './manifest.ts';

export interface PackageRef {
  readonly package: string;
  /** Set by the owner, increasing with every change of the package. */
  readonly seq: number;
  /** The manifest digest, or null: a tombstone (the package was deleted). */
  readonly digest: string | null;
  readonly owner: string;
  readonly kind: PackageKind;
  readonly updatedAt: string;
}

export const STATUS_STATES = ['absent', 'syncing', 'ready', 'invalid', 'deleting'] as const;
export type StatusState = (typeof STATUS_STATES)[number];

export interface PackageStatus {
  readonly server: string;
  readonly package: string;
  readonly state: StatusState;
  /** The ref this status is about (the target while syncing, the held version when ready). */
  readonly seq: number;
  readonly digest: string | null;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly chunksDone: number;
  readonly chunksTotal: number;
  /** Why a package is invalid, or the last fetch problem while syncing. */
  readonly reason: string | null;
  readonly updatedAt: string;
}

const SERVER_ID = /^[A-Za-z0-9._-]{1,64}$/;

export function isServerId(v: unknown): v is string {
  return typeof v === 'string' && SERVER_ID.test(v);
}

/** Ref order: higher seq wins; the owner id breaks a tie, so two servers converge on one ref. */
export function refIsNewer(candidate: Pick<PackageRef, 'seq' | 'owner'>, current: Pick<PackageRef, 'seq' | 'owner'> | null): boolean {
  if (current === null) return true;
  if (candidate.seq !== current.seq) return candidate.seq > current.seq;
  return candidate.owner > current.owner;
}

const nonNegInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export function checkRef(v: unknown): PackageRef | null {
  const r = v as Record<string, unknown>;
  if (typeof r !== 'object' || r === null) return null;
  if (!isPackageId(r.package) || !nonNegInt(r.seq) || r.seq === 0 || !isServerId(r.owner) || !isPackageKind(r.kind)) return null;
  if (r.digest !== null && !isDigest(r.digest)) return null;
  if (typeof r.updatedAt !== 'string') return null;
  return { package: r.package, seq: r.seq, digest: r.digest, owner: r.owner, kind: r.kind, updatedAt: r.updatedAt };
}

export function checkStatus(v: unknown): PackageStatus | null {
  const s = v as Record<string, unknown>;
  if (typeof s !== 'object' || s === null) return null;
  if (!isServerId(s.server) || !isPackageId(s.package) || !(STATUS_STATES as readonly unknown[]).includes(s.state)) return null;
  if (!nonNegInt(s.seq) || (s.digest !== null && !isDigest(s.digest))) return null;
  if (![s.bytesDone, s.bytesTotal, s.chunksDone, s.chunksTotal].every(nonNegInt)) return null;
  if (s.reason !== null && typeof s.reason !== 'string') return null;
  if (typeof s.updatedAt !== 'string') return null;
  return s as unknown as PackageStatus;
}
