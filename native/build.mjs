// Builds the native addons with node-gyp at `npm ci` / `npm install` time (the root package's
// install script). Node's own headers are used when they sit beside the node binary (Debian's
// nodejs, official tarballs), so the build needs no download. A failed build leaves its users on
// their fallback (MTFTP's pure-JS send path, the PXE server's node:dgram sockets, the hash workers'
// node:crypto) and says so; NETBOOT_NATIVE_REQUIRED=1 (CI) makes it fail the install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Each addon and what runs without it.
const addons = {
  'udp-link': 'MTFTP will use its pure-JS send path',
  'udp-batch': 'the PXE server will use node:dgram',
  chunking: 'package hashing will use node:crypto (same digests, slower)',
};

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath && join(dirname(process.env.npm_execpath), '../node_modules/node-gyp/bin/node-gyp.js'),
    join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  return candidates.find((c) => c && existsSync(c));
}

const gyp = nodeGyp();
const prefix = resolve(dirname(process.execPath), '..');
const nodedir = existsSync(join(prefix, 'include/node/node_api.h')) ? ['--nodedir', prefix] : [];
let failed = false;
for (const [name, fallback] of Object.entries(addons)) {
  const dir = join(here, name);
  const r = gyp === undefined ? { status: 1, error: new Error('node-gyp not found (it ships with npm)') } : spawnSync(process.execPath, [gyp, 'rebuild', '--release', '--directory', dir, ...nodedir], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed = true;
    process.stderr.write(`native/${name}: build failed (${r.error?.message ?? `exit ${r.status}`}); ${fallback}\n`);
  }
}
if (failed && process.env.NETBOOT_NATIVE_REQUIRED === '1') process.exit(1);
