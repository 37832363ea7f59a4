// Settings that are legal but cancelled by another, or likely to strand clients: warnings, kept
// beside the frozen config (configWarnings), printed by `config check` and logged at start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configWarnings, parseConfigText } from '../../platform/runtime/config.ts';

const warningsOf = (text: string): readonly string[] => configWarnings(parseConfigText(text, 'x.toml', '/etc/netboot'));

test('settings cancelled by another are warnings', () => {
  assert.deepEqual(warningsOf(''), []);
  assert.deepEqual(warningsOf('[packages]\nscrub_interval_ms = 0\nscrub_rate_mib = 100\n'), ['[packages] scrub_rate_mib: has no effect: [packages] scrub_interval_ms = 0 turns the scrub off (got 100)']);
  assert.deepEqual(warningsOf('[management]\ntimeout_ms = 5000\n'), ['[management] timeout_ms: has no effect: [management] url is not set (got 5000)']);
  assert.deepEqual(warningsOf('[mtftp]\nmax_transfers = 8\n'), ['[mtftp] max_transfers_per_client: is above [mtftp] max_transfers = 8, so it never applies (got 16)']);
  assert.deepEqual(warningsOf('[interface]\nmax_connections = 10\n'), ['[interface] max_connections_per_address: is above [interface] max_connections = 10, so it never applies (got 64)']);
  assert.deepEqual(warningsOf('[site]\nkey_file = "/etc/netboot/site.key"\n'), ['[site] key_file: has no effect: no [[peers]] are configured (got "/etc/netboot/site.key")']);
  assert.deepEqual(warningsOf('[server]\naddress = "10.0.0.5"\n[mtftp]\nbind = "10.0.0.6"\n'), ['[mtftp] bind: is not [server] address = "10.0.0.5", where clients are sent for TFTP (got "10.0.0.6")']);
  assert.deepEqual(warningsOf('[interface]\nbind = "127.0.0.1"\n[site]\nkey_file = "/k"\n[[peers]]\nid = "b"\naddress = "10.0.0.2"\n'), [
    '[[peers]] #1 address: is on another host, but [interface] bind = "127.0.0.1" accepts only local connections, so this peer cannot reach us (got "10.0.0.2")',
  ]);
});
