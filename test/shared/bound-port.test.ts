// A port configured as 0 is found by our other processes through <data>/run/<name>.port; any
// other configured port is used as it is, and nothing is written for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boundPortPath, publishBoundPort, reachablePort } from '../../platform/local/bound-port.ts';

test('port 0: the bound port is recorded and read back; a configured port is used as it is', (t) => {
  const data = mkdtempSync(join(tmpdir(), 'netboot-bound-port-'));
  t.after(() => rmSync(data, { recursive: true, force: true }));
  assert.equal(reachablePort(data, 'interface', 0), 0, 'nothing recorded yet: 0, so the caller retries');
  publishBoundPort(data, 'interface', 490, 490);
  assert.equal(existsSync(boundPortPath(data, 'interface')), false, 'nothing written for a configured port');
  assert.equal(reachablePort(data, 'interface', 490), 490);
  publishBoundPort(data, 'interface', 0, 40123);
  assert.equal(reachablePort(data, 'interface', 0), 40123);
  assert.equal(reachablePort(data, 'signal', 0), 0, 'each service its own file');
  publishBoundPort(data, 'interface', 0, 40124); // a restart on another port
  assert.equal(reachablePort(data, 'interface', 0), 40124);
});

test('a damaged port file reads as "not recorded"', (t) => {
  const data = mkdtempSync(join(tmpdir(), 'netboot-bound-port-'));
  t.after(() => rmSync(data, { recursive: true, force: true }));
  mkdirSync(join(data, 'run'));
  for (const text of ['', 'x', '0', '70000', '12.5', '-1']) {
    writeFileSync(boundPortPath(data, 'signal'), text);
    assert.equal(reachablePort(data, 'signal', 0), 0, JSON.stringify(text));
  }
});
