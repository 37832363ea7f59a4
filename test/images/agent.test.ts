// The imaging agent as a real process (node --import tsx images/agent/main.ts) against a real
// Interface that got its jobs from SBS `job` files: the kernel command line the PXE script gives
// the machine (in a file, --cmdline), a /sys tree of our own naming a loop device as the first
// disk, the package routes on the Interface's port, and a management-server stand-in receiving
// the events. Deploy (and a re-deploy that transfers and writes nothing), capture (and a second
// capture that uploads no chunk), backup keeping `keep` versions and restore, erase, a cancel
// while the deploy runs (no write after the 410), what the site refuses, and a deploy on a 4Kn disk.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { build } from 'esbuild';
import { machineScript } from '../../boot/ipxe-script.ts';
import { machineAction } from '../../boot/pxe-policy.ts';
import { encodeFrameHeader } from '../../packages/chunk-frames.ts';
import { sha256Hex } from '../../packages/digest.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import type { InterfaceService } from '../../services/interface/interface-service.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';
import { management, type Mgmt } from '../helpers/event-recorder.ts';
import { siteJobs } from './site-jobs.ts';
import { attach, detach, extCat, gptDisk, makeTree, MiB, sha, sh, sparseFile, type GptDisk } from './disks.ts';
import { gptDisk4k, withLoop4k } from './disks-4k.ts';

const ROOT = resolve(import.meta.dirname, '../..');
/**
 * AGENT_NODE=/path/to/node (e.g. Debian's Node 18, the preboot's): the agent runs as the preboot
 * runs it, bundled by esbuild for Node 18, with that node. Unset: node --import tsx main.ts.
 */
const AGENT_NODE = process.env.AGENT_NODE;
let bundle = '';
const MAC = '52:54:00:12:34:56';
const BACKUPS = 'backup-525400123456';
let n = 0;
const newId = (): string => `11111111-2222-4333-8444-${String(++n).padStart(12, '0')}`;
const jobId = (): string => `a9e17000-0000-4000-8000-${String(++n).padStart(12, '0')}`;

let site: TestSite;
let svc: InterfaceService;
let mgmt: Mgmt;
let src: GptDisk;
let hashes: Map<string, string>;


const drop = (kind: string, payload: object): Promise<void> => siteJobs(site, svc, MAC, newId, jobId).drop(kind, payload);
const addJob = (job: Record<string, unknown>): Promise<string> => siteJobs(site, svc, MAC, newId, jobId).addJob(job);

/** The kernel command line the machine's PXE script gives it, as iPXE would expand it. */
function kernelLine(): string {
  const state = svc.state.state();
  const script = machineScript(MAC, machineAction(MAC, state), state);
  const line = script.split('\n').find((l) => l.startsWith('kernel '));
  assert.ok(line !== undefined, script);
  return line.replace(/^kernel\s+\S+\s*/, '').replaceAll('${proxydhcp/next-server}', '127.0.0.1').replaceAll('${next-server}', '127.0.0.1').replaceAll('${mac:hexhyp}', MAC.replaceAll(':', '-'));
}

interface AgentRun {
  readonly code: number | null;
  readonly out: string;
}

/** A /sys of our own: a CD drive, a loop device and a removable stick before `sda`, our loop device. */
function fakeMachine(dev: string): { sys: string; devDir: string } {
  const base = join(site.dir, `machine-${++n}`);
  const disk = (name: string, removable: string, sectors: number): void => {
    mkdirSync(join(base, 'sys/block', name, 'device'), { recursive: true });
    writeFileSync(join(base, 'sys/block', name, 'removable'), `${removable}\n`);
    writeFileSync(join(base, 'sys/block', name, 'size'), `${sectors}\n`);
  };
  disk('loop0', '0', 1000);
  disk('sr0', '1', 1000);
  disk('sdb', '1', 1000); // a USB stick: removable
  disk('sda', '0', Number(sh('blockdev', ['--getsz', dev]).trim()));
  writeFileSync(join(base, 'sys/block/sda/device/serial'), 'QM00001\n');
  mkdirSync(join(base, 'dev'), { recursive: true });
  symlinkSync(dev, join(base, 'dev/sda'));
  return { sys: join(base, 'sys'), devDir: join(base, 'dev') };
}

