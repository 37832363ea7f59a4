// The one validated configuration. TOML on disk; every key is one entry of config-schema.ts
// (name, type, default, range, doc). Every problem is listed at once, in the file's own key names
// with the value that was given; nothing is corrected silently; unknown sections and keys are
// errors. Settings that contradict each other are refused, and ones that are legal but likely a
// mistake are warnings (config-rules.ts). The result is deep-frozen.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { crossCheck, keyProblem, showValue } from './config-rules.ts';
import { SCHEMA, PEERS, ipv4ToInt, maskOf, type FieldSpec, type TablesSpec, type TextSpec } from './config-schema.ts';
import type { Config } from './config-types.ts';
import { ConfigError, errorMessage } from './errors.ts';

export type { Config, PeerConfig, SubnetConfig } from './config-types.ts';
export { SEND_PATHS, IO_PATHS, type SendPath, type IoPath, isUnicast, ipv4ToInt, intToIpv4 } from './config-schema.ts';

export { keyProblem, showValue } from './config-rules.ts';

export const DEFAULT_CONFIG_PATH = '/etc/netboot/netboot.toml';

type Raw = Record<string, unknown>;

class Reader {
  readonly problems: string[] = [];
  /** `section.key` (or `peers.3.key`) of every key given in the file; `failed`: those refused. */
  readonly given = new Set<string>();
  readonly failed = new Set<string>();
  /** Each built `[[...]]` entry's number in the file (#1 is the first), for messages about it. */
  readonly numbers = new WeakMap<object, number>();
  constructor(private readonly baseDir: string) {}

  /** The table `root[name]`, after checking it is one and holds only keys of `specs`. */
  table(root: Raw, name: string, where: string, specs: Readonly<Record<string, { key: string }>>): Raw {
    const value = root[name];
    if (value === undefined) return {};
    if (!isTable(value)) {
      this.problems.push(`${where}: must be a table (got ${showValue(value)})`);
      return {};
    }
    this.unknownKeys(value, where, specs);
    return value;
  }

  unknownKeys(t: Raw, where: string, specs: Readonly<Record<string, { key: string }>>): void {
    const known = Object.values(specs).map((s) => s.key);
    for (const key of Object.keys(t)) {
      if (!known.includes(key)) this.problems.push(keyProblem(where, key, `unknown key (known: ${known.join(', ')})`, t[key]));
    }
  }

  /** Reads every property of `specs` from `t`; a refused value falls back to its default. */
  fields(t: Raw, where: string, id: string, specs: Readonly<Record<string, FieldSpec>>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [prop, spec] of Object.entries(specs)) {
      if (t[spec.key] !== undefined) this.given.add(`${id}.${spec.key}`);
      const problem = (text: string): void => {
        this.failed.add(`${id}.${spec.key}`);
        this.problems.push(keyProblem(where, spec.key, text, t[spec.key]));
      };
      out[prop] = this.field(t[spec.key], spec, out, problem);
    }
    return out;
  }

  private field(v: unknown, spec: FieldSpec, earlier: Record<string, unknown>, problem: (text: string) => void): unknown {
    const fallback = typeof spec.default === 'function' ? spec.default(earlier) : spec.default;
    if (v === undefined || (v === '' && spec.type !== 'enum' && fallback === null)) return fallback;
    switch (spec.type) {
      case 'int': {
        const n = typeof v === 'bigint' ? Number(v) : v;
        if (typeof n === 'number' && Number.isInteger(n) && n >= spec.min && n <= spec.max) return n;
        problem(`must be an integer from ${spec.min} to ${spec.max}`);
        return fallback;
      }
      case 'bool':
        if (typeof v === 'boolean') return v;
        problem('must be true or false');
        return fallback;
      case 'enum':
        if (typeof v === 'string' && spec.values.includes(v)) return v;
        problem(`must be one of ${spec.values.join(', ')}`);
        return fallback;
      default:
        return this.text(v, spec, problem) ?? fallback;
    }
  }

  private text(v: unknown, spec: TextSpec, problem: (text: string) => void): string | undefined {
    const bad = typeof v !== 'string' ? 'must be a string' : v === '' ? 'must be a non-empty string'
      : spec.type === 'ipv4' && !isIPv4(v) ? 'must be an IPv4 address'
      : spec.type === 'url' ? urlProblem(v) : null;
    const worse = bad ?? spec.check?.(v as string) ?? null;
    if (worse !== null || typeof v !== 'string') {
      problem(worse ?? 'must be a string');
      return undefined;
    }
    if (spec.type === 'path') return isAbsolute(v) ? v : resolve(this.baseDir, v);
    if (spec.type === 'url') return v.replace(/\/+$/, '');
    return v;
  }

  /** An array of tables: each entry's keys, the required ones, then the spec's own build. */
  tables<E>(value: unknown, where: string, id: string, spec: TablesSpec<E>): E[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      this.problems.push(`${where}: must be an array of tables (got ${showValue(value)})`);
      return [];
    }
    const out: E[] = [];
    value.forEach((entry: unknown, n) => {
      const at = `${where} #${n + 1}`;
      if (!isTable(entry)) return void this.problems.push(`${at}: must be a table (got ${showValue(entry)})`);
      this.unknownKeys(entry, at, spec.entry);
      for (const [key, example] of Object.entries(spec.required)) {
        if (entry[key] === undefined || entry[key] === '') this.problems.push(keyProblem(at, key, `required (e.g. ${key} = ${example})`));
      }
      const values = this.fields(entry, at, `${id}.${n}`, spec.entry);
      // Built without its required keys it would mean nothing; with another key refused it is
      // still built (that key at its default), so the rules across entries see it too.
      if (Object.keys(spec.required).some((key) => values[key] === null || this.failed.has(`${id}.${n}.${key}`))) return;
      const built = spec.build(values);
      if (isTable(built) && 'problem' in built && typeof built.problem === 'string') {
        this.failed.add(`${id}.${n}.${built.key as string}`);
        return void this.problems.push(keyProblem(at, built.key as string, built.problem, entry[built.key as string]));
      }
      this.numbers.set(built as object, n + 1);
      out.push(built as E);
    });
    return out;
  }
}

