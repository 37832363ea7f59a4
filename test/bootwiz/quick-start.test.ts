// The quick start (config/default.toml, `npm start`) builds LinuxPE and offers unknown machines
// a menu whose default is the local disk; the configuration systemd/install.sh writes does
// neither (every [bootwiz] key defaults to off) and keeps answering nobody.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { machineScript } from '../../boot/ipxe-script.ts';
import { machineAction } from '../../boot/pxe-policy.ts';
import type { FeedState } from '../../boot/feed-protocol.ts';
import { loadConfig, parseConfigText } from '../../platform/runtime/config.ts';
import { seedDocuments, SEED_DOCUMENTS } from '../../state/seed.ts';
import type { SbsDocument } from '../../sbs/types.ts';
import { LINUXPE_X64, prebootImage } from '../../bootwiz/recipe.ts';

const root = (rel: string): string => fileURLToPath(new URL(`../../${rel}`, import.meta.url));
const MAC = '52:54:00:aa:bb:cc';

function stateOf(docs: readonly SbsDocument[], built: boolean): FeedState {
  const get = <K extends SbsDocument['kind']>(k: K) => docs.find((d) => d.kind === k) as Extract<SbsDocument, { kind: K }>;
  return { config: get('config').config, clients: [], images: built ? [prebootImage(LINUXPE_X64)] : [], predefined: [] };
}

test('the embedded default config turns BootWiz on; an empty one (as install.sh writes) leaves it off', () => {
  const quick = loadConfig(root('config/default.toml'));
  assert.deepEqual(quick.bootwiz, { buildOnStart: true, seedMenu: true, menuTimeoutSec: 5, installIpxe: true, agentEntry: null });
  const plain = parseConfigText('[site]\nid = "x"\n', 'test', '/');
  assert.deepEqual(plain.bootwiz, { buildOnStart: false, seedMenu: false, menuTimeoutSec: 5, installIpxe: false, agentEntry: null });
  assert.doesNotMatch(readFileSync(root('systemd/install.sh'), 'utf8'), /\[bootwiz\]/);
  assert.throws(() => parseConfigText('[bootwiz]\nbuild_on_start = "yes"\nmenu = 1\n', 'test', '/'), /menu: unknown key[\s\S]*build_on_start: must be true or false/);
});

test('the seed with the menu: an unknown machine gets local disk (default after 5 s) or LinuxPE', () => {
  const state = stateOf(seedDocuments({ image: LINUXPE_X64.id, timeoutSec: 5 }), true);
  const action = machineAction(MAC, state);
  assert.deepEqual((action as { action: unknown }).action, { type: 'menu' });
  const script = machineScript(MAC, action, state);
  assert.match(script, /^item m0 Local disk$/m);
  assert.match(script, /^item m1 LinuxPE/m);
  assert.match(script, /^choose --timeout 5000 --default m0 /m);
});

test('the seed without the menu is the old one: unknown machines boot locally', () => {
  assert.equal(seedDocuments(null), SEED_DOCUMENTS);
  const state = stateOf(SEED_DOCUMENTS, false);
  assert.deepEqual((machineAction(MAC, state) as { action: unknown }).action, { type: 'local' });
});
