// The Interface is killed with SIGKILL at random points while files are being dropped; after a
// clean restart the state must be what the instructions say, and every file must be in the store
// or rejected with a reason: none lost, none applied twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { writeFileAtomic } from '../../platform/runtime/atomic-file.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import type { FeedState } from '../../boot/feed-protocol.ts';
import { makeTestSite, waitFor } from '../helpers/env.ts';
import { spawnService } from '../helpers/process.ts';

const ROUNDS = 50;
const FILES_PER_ROUND = 12;
const MACS = Array.from({ length: 8 }, (_, i) => `52:54:00:00:00:${String(i).padStart(2, '0')}`);

/** A small seeded PRNG so a failing run can be repeated (the seed is printed). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Dropped { name: string; valid: boolean; id: string; kind: string; issuedMs: number; mac?: string; action?: object | null; entries?: Array<{ mac: string; action: object }> }

test(`SIGKILL at random points over ${ROUNDS} rounds loses nothing and applies nothing twice`, { timeout: 240_000 }, async () => {
  const seed = Number(process.env.NETBOOT_CRASH_SEED ?? Date.now() % 1_000_000);
  const rand = prng(seed);
  const site = await makeTestSite('[interface]\nsettle_ms = 5\nparse_retry_ms = 200\n', 'netboot-crash');
  const { sbs, sbsStore } = site.config.paths;
  mkdirSync(sbs, { recursive: true });
  const dropped: Dropped[] = [];
  const base = Date.UTC(2026, 10, 21, 10, 0, 0);
  let counter = 0;
  const nextId = (): string => `aaaaaaaa-bbbb-4ccc-8ddd-${String(++counter).padStart(12, '0')}`;
  const actions = [{ type: 'local' }, { type: 'wait' }, { type: 'menu' }, { type: 'boot', image: 'x', once: true }, { type: 'boot', image: 'y', once: false }];

  function dropOne(): void {
    const name = `f${String(dropped.length).padStart(5, '0')}.sbs`;
    const issuedMs = base + Math.floor(rand() * 3_600_000); // out of order on purpose
    const issued = new Date(issuedMs).toISOString();
    const id = nextId();
    const r = rand();
    const mac = MACS[Math.floor(rand() * MACS.length)]!;
    if (r < 0.08) {
      writeFileAtomic(join(sbs, name), JSON.stringify({ sbs: 1, id, kind: 'client', issued, client: { mac: 'zz', action: { type: 'local' } } }));
      dropped.push({ name, valid: false, id, kind: 'client', issuedMs });
    } else if (r < 0.12 && dropped.some((d) => d.valid && d.kind === 'client')) {
      // The same instruction again under another name: a no-op, still archived.
      const prev = dropped.filter((d) => d.valid && d.kind === 'client')[0]!;
      writeFileAtomic(join(sbs, name), JSON.stringify({ sbs: 1, id: prev.id, kind: 'client', issued: new Date(prev.issuedMs).toISOString(), client: { mac: prev.mac, action: prev.action } }));
      dropped.push({ ...prev, name, kind: 'duplicate' });
    } else if (r < 0.15) {
      const entries = MACS.filter(() => rand() < 0.5).map((m) => ({ mac: m, action: actions[Math.floor(rand() * actions.length)]! }));
      writeFileAtomic(join(sbs, name), JSON.stringify({ sbs: 1, id, kind: 'clients', issued, clients: entries }));
      dropped.push({ name, valid: true, id, kind: 'clients', issuedMs, entries });
    } else if (r < 0.3) {
      writeFileAtomic(join(sbs, name), JSON.stringify({ sbs: 1, id, kind: 'client-remove', issued, mac }));
      dropped.push({ name, valid: true, id, kind: 'client-remove', issuedMs, mac, action: null });
    } else {
      const action = actions[Math.floor(rand() * actions.length)]!;
      writeFileAtomic(join(sbs, name), JSON.stringify({ sbs: 1, id, kind: 'client', issued, client: { mac, action } }));
      dropped.push({ name, valid: true, id, kind: 'client', issuedMs, mac, action });
    }
  }

  try {
    for (let round = 0; round < ROUNDS; round++) {
      const proc = spawnService(['interface'], site.configPath);
      // Odd rounds die at any moment (start-up included); even rounds once it serves, so kills
      // also land mid-work however slow start-up is on a loaded machine.
      if (round % 2 === 0) {
        await waitFor('the interface to serve', () => (proc.logs.some((l) => l.msg === 'interface serving') || proc.child.exitCode !== null ? true : undefined), 30_000, 5);
      }
      const killAt = 50 + Math.floor(rand() * 600);
      const dropEvery = Math.floor(killAt / FILES_PER_ROUND);
      for (let i = 0; i < FILES_PER_ROUND; i++) {
        dropOne();
        await new Promise((r) => setTimeout(r, Math.floor(rand() * dropEvery))); // part of the scenario: files arrive spread out before the kill
      }
      await proc.kill('SIGKILL');
    }
    // The kills landed while the Interface was working: some files were done, others not yet.
    const archivedBefore = readdirSync(sbsStore).filter((d) => d !== 'rejected').flatMap((d) => readdirSync(join(sbsStore, d))).length;
    assert.ok(archivedBefore > 0 && archivedBefore < dropped.length, `${archivedBefore} of ${dropped.length} archived before the clean run`);
    // A clean run finishes the work.
    const proc = spawnService(['interface'], site.configPath);
    try {
      const sock = controlSocketPath(site.config.paths.data, 'interface');
      await waitFor('the folder to drain', () => (readdirSync(sbs).filter((f) => f.endsWith('.sbs')).length === 0 ? true : undefined), 30_000, 100);
      const got = await waitFor('the state', async () => {
        try {
          return await controlCall<{ state: FeedState }>(sock, 'GET', '/state');
        } catch {
          return undefined;
        }
      }, 10_000, 100);

      // Expected state from the instructions alone (the spec's ordering rules).
      const valid = dropped.filter((d) => d.valid && d.kind !== 'duplicate');
      const snaps = valid.filter((d) => d.kind === 'clients').sort((a, b) => a.issuedMs - b.issuedMs);
      const snap = snaps[snaps.length - 1];
      const expected = new Map<string, object>();
      for (const mac of MACS) {
        const updates = valid.filter((d) => d.mac === mac && (d.kind === 'client' || d.kind === 'client-remove') && (snap === undefined || d.issuedMs > snap.issuedMs));
        const latest = updates.sort((a, b) => a.issuedMs - b.issuedMs).at(-1);
        const action = latest !== undefined ? latest.action : snap?.entries?.find((e) => e.mac === mac)?.action ?? null;
        if (action) expected.set(mac, action);
      }
      const actual = new Map((got.state.clients ?? []).map((c) => [c.mac, c.action as object]));
      assert.deepEqual(Object.fromEntries([...actual].sort()), Object.fromEntries([...expected].sort()), `seed ${seed}`);

      // Every file is in the store exactly once, or rejected with its reason.
      const rejectedDir = join(sbsStore, 'rejected');
      const rejected = readdirSync(rejectedDir).filter((f) => f.endsWith('.sbs'));
      const stored = readdirSync(sbsStore).filter((d) => d !== 'rejected').flatMap((d) => readdirSync(join(sbsStore, d)));
      assert.deepEqual(rejected.sort(), dropped.filter((d) => !d.valid).map((d) => d.name).sort(), `seed ${seed}`);
      for (const f of rejected) assert.ok(existsSync(join(rejectedDir, `${f}.error.json`)), `${f} has its reason`);
      assert.deepEqual(stored.sort(), dropped.filter((d) => d.valid).map((d) => d.name).sort(), `seed ${seed}: every valid file archived once`);
      // Each instruction is recorded once, and no change was logged twice for one instruction.
      const db = new Database(join(site.config.paths.data, 'interface.sqlite'), { readonly: true });
      try {
        const ids = db.prepare("SELECT id FROM instructions WHERE source = 'sbs'").all() as Array<{ id: string }>;
        assert.deepEqual(ids.map((r) => r.id).sort(), [...new Set(valid.map((d) => d.id))].sort());
      } finally {
        db.close();
      }
    } finally {
      await proc.kill('SIGTERM');
    }
  } finally {
    site.cleanup();
  }
});
