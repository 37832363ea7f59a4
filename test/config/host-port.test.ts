// The one parser of `host` and `host:port`, shared by the config loader and the peer links.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHostPort, withDefaultPort } from '../../platform/runtime/host-port.ts';

test('the shared parser: host, port and the default port', () => {
  const table: [string, string][] = [
    ['10.0.0.2', 'ok 10.0.0.2:490'],
    ['10.0.0.2:4900', 'ok 10.0.0.2:4900'],
    ['Site-B.example:1', 'ok Site-B.example:1'],
    ['127.0.0.1:99999', 'port 99999 is not from 1 to 65535'],
    ['127.0.0.1:0', 'port 0 is not from 1 to 65535'],
    ['1.2.3.4.5', '1.2.3.4.5 is not an IPv4 address'],
    ['', 'the host is empty'],
    [':490', 'the host is empty'],
    ['bad_name', 'bad_name is not a host name (letters, digits and inner hyphens, in dot-separated labels of 1-63)'],
    ['fe80::1', 'must be host or host:port (IPv6 is not supported)'],
  ];
  for (const [text, want] of table) {
    const r = parseHostPort(text, 490);
    assert.equal(r.ok ? `ok ${r.host}:${r.port}` : r.reason, want, text);
  }
});

test('withDefaultPort fills the port in, and leaves what does not parse alone', () => {
  assert.equal(withDefaultPort('site-b', 490), 'site-b:490');
  assert.equal(withDefaultPort('site-b:4900', 490), 'site-b:4900');
  assert.equal(withDefaultPort('no such peer', 490), 'no such peer');
});
