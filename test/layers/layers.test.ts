// The tree's layers (README, "Architecture"): a module imports only from its own room or from a
// lower layer. This reads every import of every source file and fails on one that points up or
// sideways, naming it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Rooms from the bottom up; a room may import its own files and any room of a lower rank. */
export const LAYERS: readonly (readonly string[])[] = [
  ['platform/runtime', 'platform/metrics'],
  ['platform/local', 'platform/trust'],
  ['protocols/dhcp', 'protocols/tftp', 'protocols/disk', 'protocols/registry', 'sbs'],
  ['boot'],
  ['state', 'packages'],
  ['images', 'bootwiz', 'web'],
  // The imaging agent runs alone in the preboot environment: it uses images/ (and what images/
  // uses), never state/ or services/ (test/images/agent-bundle.test.ts checks its whole bundle).
  ['images/agent'],
  ['services/interface', 'services/server', 'services/mtftp', 'services/signal', 'services/supervisor'],
  ['cli'],
];

/** The most specific room first (images/agent before images). */
const ROOMS = LAYERS.flatMap((rooms, rank) => rooms.map((room) => ({ room, rank }))).sort((a, b) => b.room.length - a.room.length);

function roomOf(file: string, root = ROOT): { room: string; rank: number } | null {
  const rel = relative(root, file);
  return ROOMS.find(({ room }) => rel === room || rel.startsWith(`${room}/`)) ?? null;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

const IMPORT = /(?:^|\s)(?:import|export)\s[^;]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

export function layerViolations(root = ROOT): string[] {
  const tops = [...new Set(ROOMS.map(({ room }) => room.split('/')[0]!))];
  const files = tops.flatMap((top) => { try { return sourceFiles(join(root, top)); } catch { return []; } });
  const bad: string[] = [];
  for (const file of files) {
    const from = roomOf(file, root);
    if (from === null) { bad.push(`${relative(root, file)}: in no layer (add its folder to LAYERS)`); continue; }
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const target = resolve(dirname(file), (m[1] ?? m[2])!);
      const to = roomOf(target, root);
      if (to === null) { bad.push(`${relative(root, file)} imports ${relative(root, target)}, which is in no layer`); continue; }
      if (to.room === from.room || to.rank < from.rank) continue;
      bad.push(`${relative(root, file)} (${from.room}) imports ${relative(root, target)} (${to.room}): ${to.rank === from.rank ? 'sideways' : 'upwards'}`);
    }
  }
  return bad;
}

test('every import points to its own room or a lower layer', () => {
  assert.deepEqual(layerViolations(), []);
});

test('the check reports an upward and a sideways import, and a file in no layer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'layers-'));
  try {
    const put = (rel: string, text: string) => { mkdirSync(dirname(join(dir, rel)), { recursive: true }); writeFileSync(join(dir, rel), text); };
    put('platform/runtime/errors.ts', "import type { X } from '../../services/server/main.ts';\n");
    put('services/server/main.ts', "import {\n  a,\n} from '../mtftp/main.ts';\nimport { e } from '../../platform/runtime/errors.ts';\n");
    put('services/mtftp/main.ts', 'export const a = 1;\n');
    put('services/other/x.ts', 'export {};\n');
    assert.deepEqual(layerViolations(dir).sort(), [
      'platform/runtime/errors.ts (platform/runtime) imports services/server/main.ts (services/server): upwards',
      'services/other/x.ts: in no layer (add its folder to LAYERS)',
      'services/server/main.ts (services/server) imports services/mtftp/main.ts (services/mtftp): sideways',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
