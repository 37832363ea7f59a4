// Building instructions (for the CLI and other services): an envelope around a payload, validated
// by parseSbs, and the conventional file name for it. Time and ids are passed in or drawn here,
// never inside the parser.
import { parseSbs } from './parse.ts';
import { newInstructionId } from './serialize.ts';
import { toUtc } from './time.ts';
import type { SbsDocument, SbsKind } from './types.ts';

export interface EnvelopeOptions {
  /** Instruction GUID; a fresh random one by default. */
  readonly id?: string;
  /** RFC 3339; now by default. */
  readonly issued?: string;
  readonly replicateTo?: readonly string[];
}

/**
 * A document of `kind` with `payload` (its kind's member(s), raw JSON values, e.g.
 * `{ client: { mac, action } }`), validated and normalised. Throws SbsError when invalid.
 */
export function buildDocument(kind: SbsKind, payload: Readonly<Record<string, unknown>>, opts: EnvelopeOptions = {}): SbsDocument {
  const raw = {
    sbs: 1,
    id: opts.id ?? newInstructionId(),
    kind,
    issued: opts.issued ?? new Date().toISOString(),
    ...(opts.replicateTo === undefined ? {} : { replicateTo: opts.replicateTo }),
    ...payload,
  };
  return parseSbs(JSON.stringify(raw));
}

/** `<issued, UTC, compact>-<kind>-<first 8 of id>.sbs`, e.g. `20261121T100000.000Z-client-77aa417a.sbs`. */
export function sbsFileName(doc: SbsDocument): string {
  const t = toUtc(doc.issued);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const stamp = `${p(t.year, 4)}${p(t.month)}${p(t.day)}T${p(t.hour)}${p(t.minute)}${p(t.second)}.${t.fraction.slice(0, 3).padEnd(3, '0')}Z`;
  return `${stamp}-${doc.kind}-${doc.id.slice(0, 8)}.sbs`;
}
