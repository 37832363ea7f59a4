// Reading one JSON object of a document: its type, its allowed members (unknown `x-` members are
// ignored, any other unknown member is refused), and typed member getters that name the field
// in their error.
import { SbsError } from './errors.ts';
import type { JsonObject, JsonValue } from './json.ts';
import { childPath, indexPath } from './path.ts';

export function isExtension(key: string): boolean {
  return key.startsWith('x-');
}

export function asObject(value: JsonValue | undefined, path: string): JsonObject {
  if (value === undefined) throw new SbsError(path, 'required');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SbsError(path, 'must be an object');
  return value;
}

export function asArray(value: JsonValue | undefined, path: string): JsonValue[] {
  if (value === undefined) throw new SbsError(path, 'required');
  if (!Array.isArray(value)) throw new SbsError(path, 'must be an array');
  return value;
}

/**
 * One object being read. `allowed` lists its members; `elsewhere` maps members that belong to a
 * sibling variant (another action or image type) to the reason they are refused here.
 */
export class Fields {
  constructor(
    readonly obj: JsonObject,
    readonly path: string,
  ) {}

  static of(value: JsonValue | undefined, path: string): Fields {
    return new Fields(asObject(value, path), path);
  }

  at(key: string): string {
    return childPath(this.path, key);
  }

  /** Refuses members not in `allowed`, in document order, except `x-` ones. */
  only(allowed: readonly string[], notHere: (key: string) => string | undefined = () => undefined): this {
    for (const key of Object.keys(this.obj)) {
      if (allowed.includes(key) || isExtension(key)) continue;
      throw new SbsError(this.at(key), notHere(key) ?? 'unknown field');
    }
    return this;
  }

  has(key: string): boolean {
    return Object.hasOwn(this.obj, key);
  }

  raw(key: string): JsonValue | undefined {
    return this.has(key) ? this.obj[key] : undefined;
  }

  string(key: string): string {
    const v = this.raw(key);
    if (v === undefined) throw new SbsError(this.at(key), 'required');
    if (typeof v !== 'string') throw new SbsError(this.at(key), 'must be a string');
    return v;
  }

  optionalString(key: string): string | undefined {
    return this.has(key) ? this.string(key) : undefined;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') throw new SbsError(this.at(key), 'must be true or false');
    return v;
  }

  integer(key: string, min: number, max: number, fallback?: number): number {
    const v = this.raw(key);
    if (v === undefined) {
      if (fallback === undefined) throw new SbsError(this.at(key), 'required');
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new SbsError(this.at(key), `must be an integer from ${min} to ${max}`);
    }
    return v;
  }

  object(key: string): Fields {
    return Fields.of(this.raw(key), this.at(key));
  }

  /** An array member, each element read by `read` with its own path. */
  array<T>(key: string, read: (value: JsonValue, path: string) => T): T[] {
    const path = this.at(key);
    return asArray(this.raw(key), path).map((v, i) => read(v, indexPath(path, i)));
  }
}

/** Refuses a second element with the same key, naming both positions. */
export function refuseDuplicates<T>(items: readonly T[], listPath: string, keyOf: (item: T) => string, keyField: string): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const k = keyOf(item);
    const first = seen.get(k);
    if (first !== undefined) {
      throw new SbsError(childPath(indexPath(listPath, i), keyField), `duplicate of ${indexPath(listPath, first)}`);
    }
    seen.set(k, i);
  });
}
