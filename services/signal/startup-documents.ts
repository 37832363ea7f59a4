// The management server's start-up answer turned into the four start-up SBS files
// (../../../shared/spec/sbs-v1.md, "The management server's side"). Pure: no files, sockets or
// clock. Every document is validated by the SBS parser, so an answer the Interface would reject
// is refused here, whole, before anything is written.
import { randomInt } from 'node:crypto';
import { NetbootError } from '../../platform/runtime/errors.ts';
import { SbsError } from '../../sbs/errors.ts';
import { parseSbs } from '../../sbs/parse.ts';
import { serializeSbs } from '../../sbs/serialize.ts';
import type { SbsKind } from '../../sbs/types.ts';

/** The answer's members, and the SBS kind and payload member each becomes. */
const MEMBERS = [
  { member: 'config', kind: 'config', payload: 'config', shape: 'object' },
  { member: 'clients', kind: 'clients', payload: 'clients', shape: 'array' },
  { member: 'images', kind: 'images', payload: 'images', shape: 'array' },
  { member: 'predefinedComputers', kind: 'predefined-computers', payload: 'computers', shape: 'array' },
] as const;

export class StartupAnswerError extends NetbootError {
  constructor(message: string) {
    super('MANAGEMENT_BAD_ANSWER', message);
  }
}

export interface StartupFile {
  readonly name: string;
  readonly kind: SbsKind;
  /** The serialized, validated document. */
  readonly text: string;
}

export interface StartupStamp {
  /** RFC 3339; the same for all four documents. */
  readonly issued: string;
  readonly newId: () => string;
  /** The spec's NNNNNNNNNN: a random 10-digit number. */
  readonly randomDigits?: () => string;
}

export function fileNameFor(kind: SbsKind, randomDigits: () => string): string {
  switch (kind) {
    case 'config':
      return 'initialPXEConfigPath.sbs';
    case 'clients':
      return `${randomDigits()}-client.sbs`;
    case 'images':
      return `${randomDigits()}-image.sbs`;
    case 'predefined-computers':
      return 'PredefinedComputers.sbs';
    default:
      throw new Error(`${kind} is not a start-up kind`);
  }
}

export function tenDigits(): string {
  return String(randomInt(0, 10_000_000_000)).padStart(10, '0');
}

/** Throws StartupAnswerError naming the first problem (with its place in the answer). */
export function buildStartupFiles(answer: unknown, stamp: StartupStamp): StartupFile[] {
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) throw new StartupAnswerError('answer must be a JSON object');
  const body = answer as Record<string, unknown>;
  const known: readonly string[] = MEMBERS.map((m) => m.member);
  for (const key of Object.keys(body)) {
    if (!known.includes(key) && !key.startsWith('x-')) throw new StartupAnswerError(`${key}: unknown field (known: ${known.join(', ')})`);
  }
  return MEMBERS.map(({ member, kind, payload, shape }) => {
    const value = body[member];
    if (value === undefined) throw new StartupAnswerError(`${member}: required`);
    if (shape === 'array' ? !Array.isArray(value) : typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new StartupAnswerError(`${member}: must be ${shape === 'array' ? 'an array' : 'an object'}`);
    }
    const raw = { sbs: 1, id: stamp.newId(), kind, issued: stamp.issued, [payload]: value };
    let text: string;
    try {
      text = serializeSbs(parseSbs(JSON.stringify(raw)));
    } catch (err) {
      if (!(err instanceof SbsError)) throw err;
      const field = err.field === payload || err.field.startsWith(`${payload}.`) || err.field.startsWith(`${payload}[`) ? member + err.field.slice(payload.length) : err.field;
      throw new StartupAnswerError(`${field}: ${err.problem}`);
    }
    return { name: fileNameFor(kind, stamp.randomDigits ?? tenDigits), kind, text };
  });
}
