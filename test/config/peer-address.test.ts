// A peer's address is checked at load and in `config check` by the one parser the peer links
// use (platform/runtime/host-port.ts): `127.0.0.1:99999` is refused (issue 16 item 3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { problemsOf } from './helpers.ts';

const peer = (address: string): string => `[site]\nid = "a"\nkey_file = "/etc/netboot/site.key"\n[[peers]]\nid = "b"\naddress = "${address}"\n`;

test('a peer address with a port out of range or a bad host is refused at load', () => {
  assert.deepEqual(problemsOf(peer('127.0.0.1:99999')), ['[[peers]] #1 address: must be host or host:port (port 99999 is not from 1 to 65535) (got "127.0.0.1:99999")']);
  for (const bad of ['127.0.0.1:0', '127.0.0.1:', 'host:http', '10.0.0.256', '10.0.0', '-host', 'a..b', 'a_b:490', '[::1]:490', '::1', 'host:490:1', ' host']) {
    const problems = problemsOf(peer(bad));
    assert.equal(problems.length, 1, `${bad}: ${problems.join('; ')}`);
    assert.ok(problems[0]!.startsWith('[[peers]] #1 address: must be host or host:port'), problems[0]);
    assert.ok(problems[0]!.endsWith(`(got ${JSON.stringify(bad)})`), problems[0]);
  }
  for (const good of ['127.0.0.1:490', '10.0.0.2', 'site-b.example.net:65535', 'site-b', 'a.b.c:1']) assert.deepEqual(problemsOf(peer(good)), [], good);
});

test('two peers at one address, or a peer that is this site, are refused', () => {
  const text = `[site]\nid = "a"\nkey_file = "/k"\n[interface]\nport = 490\n[[peers]]\nid = "b"\naddress = "10.0.0.2"\n[[peers]]\nid = "c"\naddress = "10.0.0.2:490"\n[[peers]]\nid = "a"\naddress = "10.0.0.3"\n`;
  assert.deepEqual(problemsOf(text), [
    '[[peers]] #2 address: is also the address of peer "b" (got "10.0.0.2:490")',
    '[[peers]] #3 id: is this site\'s own [site] id; a site is not its own peer (got "a")',
  ]);
});
