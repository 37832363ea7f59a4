// A strict RFC 8259 JSON reader. Stricter than JSON.parse where that matters for instructions:
// duplicate member names are rejected (RFC 8259 §4 leaves their meaning open), lone surrogate
// escapes are rejected, nesting is bounded, and every error is an SbsError with a line and column.
// Objects come back with a null prototype, so a member named `__proto__` is just a name.
import { DOCUMENT, SbsError } from './errors.ts';
import { childPath, indexPath } from './path.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export const MAX_DEPTH = 32;

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The text of a file: strict UTF-8, one leading BOM dropped (strings too). */
export function decodeUtf8(input: unknown): string {
  if (typeof input === 'string') return input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  if (!(input instanceof Uint8Array)) throw new SbsError(DOCUMENT, 'must be a Buffer or a string');
  try {
    return UTF8.decode(input); // drops one leading BOM
  } catch {
    throw new SbsError(DOCUMENT, 'not valid UTF-8');
  }
}

export function parseJson(text: string): JsonValue {
  const reader = new Reader(text);
  reader.skipSpace();
  const value = reader.value('', 0);
  reader.skipSpace();
  if (reader.pos < text.length) reader.fail('unexpected text after the document');
  return value;
}

class Reader {
  pos = 0;
  constructor(private readonly text: string) {}

  fail(what: string, at = this.pos): never {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at && i < this.text.length; i++) {
      if (this.text.charCodeAt(i) === 10) {
        line++;
        lineStart = i + 1;
      }
    }
    throw new SbsError(DOCUMENT, `not valid JSON: ${what} at line ${line} column ${at - lineStart + 1}`);
  }

  skipSpace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      this.pos++;
    }
  }

  value(path: string, depth: number): JsonValue {
    const c = this.text[this.pos];
    if (c === undefined) this.fail('unexpected end of input');
    if (c === '{' || c === '[') {
      if (depth >= MAX_DEPTH) throw new SbsError(path === '' ? DOCUMENT : path, `nested too deeply (max ${MAX_DEPTH} levels)`);
      return c === '{' ? this.object(path, depth + 1) : this.array(path, depth + 1);
    }
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    this.fail(`unexpected ${describe(c)}`);
  }

  object(path: string, depth: number): JsonObject {
    const obj = Object.create(null) as JsonObject;
    this.pos++;
    this.skipSpace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return obj;
    }
    for (;;) {
      if (this.text[this.pos] !== '"') this.fail(this.pos >= this.text.length ? 'unexpected end of input' : 'expected a member name');
      const keyAt = this.pos;
      const key = this.string();
      const keyPath = childPath(path, key);
      if (Object.hasOwn(obj, key)) {
        throw new SbsError(keyPath, `duplicate field (line ${this.lineOf(keyAt)})`);
      }
      this.skipSpace();
      if (this.text[this.pos] !== ':') this.fail("expected ':'");
      this.pos++;
      this.skipSpace();
      obj[key] = this.value(keyPath, depth);
      this.skipSpace();
      const c = this.text[this.pos];
      this.pos++;
      if (c === '}') return obj;
      if (c !== ',') this.fail(c === undefined ? 'unexpected end of input' : "expected ',' or '}'", this.pos - 1);
      this.skipSpace();
    }
  }

  array(path: string, depth: number): JsonValue[] {
    const arr: JsonValue[] = [];
    this.pos++;
    this.skipSpace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return arr;
    }
    for (;;) {
      arr.push(this.value(indexPath(path, arr.length), depth));
      this.skipSpace();
      const c = this.text[this.pos];
      this.pos++;
      if (c === ']') return arr;
      if (c !== ',') this.fail(c === undefined ? 'unexpected end of input' : "expected ',' or ']'", this.pos - 1);
      this.skipSpace();
    }
  }

  string(): string {
    const start = this.pos;
    this.pos++;
    let out = '';
    let runStart = this.pos;
    for (;;) {
      const code = this.text.charCodeAt(this.pos);
      if (Number.isNaN(code)) this.fail('unterminated string', start);
      if (code === 0x22) {
        out += this.text.slice(runStart, this.pos);
        this.pos++;
        break;
      }
      if (code < 0x20) this.fail('control character in a string (escape it)');
      if (code !== 0x5c) {
        this.pos++;
        continue;
      }
      out += this.text.slice(runStart, this.pos);
      const e = this.text[this.pos + 1];
      if (e === 'u') {
        const hex = this.text.slice(this.pos + 2, this.pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape');
        out += String.fromCharCode(parseInt(hex, 16));
        this.pos += 6;
      } else if (e !== undefined && ESCAPES[e] !== undefined) {
        out += ESCAPES[e];
        this.pos += 2;
      } else {
        this.fail('bad escape');
      }
      runStart = this.pos;
    }
    if (hasLoneSurrogate(out)) this.fail('string is not valid Unicode (lone surrogate)', start);
    return out;
  }

  number(): number {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text);
    if (m === null) this.fail('bad number');
    this.pos += m[0].length;
    const n = Number(m[0]);
    return n === 0 ? 0 : n; // -0 reads as 0, so that a round trip compares equal
  }

  lineOf(at: number): number {
    let line = 1;
    for (let i = 0; i < at; i++) if (this.text.charCodeAt(i) === 10) line++;
    return line;
  }
}

function describe(c: string): string {
  const code = c.codePointAt(0)!;
  return code < 0x20 || code > 0x7e ? `character U+${code.toString(16).toUpperCase().padStart(4, '0')}` : `'${c}'`;
}

export function hasLoneSurrogate(s: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}
