// serializeSbs: a document out as pretty JSON. The text goes through parseSbs before it is
// returned, so what comes out is always a valid, normalised document in canonical member order,
// and parseSbs(serializeSbs(d)) deep-equals d for every d that parseSbs produced.
import { randomUUID } from 'node:crypto';
import { parseSbs } from './parse.ts';
import type { SbsDocument } from './types.ts';

export { normalizeMac } from './mac.ts';

/** Throws SbsError if `doc` is not a valid document (e.g. one built by hand). */
export function serializeSbs(doc: SbsDocument): string {
  return `${JSON.stringify(parseSbs(JSON.stringify(doc)), null, 2)}\n`;
}

/** A fresh instruction id: a random (version 4) GUID, lower case. */
export function newInstructionId(): string {
  return randomUUID();
}
