// `netboot config check` speaks the file's own key names, shows the bad value in every message
// (an integer unquoted), refuses port clashes and warns about port 0 (issue 23).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configCheck, problemsOf } from './helpers.ts';

test('the effective config is printed with the file\'s key names', async () => {
  const r = await configCheck('[server]\ndhcp_port = 1067\n[[peers]]\nid = "b"\naddress = "10.0.0.2"\nkey_file = "/nonexistent-but-unchecked"\n');
  // The key file does not exist: refused, and said in the file's words.
  assert.equal(r.code, 1);
  assert.match(r.err, /\[\[peers\]\] #1 key_file: cannot be read: .*\(got "\/nonexistent-but-unchecked"\)/);
  const ok = await configCheck('[server]\ndhcp_port = 1067\n[mtftp]\nmax_block_size = 1468\n[paths]\nsbs_store = "store"\n');
  assert.equal(ok.code, 0, ok.err);
  const printed = JSON.parse(ok.out) as Record<string, Record<string, unknown>>;
  assert.equal(printed.server!.dhcp_port, 1067);
  assert.equal(printed.mtftp!.max_block_size, 1468);
  assert.ok(String(printed.paths!.sbs_store).endsWith('/store'));
  assert.doesNotMatch(ok.out, /dhcpPort|maxBlockSize|sbsStore|keyFile|tftpRoot/);
});

test('every message names the key as the file does and shows the value, integers unquoted', () => {
  const problems = problemsOf(`
[server]
dhcp_port = 70000
io_path = "fast"
[mtftp]
retries = "6"
[packages]
watch = 1
[log]
level = "loud"
[management]
url = "ftp://x"
`);
  assert.deepEqual([...problems].sort(), [
    '[log] level: must be one of debug, info, warn, error (got "loud")',
    '[management] url: must be an http:// or https:// URL (got "ftp://x")',
    '[mtftp] retries: must be an integer from 1 to 100 (got "6")',
    '[packages] watch: must be true or false (got 1)',
    '[server] dhcp_port: must be an integer from 0 to 65535 (got 70000)',
    '[server] io_path: must be one of auto, native, dgram (got "fast")',
  ]);
});

test('unknown sections and keys are still errors, with the value given', () => {
  const problems = problemsOf('[server]\ndhcpPort = 67\n[tftp]\nport = 69\n');
  assert.equal(problems.length, 2, problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('[server] dhcpPort: unknown key (known: address, interface, bind, dhcp_port,') && p.endsWith('(got 67)')), problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('[tftp]: unknown section')));
});

test('two of our ports on the same protocol and overlapping addresses are refused', () => {
  assert.deepEqual(problemsOf('[server]\ndhcp_port = 4011\n'), [
    '[server] proxy_port: clashes with [server] dhcp_port: both UDP port 4011 on 0.0.0.0 (got 4011)',
  ]);
  // MTFTP on 0.0.0.0 overlaps the server bound to one address.
  assert.deepEqual(problemsOf('[server]\nbind = "10.0.0.1"\ndhcp_port = 6700\n[mtftp]\nport = 6700\n'), [
    '[mtftp] port: clashes with [server] dhcp_port: both UDP port 6700 on 10.0.0.1 and 0.0.0.0 (got 6700)',
  ]);
  assert.deepEqual(problemsOf('[interface]\nport = 806\n'), [
    '[signal] port: clashes with [interface] port: both TCP port 806 on 0.0.0.0 and 127.0.0.1 (got 806)',
  ]);
  // Not a clash: different protocols, or disjoint addresses.
  assert.deepEqual(problemsOf('[interface]\nport = 69\n'), []);
  assert.deepEqual(problemsOf('[interface]\nport = 806\nbind = "10.0.0.1"\n'), []);
});

test('port 0 is a warning, not a refusal (tests bind port 0 through the config)', async () => {
  const r = await configCheck('[mtftp]\nport = 0\n[server]\ndhcp_port = 0\nproxy_port = 0\n');
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /warning: \[mtftp\] port: port 0 lets the kernel pick a random port, which no client or other service can find \(useful only in tests\) \(got 0\)/);
  assert.match(r.err, /warning: \[server\] dhcp_port: port 0/);
  assert.match(r.err, /warning: \[server\] proxy_port: port 0/);
  assert.match(r.err, /valid, 3 warning\(s\)/);
});
