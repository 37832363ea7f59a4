// What the schema says to people: the Markdown key table of `netboot config doc` (the README
// carries its output), and a config spelt with the file's own key names for `config check`.
import { SCHEMA, PEERS, type FieldSpec, type TablesSpec } from './config-schema.ts';
import type { Config } from './config-types.ts';

function shownDefault(spec: FieldSpec): string {
  if (spec.defaultDoc !== undefined) return spec.defaultDoc;
  if (typeof spec.default === 'function') return '(derived)';
  if (spec.default === null) return 'unset';
  return `\`${JSON.stringify(spec.default)}\``;
}

function range(spec: FieldSpec): string {
  if (spec.type === 'int') return `; ${spec.min}-${spec.max}`;
  if (spec.type === 'enum') return `; one of ${spec.values.map((v) => `\`${v}\``).join(', ')}`;
  return '';
}

const escapeCell = (s: string): string => s.replace(/\|/g, '\\|');

/** The key table: one row per key, in schema order. */
export function keyTableMarkdown(): string {
  const rows: string[][] = [];
  const add = (section: string, specs: Readonly<Record<string, FieldSpec | TablesSpec<unknown>>>): void => {
    for (const spec of Object.values(specs)) {
      if (spec.type !== 'tables') rows.push([`\`[${section}]\``, `\`${spec.key}\``, shownDefault(spec), `${spec.doc}${range(spec)}`]);
    }
    for (const spec of Object.values(specs)) if (spec.type === 'tables') addTables(`[[${section}.${spec.key}]]`, spec);
  };
  const addTables = (section: string, spec: TablesSpec<unknown>): void => {
    for (const field of Object.values(spec.entry)) {
      const required = field.key in spec.required ? 'required' : shownDefault(field);
      rows.push([`\`${section}\``, `\`${field.key}\``, required, `${field.doc}${range(field)}`]);
    }
  };
  for (const [section, specs] of Object.entries(SCHEMA)) add(section, specs as Record<string, FieldSpec | TablesSpec<unknown>>);
  addTables('[[peers]]', PEERS as TablesSpec<unknown>);
  const lines = ['| section | key | default | meaning |', '|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.map(escapeCell).join(' | ')} |`);
  return lines.join('\n');
}

function entryByKey(entry: unknown, spec: TablesSpec<unknown>): Record<string, unknown> {
  const e = entry as Record<string, unknown>;
  // Entry properties are named like their keys in camelCase (key_file -> keyFile).
  return Object.fromEntries(Object.keys(spec.entry).map((k) => [k, e[k.replace(/_(\w)/g, (_m, c: string) => c.toUpperCase())]]));
}

/** The effective config keyed as in the file (`dhcp_port`, `[[peers]] key_file`), for printing. */
export function configByFileKeys(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [section, specs] of Object.entries(SCHEMA) as [string, Record<string, FieldSpec | TablesSpec<unknown>>][]) {
    const values = config[section as keyof typeof SCHEMA] as unknown as Record<string, unknown>;
    out[section] = Object.fromEntries(Object.entries(specs).map(([prop, spec]) => [
      spec.key,
      spec.type === 'tables' ? (values[prop] as unknown[]).map((e) => entryByKey(e, spec)) : values[prop],
    ]));
  }
  out.peers = config.peers.map((p) => entryByKey(p, PEERS as TablesSpec<unknown>));
  return out;
}
