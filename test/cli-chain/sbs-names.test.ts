// The pure part of `sbs send`'s check (cli/sbs-checks.ts namesMissing): which images, packages
// and peers an instruction names that the site lacks, for every kind that names one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { namesMissing, type SiteHoldings } from '../../cli/sbs-checks.ts';
import { buildDocument } from '../../sbs/build.ts';
import type { SbsKind } from '../../sbs/types.ts';

const site: SiteHoldings = { images: new Set(['lnx']), packages: new Set(['win11']), config: { respond: 'all', unknown: { type: 'local' }, responseDelayMs: 0, bootFiles: {} }, unchecked: [] };
const config = { peers: [{ id: 'b', address: 'site-b.example.net', keyFile: null }], interface: { port: 490 } } as never;
const doc = (kind: SbsKind, payload: Record<string, unknown>, replicateTo?: string[]) => buildDocument(kind, payload, replicateTo === undefined ? {} : { replicateTo });
const BOOT = (image: string) => ({ type: 'boot', image, once: true });

test('each kind: the names the site lacks, and nothing for the names it has', () => {
  const cases: Array<[string, ReturnType<typeof doc>, string[]]> = [
    ['client, known image and peer by id, host and host:port', doc('client', { client: { mac: '52:54:00:00:00:01', action: BOOT('lnx') } }, ['b', 'site-b.example.net', 'SITE-B.example.net:490']), []],
    ['client, unknown image', doc('client', { client: { mac: '52:54:00:00:00:01', action: BOOT('nope') } }), ["client 52:54:00:00:00:01's action names image nope, which the site does not have (it has lnx)"]],
    ['client, menu without a menu', doc('client', { client: { mac: '52:54:00:00:00:01', action: { type: 'menu' } } }), ["client 52:54:00:00:00:01's action is menu, but the site's config has no menu"]],
    ['client-remove, unknown peer and other port', doc('client-remove', { mac: '52:54:00:00:00:01' }, ['c', 'site-b.example.net:491']), [
      'replicateTo names c, which is not a configured peer (peers: b (site-b.example.net))',
      'replicateTo names site-b.example.net:491, which is not a configured peer (peers: b (site-b.example.net))',
    ]],
    ['clients snapshot', doc('clients', { clients: [{ mac: '52:54:00:00:00:01', action: BOOT('lnx') }, { mac: '52:54:00:00:00:02', action: BOOT('gone') }] }), ["client 52:54:00:00:00:02's action names image gone, which the site does not have (it has lnx)"]],
    ['config with its own menu', doc('config', { config: { respond: 'all', unknown: { type: 'menu' }, bootFiles: {}, menu: { prompt: 'p', timeoutSec: 0, items: [{ label: 'A', action: BOOT('lnx') }, { label: 'B', action: BOOT('x') }] } } }), ['menu item 2 "B" names image x, which the site does not have (it has lnx)']],
    ['image with an unknown package', doc('image', { image: { id: 'pe', name: 'PE', arch: ['bios'], type: 'nbp', bootFile: 'pe.0', package: 'win10' } }), ['image pe names package win10, which the site does not have (it has win11) (publish it with `netboot package publish`)']],
    ['images snapshot defines what it names', doc('images', { images: [{ id: 'pe', name: 'PE', arch: ['bios'], type: 'nbp', bootFile: 'pe.0', package: 'win11' }] }), []],
    ['image-remove of an image the site lacks', doc('image-remove', { imageId: 'nope' }), ['image-remove names image nope, which the site does not have (it has lnx)']],
  ];
  for (const [name, d, problems] of cases) assert.deepEqual(namesMissing(d, site, config).problems, problems, name);
});

test('without the Interface only peers are checked; what was not is passed on', () => {
  const unknown: SiteHoldings = { images: null, packages: null, config: undefined, unchecked: ['images not checked: the Interface is not running'] };
  const r = namesMissing(doc('client', { client: { mac: '52:54:00:00:00:01', action: BOOT('nope') } }, ['zz']), unknown, config);
  assert.deepEqual(r.problems, ['replicateTo names zz, which is not a configured peer (peers: b (site-b.example.net))']);
  assert.deepEqual(r.unchecked, unknown.unchecked);
});
