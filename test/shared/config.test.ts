import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../platform/runtime/config.ts';
import { ConfigError } from '../../platform/runtime/errors.ts';

test('an empty config gives the documented defaults', () => {
  const c = parseConfigText('', 'x.toml', '/etc/netboot');
  assert.equal(c.paths.data, '/var/lib/netboot');
  assert.equal(c.paths.sbs, '/var/lib/netboot/sbs');
  assert.equal(c.server.dhcpPort, 67);
  assert.equal(c.server.proxyPort, 4011);
  assert.equal(c.mtftp.port, 69);
  assert.equal(c.interface.port, 490);
  assert.equal(c.signal.port, 806);
  assert.equal(c.management.url, null);
  assert.ok(Object.isFrozen(c.server));
});

test('every problem is listed at once', () => {
  const text = `
[server]
dhcp_port = 70000
address = "10.0.0"
bogus = 1
[mtftp]
max_block_size = 4
[management]
url = "ftp://x"
[[peers]]
id = "b"
`;
  assert.throws(() => parseConfigText(text, 'x.toml', '/'), ConfigError);
  try {
    parseConfigText(text, 'x.toml', '/');
  } catch (e) {
    const problems = (e as ConfigError).problems;
    assert.equal(problems.length, 7, problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('[site] key_file: required')));
    assert.ok(problems.some((p) => p.startsWith('[server] dhcp_port')));
    assert.ok(problems.some((p) => p.startsWith('[server] address')));
    assert.ok(problems.some((p) => p.startsWith('[server] bogus: unknown key')));
    assert.ok(problems.some((p) => p.startsWith('[mtftp] max_block_size')));
    assert.ok(problems.some((p) => p.startsWith('[management] url')));
    assert.ok(problems.some((p) => p.startsWith('[[peers]] #1 address: required')));
  }
});

test('relative paths resolve against the config file folder', () => {
  const c = parseConfigText('[paths]\ndata = "../var"\ntftp_root = "/srv/tftp"\n', 'x.toml', '/opt/netboot/config');
  assert.equal(c.paths.data, '/opt/netboot/var');
  assert.equal(c.paths.sbsStore, '/opt/netboot/var/sbsstore');
  assert.equal(c.paths.tftpRoot, '/srv/tftp');
});

test('bad TOML is reported, not thrown raw', () => {
  assert.throws(() => parseConfigText('[paths\n', 'x.toml', '/'), (e: unknown) => e instanceof ConfigError && /not valid TOML/.test(e.message));
});