function runAgent(dev: string, opts: { server?: string; cmdline?: string; extra?: string[]; onOutput?: (text: string) => void } = {}): Promise<AgentRun> {
  const m = fakeMachine(dev);
  const cmdline = join(site.dir, `cmdline-${++n}`);
  writeFileSync(cmdline, `${opts.cmdline ?? kernelLine()}\n`);
  const entry = AGENT_NODE === undefined ? ['--import', 'tsx', 'images/agent/main.ts'] : [bundle];
  const args = [...entry, '127.0.0.1', MAC, '127.0.0.2', '--cmdline', cmdline,
    '--server', opts.server ?? `127.0.0.1:${svc.boundPort}`, '--no-reboot', '--sys', m.sys, '--dev', m.devDir, ...(opts.extra ?? [])];
  return new Promise((res) => {
    const child = spawn(AGENT_NODE ?? process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const take = (c: Buffer): void => {
      out += c.toString();
      opts.onOutput?.(out);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('close', (code) => res({ code, out }));
  });
}

async function eventOf(id: string, kind: string): Promise<Record<string, unknown>> {
  return waitFor(`${kind} of ${id}`, () => mgmt.events.find((e) => e.jobId === id && e.kind === kind), 20_000);
}

async function withDisk<T>(file: string, fn: (dev: string) => Promise<T>): Promise<T> {
  const dev = attach(file);
  try {
    return await fn(dev);
  } finally {
    detach(dev);
  }
}

function checkFiles(path: string): void {
  for (const [name, h] of hashes) assert.equal(sha(extCat(path, src.rootStart, name)), h, name);
  assert.equal(sh('mtype', ['-i', `${path}@@${src.espStart}`, '::/EFI/BOOT/marker.txt']), 'netboot imaging marker\n');
  assert.equal(sh('sfdisk', ['-d', path]).replaceAll(path, 'X'), sh('sfdisk', ['-d', src.path]).replaceAll(src.path, 'X'));
}

async function control<T>(method: string, path: string, body?: unknown): Promise<T> {
  return controlCall<T>(controlSocketPath(site.config.paths.data, 'interface'), method, path, body, 30_000);
}

async function imageJob(path: string, body: object): Promise<Record<string, unknown>> {
  const { job } = await control<{ job: string }>('POST', path, body);
  const done = await waitFor(`image job ${job}`, async () => {
    const j = await control<{ state: string; result?: Record<string, unknown>; error?: string }>('GET', `/images/jobs?id=${job}`);
    return j.state === 'running' ? undefined : j;
  }, 60_000);
  assert.equal(done.state, 'done', done.error);
  return done.result!;
}

function versionsOf(pkg: string): { digest: string; retired: number | null }[] {
  const find = (dir: string): string | null => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (name === 'packages.sqlite') return p;
      if (statSync(p).isDirectory()) {
        const f = find(p);
        if (f !== null) return f;
      }
    }
    return null;
  };
  const db = new Database(find(site.config.paths.data)!, { readonly: true });
  try {
    return db.prepare<[string], { digest: string; retired: number | null }>('SELECT digest, retired_at_ms AS retired FROM versions WHERE package = ?').all(pkg);
  } finally {
    db.close();
  }
}

const secretOf = (id: string): string => svc.state.state().jobs!.find((j) => j.jobId === id)!.secret;
const clientAction = () => svc.state.state().clients?.find((c) => c.mac === MAC)?.action;

