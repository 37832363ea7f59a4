// Settings that contradict each other or silently cancel one another are refused; where both are
// legitimate, a warning (issue 16 item 10, and the rest of config-rules.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configCheck, problemsOf } from './helpers.ts';

test('[server] address and [server] interface together are refused, saying which to remove', async () => {
  assert.deepEqual(problemsOf('[server]\naddress = "10.0.0.5"\ninterface = "eth0"\n'), [
    '[server] interface: contradicts [server] address = "10.0.0.5", which would silently win; remove interface to advertise exactly that address, or remove address to advertise the interface\'s own (got "eth0")',
  ]);
  const r = await configCheck('[server]\naddress = "10.0.0.5"\ninterface = "eth0"\n');
  assert.equal(r.code, 1);
  assert.match(r.err, /\[server\] interface: contradicts \[server\] address/);
  assert.deepEqual(problemsOf('[server]\naddress = "10.0.0.5"\n'), []);
  assert.deepEqual(problemsOf('[server]\ninterface = "eth0"\n'), []);
});

test('folders that overlap where they must not are refused', () => {
  assert.deepEqual(problemsOf('[paths]\ndata = "/srv/nb"\nsbs = "/srv/nb/drop"\nsbs_store = "/srv/nb/drop/store"\n'), [
    '[paths] sbs_store: overlaps [paths] sbs = "/srv/nb/drop": stored files would be picked up again as drops (got "/srv/nb/drop/store")',
  ]);
  assert.deepEqual(problemsOf('[paths]\ndata = "/srv/nb"\ntftp_root = "/srv"\n'), [
    '[paths] tftp_root: contains [paths] data = "/srv/nb", which TFTP would then serve to anyone on the LAN (got "/srv")',
    '[paths] tftp_root: contains [paths] sbs = "/srv/nb/sbs", which TFTP would then serve to anyone on the LAN (got "/srv")',
    '[paths] tftp_root: contains [paths] sbs_store = "/srv/nb/sbsstore", which TFTP would then serve to anyone on the LAN (got "/srv")',
  ]);
  assert.deepEqual(problemsOf('[paths]\ntftp_root = "/srv/tftp"\n[site]\nid = "a"\nkey_file = "/srv/tftp/site.key"\n[[peers]]\nid = "b"\naddress = "10.0.0.2"\n'), [
    '[site] key_file: is inside [paths] tftp_root = "/srv/tftp": TFTP would serve the key to anyone on the LAN (got "/srv/tftp/site.key")',
  ]);
  // The defaults nest tftp_root inside data, which is fine.
  assert.deepEqual(problemsOf(''), []);
});

test('a listed subnet twice is refused', () => {
  assert.deepEqual(problemsOf('[[server.subnets]]\ncidr = "10.1.0.0/16"\n[[server.subnets]]\ncidr = "10.1.0.0/16"\nname = "again"\n'), [
    '[[server.subnets]] #2 cidr: is listed twice (got "10.1.0.0/16")',
  ]);
});

test('a key refused on its own rule does not also trip a rule across keys', () => {
  // dhcp_port falls back to its default (67) internally; that must not read as a clash.
  assert.deepEqual(problemsOf('[server]\ndhcp_port = 70000\nproxy_port = 67\n'), ['[server] dhcp_port: must be an integer from 0 to 65535 (got 70000)']);
});

test('config check refuses what the PXE server would refuse at start: an interface this host lacks', async () => {
  const r = await configCheck('[server]\ninterface = "nb-no-such0"\n');
  assert.equal(r.code, 1);
  assert.match(r.err, /\[server\] interface: no such network interface on this host \(got "nb-no-such0"\)/);
  assert.deepEqual(problemsOf('[server]\ninterface = "eth0/1"\n'), ['[server] interface: must be a network interface name (at most 15 characters, no spaces or slashes) (got "eth0/1")']);
  assert.equal((await configCheck('[server]\ninterface = "lo"\n')).code, 0);
});
