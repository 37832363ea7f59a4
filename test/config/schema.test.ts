// One schema entry per key (issue 15 item 4): the defaults, the validation and the README's key
// table (`netboot config doc`) all come from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from '../../cli/args.ts';
import { configCommand } from '../../cli/config-command.ts';
import { parseConfigText } from '../../platform/runtime/config.ts';
import { keyTableMarkdown } from '../../platform/runtime/config-doc.ts';
import { PEERS, SCHEMA, type FieldSpec, type TablesSpec } from '../../platform/runtime/config-schema.ts';
import { problemsOf } from './helpers.ts';

type AnySpec = FieldSpec | TablesSpec<unknown>;
const sections = Object.entries(SCHEMA) as [string, Record<string, AnySpec>][];

test('an empty file gives every schema default, in a frozen object of the same shape', () => {
  const c = parseConfigText('', 'x.toml', '/etc/netboot') as unknown as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(c).sort(), [...Object.keys(SCHEMA), 'peers', 'source'].sort());
  for (const [section, specs] of sections) {
    assert.ok(Object.isFrozen(c[section]), section);
    assert.deepEqual(Object.keys(c[section]!), Object.keys(specs), section);
    for (const [prop, spec] of Object.entries(specs)) {
      if (spec.type === 'tables') assert.deepEqual(c[section]![prop], [], `${section}.${prop}`);
      else if (typeof spec.default !== 'function') assert.equal(c[section]![prop], spec.default, `${section}.${prop}`);
    }
  }
  assert.equal(c.paths!.sbs, '/var/lib/netboot/sbs');
});

test('every default passes its own rule, and every key is snake_case and documented', () => {
  const fields = (specs: Record<string, AnySpec>): FieldSpec[] => Object.values(specs).flatMap((s) => (s.type === 'tables' ? Object.values(s.entry) : [s]));
  for (const spec of [...sections.flatMap(([, s]) => fields(s)), ...Object.values(PEERS.entry)]) {
    assert.match(spec.key, /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/, spec.key);
    assert.ok(spec.doc.length > 10, spec.key);
    if (spec.type === 'int') assert.ok(spec.default >= spec.min && spec.default <= spec.max, spec.key);
    if (spec.type === 'enum') assert.ok(spec.values.includes(spec.default), spec.key);
  }
});

test('the limits other parts enforce are keys with their defaults and ranges', () => {
  const c = parseConfigText('', 'x.toml', '/');
  assert.deepEqual(
    [c.mtftp.maxTransfers, c.mtftp.maxTransfersPerClient, c.mtftp.maxSessionS, c.interface.maxConnections, c.interface.maxConnectionsPerAddress, c.interface.maxSbsFileMib],
    [512, 16, 3600, 1024, 64, 64],
  );
  const set = parseConfigText('[mtftp]\nmax_transfers = 100\nmax_transfers_per_client = 4\nmax_session_s = 60\n[interface]\nmax_connections = 10\nmax_connections_per_address = 2\nmax_sbs_file_mib = 1\n', 'x.toml', '/');
  assert.deepEqual([set.mtftp.maxTransfers, set.mtftp.maxTransfersPerClient, set.mtftp.maxSessionS, set.interface.maxConnections, set.interface.maxConnectionsPerAddress, set.interface.maxSbsFileMib], [100, 4, 60, 10, 2, 1]);
  assert.deepEqual(problemsOf('[mtftp]\nmax_transfers = 0\n[interface]\nmax_sbs_file_mib = -1\n'), [
    '[mtftp] max_transfers: must be an integer from 1 to 1000000 (got 0)',
    '[interface] max_sbs_file_mib: must be an integer from 1 to 256 (got -1)',
  ]);
});

test('netboot config doc prints one table row per key, from the schema', async () => {
  const out: string[] = [];
  const code = await configCommand({ args: parseArgs(['doc']), out: (l) => out.push(l), err: () => {}, env: {} });
  assert.equal(code, 0);
  const table = out.join('\n');
  assert.equal(table, keyTableMarkdown());
  const rows = table.split('\n');
  assert.equal(rows[0], '| section | key | default | meaning |');
  const count = sections.reduce((n, [, specs]) => n + Object.values(specs).reduce((m, s) => m + (s.type === 'tables' ? Object.keys(s.entry).length : 1), 0), 0) + Object.keys(PEERS.entry).length;
  assert.equal(rows.length - 2, count);
  assert.ok(rows.includes('| `[server]` | `dhcp_port` | `67` | UDP port of proxyDHCP; 0-65535 |'), table);
  assert.ok(rows.includes('| `[paths]` | `sbs` | `<data>/sbs` | the SBS drop folder |'), table);
  assert.ok(rows.some((r) => r.startsWith('| `[mtftp]` | `max_transfers_per_client` | `16` |')), table);
  assert.ok(rows.some((r) => r.startsWith('| `[[peers]]` | `address` | required |')), table);
});
