// Messages of the package feed (/pkg-feed on TCP 490), carried inside peer-auth sealed frames
// after the challenge-response handshake:
//   replica -> server  { type:'subscribe', epoch, cursor }   what it has seen of this server
//   server -> replica  { type:'records', epoch, cursor, records }
// The first `records` answers the subscribe with everything after the cursor (everything if the
// epoch differs: the server's database was recreated); later ones carry each change as it
// commits. A record is a ref (any package this server knows) or this server's own status.
import { ProtocolError } from '../platform/runtime/errors.ts';
import { checkRef, checkStatus } from './model.ts';
import type { FeedRecord } from './package-db.ts';

export interface SubscribeMessage {
  readonly type: 'subscribe';
  readonly epoch: string | null;
  readonly cursor: number;
}

export interface RecordsMessage {
  readonly type: 'records';
  readonly epoch: string;
  readonly cursor: number;
  readonly records: readonly FeedRecord[];
}

function fail(message: string): never {
  throw new ProtocolError('pkg-feed', message);
}

function parse(body: string): Record<string, unknown> {
  try {
    const v = JSON.parse(body) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  fail('not a JSON object');
}

export function decodeSubscribe(body: string): SubscribeMessage {
  const m = parse(body);
  if (m.type !== 'subscribe') fail(`expected subscribe, got ${JSON.stringify(m.type)}`);
  if (m.epoch !== null && (typeof m.epoch !== 'string' || m.epoch.length > 64)) fail('subscribe: bad epoch');
  if (typeof m.cursor !== 'number' || !Number.isSafeInteger(m.cursor) || m.cursor < 0) fail('subscribe: bad cursor');
  return { type: 'subscribe', epoch: m.epoch, cursor: m.cursor };
}

export function decodeRecords(body: string): RecordsMessage {
  const m = parse(body);
  if (m.type !== 'records') fail(`expected records, got ${JSON.stringify(m.type)}`);
  if (typeof m.epoch !== 'string' || typeof m.cursor !== 'number' || !Number.isSafeInteger(m.cursor) || !Array.isArray(m.records)) fail('records: malformed');
  const records = m.records.map((r: unknown, i: number): FeedRecord => {
    const rec = r as Record<string, unknown>;
    const logSeq = rec?.logSeq;
    if (typeof logSeq !== 'number' || !Number.isSafeInteger(logSeq)) fail(`records[${i}]: bad logSeq`);
    if (rec.type === 'ref') {
      const ref = checkRef(rec.ref);
      if (ref === null) fail(`records[${i}]: bad ref`);
      return { type: 'ref', logSeq, ref };
    }
    if (rec.type === 'status') {
      const status = checkStatus(rec.status);
      if (status === null) fail(`records[${i}]: bad status`);
      return { type: 'status', logSeq, status };
    }
    fail(`records[${i}]: unknown type`);
  });
  return { type: 'records', epoch: m.epoch, cursor: m.cursor, records };
}