before(async () => {
  mgmt = await management();
  site = await makeTestSite(`[management]\nurl = "${mgmt.url}"\n[interface]\nsettle_ms = 10\n`, 'agent');
  hashes = makeTree(join(site.dir, 'tree'), 12, 300 * 1024);
  src = gptDisk(join(site.dir, 'src.img'), 48 * MiB, join(site.dir, 'tree'));
  svc = buildInterface(site.config, createMemoryLogger());
  await svc.start();
  if (AGENT_NODE !== undefined) {
    bundle = join(site.dir, 'agent.mjs');
    await build({ entryPoints: [join(ROOT, 'images/agent/main.ts')], bundle: true, platform: 'node', target: 'node18', format: 'esm', outfile: bundle, logLevel: 'silent' });
  }
  await drop('config', { config: { respond: 'known', bootFiles: { bios: 'undionly.kpxe', 'efi-x64': 'snponly.efi' } } });
  await drop('clients', { clients: [{ mac: '52:54:00:00:00:02', action: { type: 'local' } }] });
  await drop('images', { images: [{ id: 'linuxpe-x64', name: 'Linux PE', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img'] }] });
  await imageJob('/images/import', { file: src.path, id: 'lab-gold' });
});

after(async () => {
  await svc?.stop();
  site?.cleanup();
  mgmt?.close();
});

test('deploy: the agent writes the image onto the first fixed disk and reports it; a second deploy transfers and writes nothing', async () => {
  const target = sparseFile(join(site.dir, 'deploy.img'), 48 * MiB);
  const id = await addJob({ task: 'deploy', package: 'lab-gold' }); // then: local (addJob's default)
  const line = kernelLine();
  assert.match(line, new RegExp(`netboot\\.job=${id} netboot\\.secret=[0-9a-f]{64}`));
  const first = await withDisk(target, (dev) => runAgent(dev));
  assert.equal(first.code, 0, first.out);
  assert.match(first.out, /disk .*\/sda \(the first fixed disk\): 50\.3 MB/);
  assert.match(first.out, /deploy +100%/);
  const done = await eventOf(id, 'job-completed');
  const result = done.result as { bytesWritten: number; bytesTransferred: number; package: string; version: string; seconds: number };
  assert.equal(result.package, 'lab-gold');
  assert.match(result.version, /^sha256:[0-9a-f]{64}$/);
  assert.ok(result.bytesWritten > 3 * MiB, JSON.stringify(result));
  assert.deepEqual(mgmt.events.filter((e) => e.jobId === id).map((e) => e.kind).filter((k, i, a) => a.indexOf(k) === i), ['job-started', 'job-progress', 'job-completed']);
  assert.deepEqual(clientAction(), { type: 'local' }, 'the next boot follows the job\'s then');
  checkFiles(target);

  const again = await addJob({ task: 'deploy', package: 'lab-gold' });
  const second = await withDisk(target, (dev) => runAgent(dev));
  assert.equal(second.code, 0, second.out);
  const r2 = (await eventOf(again, 'job-completed')).result as { bytesWritten: number; bytesTransferred: number };
  assert.equal(r2.bytesWritten, 0, JSON.stringify(r2));
  assert.ok(r2.bytesTransferred < 64 * 1024, `a re-deploy fetched ${r2.bytesTransferred} bytes (the description only)`);
  checkFiles(target);
});

test('capture: a new version of the package, equal when exported; a second capture uploads no chunk', async () => {
  const id = await addJob({ task: 'capture', package: 'lab-cap' });
  const run = await withDisk(src.path, (dev) => runAgent(dev));
  assert.equal(run.code, 0, run.out);
  const result = (await eventOf(id, 'job-completed')).result as { bytesWritten: number; version: string; package: string; inventory: { madeBy: string; disk: { table: string; partitions: { fs: string }[] } } };
  assert.equal(result.package, 'lab-cap');
  assert.equal(result.inventory.madeBy, 'capture');
  assert.deepEqual(result.inventory.disk.partitions.map((p) => p.fs), ['fat16', 'ext4']);
  assert.equal(result.bytesWritten, 0, 'lab-gold (imported from the same disk) already holds every chunk: none is uploaded');
  const out = join(site.dir, 'cap-export.img');
  await imageJob('/images/export', { file: out, id: 'lab-cap', version: result.version });
  checkFiles(out);
  // Stored once: the new version's packs are lab-gold's, hard-linked.
  const packs = join(site.config.paths.data, 'packages/lab-cap/versions', result.version.slice('sha256:'.length), 'packs');
  assert.ok(readdirSync(packs).length > 0);
  for (const f of readdirSync(packs)) assert.ok(statSync(join(packs, f)).nlink >= 2, `${f} is shared with lab-gold`);

  // A changed disk: only the change travels; then the same disk again: nothing.
  const changed = join(site.dir, 'changed.img');
  writeFileSync(changed, readFileSync(src.path));
  sh('mcopy', ['-i', `${changed}@@${src.espStart}`, '-o', join(site.dir, 'tree/data/f0.bin'), '::/EFI/BOOT/new.bin']);
  const id2 = await addJob({ task: 'capture', package: 'lab-cap' });
  assert.equal((await withDisk(changed, (dev) => runAgent(dev))).code, 0);
  const r2 = (await eventOf(id2, 'job-completed')).result as { bytesWritten: number; version: string };
  assert.ok(r2.bytesWritten > 250 * 1024 && r2.bytesWritten < 1 * MiB, `a 300 KiB change uploaded ${r2.bytesWritten} bytes`);
  assert.notEqual(r2.version, result.version);
  const id3 = await addJob({ task: 'capture', package: 'lab-cap' });
  assert.equal((await withDisk(changed, (dev) => runAgent(dev))).code, 0);
  assert.equal(((await eventOf(id3, 'job-completed')).result as { bytesWritten: number }).bytesWritten, 0);
});

test('backup keeps `keep` versions; restore writes a kept one back; deploy refuses a backup', async () => {
  const versions: string[] = [];
  for (let i = 0; i < 3; i++) {
    const id = await addJob({ task: 'backup', keep: 2 });
    const run = await withDisk(src.path, (dev) => runAgent(dev));
    assert.equal(run.code, 0, run.out);
    const r = (await eventOf(id, 'job-completed')).result as { package: string; version: string; inventory: { madeBy: string } };
    assert.equal(r.package, BACKUPS);
    assert.equal(r.inventory.madeBy, 'backup');
    versions.push(r.version);
  }
  assert.equal(new Set(versions).size, 3);
  const held = versionsOf(BACKUPS);
  assert.deepEqual(held.filter((v) => v.retired === null).map((v) => `sha256:${v.digest}`).sort(), versions.slice(1).sort(), 'the newest two are kept');
  assert.ok(held.some((v) => `sha256:${v.digest}` === versions[0] && v.retired !== null), 'the oldest is retired');

  const target = sparseFile(join(site.dir, 'restore.img'), 64 * MiB);
  const id = await addJob({ task: 'restore', version: versions[1] });
  const run = await withDisk(target, (dev) => runAgent(dev));
  assert.equal(run.code, 0, run.out);
  assert.equal(((await eventOf(id, 'job-completed')).result as { version: string }).version, versions[1]);
  for (const [name, h] of hashes) assert.equal(sha(extCat(target, src.rootStart, name)), h, name);

  const blank = sparseFile(join(site.dir, 'never.img'), 48 * MiB);
  const bad = await addJob({ task: 'deploy', package: BACKUPS });
  const refused = await withDisk(blank, (dev) => runAgent(dev));
  assert.equal(refused.code, 1, refused.out);
  const failed = await eventOf(bad, 'job-failed');
  assert.match(String(failed.reason), /is a backup: deploy takes captured or imported images only .*nothing was written/);
  assert.deepEqual(clientAction(), { type: 'wait' });
  assert.ok(readFileSync(blank).equals(Buffer.alloc(48 * MiB)), 'nothing was written');
});

test('a disk too small for the image: the job fails before anything is written, and the machine waits', async () => {
  const small = sparseFile(join(site.dir, 'small.img'), 16 * MiB);
  const id = await addJob({ task: 'deploy', package: 'lab-gold' });
  const run = await withDisk(small, (dev) => runAgent(dev));
  assert.equal(run.code, 1, run.out);
  assert.match(run.out, /FAILED during deploy: .*holds 16777216 bytes; the image needs at least \d+: nothing was written/);
  const failed = await eventOf(id, 'job-failed');
  assert.match(String(failed.reason), /nothing was written/);
  assert.equal(failed.phase, 'deploy');
  assert.equal(svc.jobs.get(id)?.state, 'failed');
  assert.deepEqual(clientAction(), { type: 'wait' });
  assert.ok(readFileSync(small).equals(Buffer.alloc(16 * MiB)));
});

test('erase: zero over the whole disk, with progress', async () => {
  const disk = join(site.dir, 'erase.img');
  writeFileSync(disk, randomBytes(8 * MiB));
  const id = await addJob({ task: 'erase', method: 'zero', disk: 'serial:QM00001' });
  const run = await withDisk(disk, (dev) => runAgent(dev));
  assert.equal(run.code, 0, run.out);
  assert.match(run.out, /disk .*\/sda \(serial QM00001\)/);
  assert.match(run.out, /erase-zero +100%/);
  const r = (await eventOf(id, 'job-completed')).result as { bytesWritten: number };
  assert.equal(r.bytesWritten, 8 * MiB);
  assert.ok(readFileSync(disk).equals(Buffer.alloc(8 * MiB)));
});

/**
 * A stand-in between the agent and the site that holds the requests `hold` names (by default the
 * deploy's first batch of chunks, POST /pkg/chunks) until `release`, so something can happen while the deploy runs (after the table
 * was written). Everything else goes through to the Interface running now.
 */
async function holdingProxy(hold: (method: string, url: string) => boolean = (m, u) => m === 'POST' && u === '/pkg/chunks'): Promise<{ port: number; held: Promise<void>; failed: Promise<void>; release(): void; close(): void }> {
  let onHeld: () => void = () => {};
  const held = new Promise<void>((r) => (onHeld = r));
  let onFailed: () => void = () => {};
  const failed = new Promise<void>((r) => (onFailed = r));
  const parked: { req: IncomingMessage; res: ServerResponse; body: Buffer }[] = [];
  let holding = true;
  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const up = request({ host: '127.0.0.1', port: svc.boundPort, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => {
      onFailed();
      res.destroy();
    });
    up.end(body);
  };
  const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      if (holding && hold(req.method ?? '', req.url ?? '')) {
        parked.push({ req, res, body });
        onHeld();
        return;
      }
      forward(req, res, body);
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  return {
    port: (proxy.address() as { port: number }).port,
    held,
    failed,
    release: () => {
      holding = false;
      for (const p of parked.splice(0)) forward(p.req, p.res, p.body);
    },
    close: () => {
      for (const p of parked) p.res.destroy();
      proxy.closeAllConnections();
      proxy.close();
    },
  };
}

test('the site restarts while the agent deploys: the agent retries and goes on where it was', async () => {
  const proxy = await holdingProxy();
  try {
    const target = sparseFile(join(site.dir, 'restart.img'), 48 * MiB);
    const id = await addJob({ task: 'deploy', package: 'lab-gold' });
    const running = withDisk(target, (dev) => runAgent(dev, { server: `127.0.0.1:${proxy.port}`, extra: ['--check-ms', '200'] }));
    await proxy.held;
    await svc.stop();
    await proxy.failed; // the agent's next check found the site away
    svc = buildInterface(site.config, createMemoryLogger());
    await svc.start();
    proxy.release();
    const run = await running;
    assert.equal(run.code, 0, run.out);
    assert.match(run.out, /trying again in/);
    assert.ok(((await eventOf(id, 'job-completed')).result as { bytesWritten: number }).bytesWritten > 3 * MiB);
    checkFiles(target);
  } finally {
    proxy.close();
  }
});

test('the site restarts before a capture is committed: the agent captures again and the version is complete', async () => {
  const disk = join(site.dir, 'fresh.img');
  writeFileSync(disk, readFileSync(src.path));
  writeFileSync(join(site.dir, 'fresh.bin'), randomBytes(512 * 1024));
  sh('mcopy', ['-i', `${disk}@@${src.espStart}`, join(site.dir, 'fresh.bin'), '::/EFI/BOOT/fresh.bin']);
  const proxy = await holdingProxy((m, u) => m === 'POST' && u.endsWith('/commit'));
  try {
    const id = await addJob({ task: 'capture', package: 'lab-fresh' });
    const running = withDisk(disk, (dev) => runAgent(dev, { server: `127.0.0.1:${proxy.port}`, extra: ['--check-ms', '200'] }));
    await proxy.held;
    await svc.stop(); // what the capture staged there is gone with it
    await proxy.failed;
    svc = buildInterface(site.config, createMemoryLogger());
    await svc.start();
    proxy.release();
    const run = await running;
    assert.equal(run.code, 0, run.out);
    assert.match(run.out, /the site lost part of the capture .*: capturing again/);
    const r = (await eventOf(id, 'job-completed')).result as { version: string; bytesWritten: number };
    assert.ok(r.bytesWritten >= 2 * 512 * 1024, `the new file went up twice: ${r.bytesWritten}`);
    const out = join(site.dir, 'fresh-export.img');
    await imageJob('/images/export', { file: out, id: 'lab-fresh', version: r.version });
    sh('mcopy', ['-i', `${out}@@${src.espStart}`, '::/EFI/BOOT/fresh.bin', join(site.dir, 'fresh-back.bin')]);
    assert.ok(readFileSync(join(site.dir, 'fresh-back.bin')).equals(readFileSync(join(site.dir, 'fresh.bin'))), 'the file only this capture sent is in the version');
    checkFiles(out);
  } finally {
    proxy.close();
  }
});

test('cancel while the deploy runs: the agent stops at its next check, the job is cancelled, nothing is written after the 410', async () => {
  const proxy = await holdingProxy();
  try {
    const target = sparseFile(join(site.dir, 'cancel.img'), 48 * MiB);
    const id = await addJob({ task: 'deploy', package: 'lab-gold' });
    const trace = join(site.dir, 'cancel.trace');
    const running = withDisk(target, (dev) => runAgent(dev, { server: `127.0.0.1:${proxy.port}`, extra: ['--check-ms', '200', '--trace', trace] }));
    await proxy.held;
    await drop('job-cancel', { jobId: id });
    const run = await running;
    assert.equal(run.code, 3, run.out);
    assert.match(run.out, /cancelled by the site during deploy/);
    assert.equal(svc.jobs.get(id)?.state, 'cancelled');
    const failed = await eventOf(id, 'job-failed');
    assert.equal(failed.reason, 'cancelled');
    assert.deepEqual(clientAction(), { type: 'wait' }, 'a cancelled running job leaves its machine waiting');
    const lines = readFileSync(trace, 'utf8').trim().split('\n');
    const at410 = lines.findIndex((l) => l.startsWith('answer 410'));
    assert.ok(at410 > 0, lines.join('\n'));
    assert.ok(lines.slice(0, at410).some((l) => l.startsWith('write ')), 'the table was written before the cancel');
    assert.deepEqual(lines.slice(at410).filter((l) => l.startsWith('write ')), [], 'no write after the 410');
  } finally {
    proxy.close();
  }
});

test('refused: a wrong secret; an upload by a job that does not write that package; a bad chunk, a commit of chunks the site lacks, a body too large', async () => {
  const blank = sparseFile(join(site.dir, 'wrong.img'), 48 * MiB);
  const id = await addJob({ task: 'deploy', package: 'lab-gold' });
  const wrong = kernelLine().replace(/netboot\.secret=[0-9a-f]{64}/, `netboot.secret=${randomBytes(32).toString('hex')}`);
  const run = await withDisk(blank, (dev) => runAgent(dev, { cmdline: wrong }));
  assert.equal(run.code, 1, run.out);
  assert.match(run.out, /the site refused this job: no job has this secret/);
  assert.equal(svc.jobs.get(id)?.state, 'pending');

  const base = `http://127.0.0.1:${svc.boundPort}/pkg/uploads`;
  const post = async (secret: string, path: string, body: Buffer | string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${base}/${path}`, { method: 'POST', headers: { authorization: `Bearer ${secret}` }, body: typeof body === 'string' ? body : new Uint8Array(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const digest = sha256Hex(Buffer.from('x'));
  const ask = JSON.stringify({ digests: [digest] });
  const deploySecret = secretOf(id);
  const r1 = await post(deploySecret, 'lab-gold/missing', ask);
  assert.equal(r1.status, 403);
  assert.match(String(r1.body.error), /this job may not write package lab-gold/);

  const cap = await addJob({ task: 'capture', package: 'lab-up' });
  const secret = secretOf(cap);
  assert.equal((await post(secret, 'lab-gold/missing', ask)).status, 403, 'a capture writes its own package only');
  assert.deepEqual((await post(secret, 'lab-up/missing', ask)).body, { missing: [digest] });
  const bytes = randomBytes(4096);
  const liar = await post(secret, 'lab-up/chunks', Buffer.concat([encodeFrameHeader(sha256Hex(randomBytes(8)), bytes.length), bytes]));
  assert.equal(liar.status, 422);
  assert.match(String(liar.body.error), /its bytes hash to [0-9a-f]{64}: refused/);
  const good = await post(secret, 'lab-up/chunks', Buffer.concat([encodeFrameHeader(sha256Hex(bytes), bytes.length), bytes]));
  assert.deepEqual(good.body, { stored: 1, bytes: 4096 });
  assert.deepEqual((await post(secret, 'lab-up/missing', JSON.stringify({ digests: [sha256Hex(bytes)] }))).body, { missing: [] });
  const image = {
    format: 1, chunkBytes: 65536, sectorBytes: 512, sizeBytes: 8 * MiB, table: 'mbr',
    head: { length: 1 * MiB, chunks: [[0, 4096, sha256Hex(bytes)], [65536, 4096, digest]] }, partitions: [],
    inventory: { disk: { model: null, serial: null, sizeBytes: 8 * MiB, sectorBytes: 512, table: 'mbr', partitions: [] }, os: null, madeBy: 'capture' },
  };
  const lacking = await post(secret, 'lab-up/commit', JSON.stringify(image));
  assert.equal(lacking.status, 409);
  assert.deepEqual([lacking.body.count, lacking.body.missing], [1, [digest]]);
  const big = await post(secret, 'lab-up/missing', JSON.stringify({ digests: Array.from({ length: 6000 }, () => digest) }));
  assert.equal(big.status, 413);
  const unsigned = await fetch(`${base}/lab-up/missing`, { method: 'POST', body: ask });
  assert.equal(unsigned.status, 401);
  assert.equal((await post(secret, 'lab-up/abort', '{}')).status, 200);
  assert.equal(versionsOf('lab-up').length, 0, 'nothing was published');
});

test('4Kn: the agent deploys an image of a 4K disk onto a larger 4K disk (table at 4 KiB LBAs, root grown); a 512-byte image onto a 4K disk fails before anything is written', async () => {
  const src4k = gptDisk4k(join(site.dir, 'src-4k.img'), 48 * MiB, join(site.dir, 'tree'));
  const imported = await imageJob('/images/import', { file: src4k.path, id: 'lab-4k' });
  assert.equal(imported.sectorBytes, 4096);
  assert.equal(imported.sectorWhy, '4096-byte sectors (GPT header at byte 4096)');
  const target = sparseFile(join(site.dir, 'deploy-4k.img'), 64 * MiB);
  const id = await addJob({ task: 'deploy', package: 'lab-4k' });
  const run = await withLoop4k(target, (dev) => runAgent(dev));
  assert.equal(run.code, 0, run.out);
  assert.match(run.out, /disk .*\/sda \(the first fixed disk\): 67\.1 MB, 4096-byte sectors/);
  assert.match(run.out, /partition 2 grown from .*: resize2fs/);
  assert.ok(((await eventOf(id, 'job-completed')).result as { bytesWritten: number }).bytesWritten > 3 * MiB);
  const root = src4k.parts[1]!.start;
  for (const [name, h] of hashes) assert.equal(sha(extCat(target, root, name)), h, name);
  assert.match(sh('e2fsck', ['-fn', `${target}?offset=${root}`]), /clean|files/);
  await withLoop4k(target, async (dev) => {
    assert.match(sh('sgdisk', ['-v', dev]), /No problems found/);
    const t = JSON.parse(sh('sfdisk', ['-J', dev])).partitiontable as { sectorsize: number; lastlba: number; partitions: { start: number; size: number }[] };
    assert.deepEqual([t.sectorsize, t.lastlba, t.partitions[1]!.start * 4096], [4096, (64 * MiB) / 4096 - 6, root]);
    assert.equal((t.partitions[1]!.start + t.partitions[1]!.size) * 4096, 64 * MiB - MiB, 'the root reaches the last whole MiB');
  });

  const blank = sparseFile(join(site.dir, 'never-4k.img'), 64 * MiB);
  const bad = await addJob({ task: 'deploy', package: 'lab-gold' });
  const refused = await withLoop4k(blank, (dev) => runAgent(dev));
  assert.equal(refused.code, 1, refused.out);
  const failed = await eventOf(bad, 'job-failed');
  assert.match(String(failed.reason), /has 4096-byte logical sectors but the image was made on a disk with 512-byte sectors .*: nothing was written/);
  assert.equal(failed.phase, 'deploy');
  assert.deepEqual(clientAction(), { type: 'wait' });
  assert.ok(readFileSync(blank).equals(Buffer.alloc(64 * MiB)), 'nothing was written');
});
