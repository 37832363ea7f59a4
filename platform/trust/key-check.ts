// The rules a key file (`[site] key_file`, `[[peers]] key_file`) must pass, at start and in
// `netboot config check`: only its owner may read it, and it must hold at least 32 bytes that look
// random. A good key is what `head -c 32 /dev/urandom | base64` or `openssl rand -hex 32` writes:
// hex or base64 text (surrounding whitespace ignored). Refused, each with the fix:
//   - readable or writable by group or others (mode & 0o077);
//   - not hex or base64 (a passphrase typed into the file), or base64 in one letter case only;
//   - fewer than 32 bytes once decoded;
//   - all one byte, a counting sequence, or a short block repeated;
//   - fewer than 16 distinct byte values (32 random bytes have about 30);
//   - nothing but printable text once decoded (a phrase in base64: 32 random bytes are all
//     printable about once in 10^13).
// Messages never quote key material.
import { readFileSync, statSync } from 'node:fs';
import { keyProblem, type Config } from '../runtime/config.ts';
import { NetbootError, errorMessage } from '../runtime/errors.ts';

export const MIN_KEY_BYTES = 32;
export const MIN_DISTINCT_BYTES = 16;

const fixNew = (path: string): string => `write a new one: head -c 32 /dev/urandom | base64 > ${path} && chmod 600 ${path} (and the same file on every peer)`;

/** Key bytes from the file's text (hex or base64, as before), or why the text is neither. */
export function decodeKeyText(text: string): Buffer | string {
  const t = text.trim();
  if (/^[0-9a-fA-F]+$/.test(t) && t.length % 2 === 0) return Buffer.from(t, 'hex');
  // base64 may wrap over lines (`base64` does at 76 columns); a space means words, not base64.
  const compact = t.split(/\r?\n/).map((line) => line.trim()).join('');
  if (compact === '' || !/^(?:[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2})$/.test(compact)) return 'is not hex or base64 text (a passphrase is not a key)';
  return Buffer.from(compact, 'base64');
}

/** Why the file's text is not a good key (decoding, then the bytes, then the text), or null. Pure. */
export function keyTextProblem(text: string): string | null {
  const key = decodeKeyText(text);
  if (typeof key === 'string') return key;
  const weak = keyWeakness(key);
  if (weak !== null) return weak;
  // base64 of random bytes mixes both cases (44 characters without one of them: about 1 in 10^9);
  // a lower-case word is valid base64 and decodes to bytes that can pass the checks above.
  const t = text.trim();
  const hex = /^[0-9a-fA-F]+$/.test(t) && t.length % 2 === 0;
  if (!hex && (!/[a-z]/.test(t) || !/[A-Z]/.test(t))) return 'is not base64 of random bytes (it lacks upper- or lower-case letters: a word or phrase?)';
  return null;
}

/** Why these key bytes are weak, or null for a key that looks random. Pure. */
export function keyWeakness(key: Uint8Array): string | null {
  if (key.length < MIN_KEY_BYTES) return `holds ${key.length} bytes of key, needs at least ${MIN_KEY_BYTES}`;
  const distinct = new Set(key).size;
  if (distinct === 1) return `is the same byte (0x${key[0]!.toString(16).padStart(2, '0')}) ${key.length} times`;
  const step = (key[1]! - key[0]! + 256) % 256;
  if (key.every((b, i) => i === 0 || (b - key[i - 1]! + 256) % 256 === step)) return 'is a counting sequence, not random bytes';
  for (let period = 1; period <= key.length / 2; period++) {
    if (key.every((b, i) => i < period || b === key[i - period])) return `is a ${period}-byte pattern repeated, not random bytes`;
  }
  if (distinct < MIN_DISTINCT_BYTES) return `has only ${distinct} distinct byte values (at least ${MIN_DISTINCT_BYTES}; random bytes have about 30 in 32)`;
  if (key.every((b) => (b >= 0x20 && b <= 0x7e) || b === 0x09 || b === 0x0a || b === 0x0d)) return 'decodes to printable text (a phrase in base64 or hex), not random bytes';
  return null;
}

/** Why a file of this mode may not hold a key, or null. */
export function modeProblem(mode: number): string | null {
  return (mode & 0o077) === 0 ? null : `is readable or writable by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')})`;
}

export type KeyFileResult = { readonly ok: true; readonly key: Buffer } | { readonly ok: false; readonly problems: readonly string[] };

/** Every problem with the key file at `path` (phrased to follow its name), each with its fix; or the key. */
export function checkKeyFile(path: string): KeyFileResult {
  let mode: number;
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) return { ok: false, problems: ['is not a regular file'] };
    mode = st.mode;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { ok: false, problems: [`cannot be read: ${errorMessage(err)}`] };
  }
  const problems: string[] = [];
  const loose = modeProblem(mode);
  if (loose !== null) problems.push(`${loose}; fix: chmod 600 ${path} (owned by the user netboot runs as)`);
  const key = decodeKeyText(text);
  const weak = keyTextProblem(text);
  if (weak !== null) problems.push(`${weak}; fix: ${fixNew(path)}`);
  return problems.length === 0 && typeof key !== 'string' ? { ok: true, key } : { ok: false, problems };
}

/** The key in `path`, or a NetbootError naming every problem and its fix (read once at start). */
export function readCheckedKey(path: string): Buffer {
  const r = checkKeyFile(path);
  if (r.ok) return r.key;
  const code = r.problems.some((p) => p.startsWith('cannot be read') || p.startsWith('is not a regular file')) ? 'PEER_KEY_UNREADABLE' : 'PEER_KEY_WEAK';
  throw new NetbootError(code, r.problems.map((p) => `key file ${path} ${p}`).join('\n'));
}

/** Every configured key file's problems, in the config's words (`config check`, `netboot run`). */
export function keyFileProblems(config: Config): string[] {
  const files: [string, string][] = [];
  if (config.site.keyFile !== null) files.push(['[site]', config.site.keyFile]);
  config.peers.forEach((p, n) => {
    if (p.keyFile !== null) files.push([`[[peers]] #${n + 1}`, p.keyFile]);
  });
  const problems: string[] = [];
  for (const [where, path] of files) {
    const r = checkKeyFile(path);
    if (!r.ok) for (const p of r.problems) problems.push(keyProblem(where, 'key_file', p, path));
  }
  return problems;
}
