// The agent overlay without Debian's archive: esbuild bundles the test probe into one ES module for
// Node 18 (the same bytes twice, runnable by node with init's arguments), an entry that does not
// exist gives an overlay without an agent, one that does not compile is refused by name; and
// BootwizService, on a fabricated build, writes agent.img at start, leaves it alone while the
// bundle's digest is unchanged (across restarts), and writes and publishes a new one when the
// agent changes, keeping the previous one when the new entry does not compile. No network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { agentOverlayEntries, agentRunScript, buildAgentOverlay, bundleAgent, type AgentInfo } from '../../bootwiz/agent.ts';
import { BootwizService, type BootwizHost } from '../../bootwiz/bootwiz-service.ts';
import { buildDir } from '../../bootwiz/build.ts';
import { ToolError } from '../../bootwiz/extract.ts';
import { AGENT_FILE, AGENT_INFO_FILE, BUILD_INFO_FILE, LINUXPE_X64, LOCK_FILE, prebootImage } from '../../bootwiz/recipe.ts';
import { encodeLock } from '../../bootwiz/lock.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';

const PROBE = join(import.meta.dirname, 'fixtures', 'agent-probe.ts');
const ID = LINUXPE_X64.id;

/** The files of a gzip'd cpio, path → { bytes, mode }. */
function unpack(img: Buffer): Record<string, { text: string; mode: number }> {
  const out = mkdtempSync(join(tmpdir(), 'agent-img-'));
  try {
    execFileSync('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], { cwd: out, input: gunzipSync(img) });
    const files = execFileSync('find', ['.', '-type', 'f'], { cwd: out, encoding: 'utf8' }).split('\n').filter((l) => l !== '').map((l) => l.slice(2)).sort();
    return Object.fromEntries(files.map((p) => [p, { text: readFileSync(join(out, p), 'utf8'), mode: statSync(join(out, p)).mode & 0o777 }]));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

test('the probe bundles into one ES module for node18, the same bytes twice, and runs with init\'s arguments', { timeout: 60_000 }, async () => {
  const a = await bundleAgent(PROBE);
  const b = await bundleAgent(PROBE);
  assert.ok(a !== null && b !== null);
  assert.ok(a.code.equals(b.code), 'same entry, same bundle');
  assert.equal(a.entry, 'test/bootwiz/fixtures/agent-probe.ts', 'named relative to the source tree, so any checkout gives the same bytes');
  const code = a.code.toString();
  assert.match(code, /^import \{ createHash \} from "node:crypto";$/m, 'node: modules stay imports (ESM)');
  assert.doesNotMatch(code, /: string|as Error/, 'no TypeScript left');
  const dir = mkdtempSync(join(tmpdir(), 'agent-bundle-'));
  try {
    writeFileSync(join(dir, 'agent.mjs'), a.code);
    const out = execFileSync(process.execPath, [join(dir, 'agent.mjs'), '10.0.0.1', '52:54:00:00:00:01', '10.0.0.100'], { encoding: 'utf8' });
    assert.match(out, /^agent-probe: node v\d+\.\d+\.\d+ args=10\.0\.0\.1 52:54:00:00:00:01 10\.0\.0\.100$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The overlay: the bundle and the run script, the same bytes for the same bundle.
  const one = await buildAgentOverlay(a);
  const two = await buildAgentOverlay(b);
  assert.ok(one.compressed.equals(two.compressed));
  assert.equal(one.info.agent?.sha256, a.sha256);
  const files = unpack(one.compressed);
  assert.deepEqual(Object.keys(files), ['opt/agent/agent.mjs', 'opt/agent/run']);
  assert.equal(files['opt/agent/run']!.mode, 0o755);
  assert.equal(files['opt/agent/run']!.text, agentRunScript());
  assert.match(agentRunScript(), /^exec \/usr\/bin\/node \/opt\/agent\/agent\.mjs "\$@"$/m);
  execFileSync('sh', ['-n'], { input: agentRunScript() });
});

test('an entry that does not exist gives an overlay without an agent; one that does not compile is refused', { timeout: 60_000 }, async () => {
  assert.equal(await bundleAgent('/nonexistent/agent/main.ts'), null);
  const none = await buildAgentOverlay(null);
  assert.equal(none.info.agent, null);
  assert.deepEqual(agentOverlayEntries(null), [{ path: 'opt/agent', type: 'dir' }]);
  assert.deepEqual(unpack(none.compressed), {});
  const dir = mkdtempSync(join(tmpdir(), 'agent-broken-'));
  try {
    writeFileSync(join(dir, 'main.ts'), 'import { nope } from "./missing.ts";\nconsole.log(nope);\n');
    await assert.rejects(bundleAgent(join(dir, 'main.ts')), (e: unknown) => e instanceof ToolError && /cannot bundle the agent .*main\.ts: .*missing\.ts/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function fakeBuild(): { data: string; host: BootwizHost; published: () => number } {
  const data = mkdtempSync(join(tmpdir(), 'bootwiz-agent-'));
  const dir = buildDir(data, ID);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'initrd.img'), 'initrd');
  writeFileSync(join(dir, LOCK_FILE), encodeLock({ lock: 1, packages: {} }));
  writeFileSync(join(dir, BUILD_INFO_FILE), JSON.stringify({ id: ID, kernelVersion: '6.1.0-99-amd64', modules: [], initrd: { bytes: 6 } }));
  let published = 0;
  return {
    data, published: () => published,
    host: { publish: async () => ({ seq: ++published, digest: null }), offer: () => undefined, readyDrivers: () => [], owns: () => true },
  };
}

test('the Interface rewrites agent.img only when the agent\'s bundle changes, and publishes it', { timeout: 120_000 }, async () => {
  const f = fakeBuild();
  const entryDir = mkdtempSync(join(tmpdir(), 'agent-entry-'));
  const entry = join(entryDir, 'main.ts');
  const dir = buildDir(f.data, ID);
  const start = async (agentEntry: string): Promise<{ info: AgentInfo; mtime: number; log: ReturnType<typeof createMemoryLogger> }> => {
    const log = createMemoryLogger();
    const svc = new BootwizService({ dataDir: f.data, buildOnStart: false, installIpxe: false, tftpRoot: join(f.data, 'tftp'), agentEntry }, log, f.host);
    svc.start();
    await svc.idle();
    await svc.stop();
    return { info: JSON.parse(readFileSync(join(dir, AGENT_INFO_FILE), 'utf8')) as AgentInfo, mtime: statSync(join(dir, AGENT_FILE)).mtimeMs, log };
  };
  try {
    assert.deepEqual(prebootImage(LINUXPE_X64).initrd, ['initrd.img', 'drivers.img', 'agent.img'], 'iPXE loads the agent overlay after the base and the drivers');
    // No agent yet: LinuxPE without one, said in the log.
    const first = await start(entry);
    assert.equal(first.info.agent, null);
    assert.ok(first.log.records.some((r) => /no imaging agent to bundle/.test(String(r.msg))));
    assert.equal(f.published(), 1);
    // The agent appears (netboot upgraded): the next start writes it.
    writeFileSync(entry, 'console.log("agent v1", process.argv.slice(2).join(" "));\n');
    const second = await start(entry);
    assert.equal(second.info.agent?.bytes !== undefined && second.info.agent.bytes > 0, true);
    assert.match(unpack(readFileSync(join(dir, AGENT_FILE)))['opt/agent/agent.mjs']!.text, /agent v1/);
    // Unchanged: agent.img is left as it is (the publish is then `unchanged` in the store).
    const third = await start(entry);
    assert.equal(third.info.agent?.sha256, second.info.agent?.sha256);
    assert.equal(third.mtime, second.mtime, 'agent.img was not rewritten');
    // A new version of the agent: a new agent.img.
    writeFileSync(entry, 'console.log("agent v2");\n');
    const fourth = await start(entry);
    assert.notEqual(fourth.info.agent?.sha256, third.info.agent?.sha256);
    assert.match(unpack(readFileSync(join(dir, AGENT_FILE)))['opt/agent/agent.mjs']!.text, /agent v2/);
    // A version that does not compile: the previous agent.img stays, the error is logged.
    writeFileSync(entry, 'import { x } from "./nowhere.ts";\nconsole.log(x);\n');
    const fifth = await start(entry);
    assert.equal(fifth.info.agent?.sha256, fourth.info.agent?.sha256);
    assert.ok(fifth.log.records.some((r) => /cannot bundle the imaging agent; the previous agent\.img stays/.test(String(r.msg))));
    assert.equal(f.published(), 5, 'every start publishes the build folder');
  } finally {
    rmSync(entryDir, { recursive: true, force: true });
    rmSync(f.data, { recursive: true, force: true });
  }
});
