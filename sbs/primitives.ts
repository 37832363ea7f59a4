// Checks for the spec's small value types: MACs, GUIDs, identifiers, display text and file
// paths. Each throws an SbsError naming the field.
import { SbsError } from './errors.ts';
import { normalizeGuid } from './guid.ts';
import { normalizeMac } from './mac.ts';

export const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Generic bound on a path's length. */
export const MAX_PATH_BYTES = 1024;
/** A boot file name goes in the BOOTP `file` field: 128 octets, NUL-terminated (RFC 951). */
export const MAX_BOOT_FILE_BYTES = 127;

// C0 controls, DEL and C1 controls: a newline in a label or a command line could start a new
// line in a generated boot script.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export function mac(value: string, path: string): string {
  const m = normalizeMac(value);
  if (m === null) throw new SbsError(path, 'must be a MAC address: six hex pairs separated by : or -');
  return m;
}

export function guid(value: string, path: string): string {
  const g = normalizeGuid(value);
  if (g === null) throw new SbsError(path, 'must be a GUID (8-4-4-4-12 hex digits)');
  return g;
}

/** An image or package id: the spec's pattern, minus `.` and `..` (they are folder names). */
export function identifier(value: string, path: string): string {
  if (!ID_PATTERN.test(value)) throw new SbsError(path, 'must match [A-Za-z0-9._-]{1,64}');
  if (value === '.' || value === '..') throw new SbsError(path, 'must not be . or ..');
  return value;
}

/** Text shown to people or passed on verbatim: no control characters; `nonEmpty` for names. */
export function text(value: string, path: string, nonEmpty: boolean): string {
  if (nonEmpty && value.trim() === '') throw new SbsError(path, 'must not be empty');
  if (CONTROL.test(value)) throw new SbsError(path, 'must not contain control characters');
  return value;
}

/** A relative file path: `/` separators, no `..` anywhere, no empty or `.` segments. */
export function relativePath(value: string, path: string, maxBytes = MAX_PATH_BYTES): string {
  if (value === '') throw new SbsError(path, 'must not be empty');
  if (value.includes('\u0000')) throw new SbsError(path, 'must not contain NUL');
  if (CONTROL.test(value)) throw new SbsError(path, 'must not contain control characters');
  if (value.includes('\\')) throw new SbsError(path, 'must use / as separator, not \\');
  if (value.startsWith('/')) throw new SbsError(path, 'must be relative (no leading /)');
  if (value.includes('..')) throw new SbsError(path, 'must not contain ..');
  if (value.split('/').some((s) => s === '' || s === '.')) throw new SbsError(path, 'must not have empty or . segments');
  if (Buffer.byteLength(value, 'utf8') > maxBytes) throw new SbsError(path, `too long (max ${maxBytes} bytes)`);
  return value;
}
