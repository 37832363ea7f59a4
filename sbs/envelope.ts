// The envelope every document carries (spec "Envelope"): sbs, id, kind, issued, and replicateTo
// on the kinds that may be replicated.
import { SbsError } from './errors.ts';
import type { Fields } from './fields.ts';
import { readPeerAddress } from './host.ts';
import { guid } from './primitives.ts';
import { rfc3339Problem } from './time.ts';
import { KINDS, type SbsKind } from './types.ts';

export const ENVELOPE_FIELDS = ['sbs', 'id', 'kind', 'issued'];
export const REPLICATED_KINDS: readonly SbsKind[] = ['client', 'client-remove'];

export interface Envelope {
  readonly sbs: 1;
  readonly id: string;
  readonly kind: SbsKind;
  readonly issued: string;
}

export function readEnvelope(f: Fields): Envelope {
  const version = f.raw('sbs');
  if (version === undefined) throw new SbsError('sbs', 'required');
  if (version !== 1) throw new SbsError('sbs', 'must be 1');
  const id = guid(f.string('id'), 'id');
  const kind = f.string('kind');
  if (!(KINDS as readonly string[]).includes(kind)) throw new SbsError('kind', `unknown kind (known: ${KINDS.join(', ')})`);
  const issued = f.string('issued');
  const problem = rfc3339Problem(issued);
  if (problem !== null) throw new SbsError('issued', problem);
  return { sbs: 1, id, kind: kind as SbsKind, issued };
}

/** `replicateTo`, normalised; undefined when absent. Refused on kinds that are not replicated. */
export function readReplicateTo(f: Fields, kind: SbsKind): string[] | undefined {
  if (!f.has('replicateTo')) return undefined;
  if (!REPLICATED_KINDS.includes(kind)) throw new SbsError('replicateTo', 'only allowed on client and client-remove');
  const peers = f.array('replicateTo', (v, path) => {
    if (typeof v !== 'string') throw new SbsError(path, 'must be a string');
    const r = readPeerAddress(v);
    if ('problem' in r) throw new SbsError(path, r.problem);
    return r.address;
  });
  peers.forEach((p, i) => {
    const first = peers.indexOf(p);
    if (first !== i) throw new SbsError(`replicateTo[${i}]`, `duplicate of replicateTo[${first}]`);
  });
  return peers;
}