function urlProblem(v: string): string | null {
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:' ? null : 'must be an http:// or https:// URL';
  } catch {
    return 'not a URL';
  }
}

/** What a valid config also warrants saying (see config-rules.ts), kept beside the frozen object. */
const WARNINGS = new WeakMap<Config, readonly string[]>();

/** The warnings found when `config` was built: legal settings that are probably a mistake. */
export function configWarnings(config: Config): readonly string[] {
  return WARNINGS.get(config) ?? [];
}

/** Validates a parsed TOML document. `baseDir` anchors relative paths (the config file's folder). */
export function buildConfig(raw: Raw, source: string, baseDir: string): Config {
  const r = new Reader(baseDir);
  const sections: Record<string, Record<string, unknown>> = {};
  const known = [...Object.keys(SCHEMA), 'peers'];
  for (const key of Object.keys(raw)) if (!known.includes(key)) r.problems.push(`[${key}]: unknown section (known: ${known.join(', ')})`);
  for (const [name, specs] of Object.entries(SCHEMA) as [string, Record<string, FieldSpec | TablesSpec<unknown>>][]) {
    const t = r.table(raw, name, `[${name}]`, specs);
    const plain = Object.fromEntries(Object.entries(specs).filter((e): e is [string, FieldSpec] => e[1].type !== 'tables'));
    const values = r.fields(t, `[${name}]`, name, plain);
    for (const [prop, spec] of Object.entries(specs)) {
      if (spec.type === 'tables') values[prop] = r.tables(t[spec.key], `[[${name}.${spec.key}]]`, `${name}.${spec.key}`, spec);
    }
    // Keep the schema's property order (a table key sits among the plain ones).
    sections[name] = Object.fromEntries(Object.keys(specs).map((p) => [p, values[p]]));
  }
  const peers = r.tables(raw.peers, '[[peers]]', 'peers', PEERS);
  const config = { source, ...sections, peers } as unknown as Config;
  const peerEntries = Array.isArray(raw.peers) ? raw.peers.filter(isTable) : [];
  const { problems, warnings } = crossCheck(config, { given: r.given, failed: r.failed, peerEntries, numberOf: (e) => r.numbers.get(e) ?? 0 });
  r.problems.push(...problems);
  if (r.problems.length > 0) throw new ConfigError(source, r.problems);
  deepFreeze(config);
  WARNINGS.set(config, Object.freeze([...warnings]));
  return config;
}

export function parseConfigText(text: string, source: string, baseDir: string): Config {
  let raw: Raw;
  try {
    raw = parseToml(text) as Raw;
  } catch (err) {
    throw new ConfigError(source, [`not valid TOML: ${errorMessage(err)}`]);
  }
  return buildConfig(raw, source, baseDir);
}

export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`cannot read: ${errorMessage(err)}`]);
  }
  return parseConfigText(text, path, dirname(resolve(path)));
}

/** --config beats NETBOOT_CONFIG beats the default path. */
export function configPathFrom(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env.NETBOOT_CONFIG ?? DEFAULT_CONFIG_PATH;
}

/** Whether `address` lies in `network/prefix`. */
export function inSubnet(address: string, network: string, prefix: number): boolean {
  const mask = maskOf(prefix);
  return ((ipv4ToInt(address) & mask) >>> 0) === ((ipv4ToInt(network) & mask) >>> 0);
}

/** The most specific subnet holding `address` (longest prefix), or null. */
export function matchSubnet<T extends { network: string; prefix: number }>(subnets: readonly T[], address: string): T | null {
  let best: T | null = null;
  for (const s of subnets) if ((best === null || s.prefix > best.prefix) && inSubnet(address, s.network, s.prefix)) best = s;
  return best;
}

export function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

function isTable(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
