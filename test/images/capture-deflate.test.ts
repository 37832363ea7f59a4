// Capture uploads deflated where that pays: the agent as a real process (node --import tsx
// images/agent/main.ts) captures a loop device into a real Interface, once deflating
// (`--upload-encoding deflate`) and once raw (`--upload-encoding raw`, as agents before deflate sent); both versions
// export equal to the source, and the deflated one's chunks took far fewer bytes on the wire.
// The agent's UploadSink against the site: an incompressible chunk goes raw, a compressible one
// deflated. What the site refuses: a deflated frame that inflates beyond the largest chunk, one
// that is not deflate, one that inflates to other bytes than its digest; nothing of them is stored.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { machineScript } from '../../boot/ipxe-script.ts';
import { machineAction } from '../../boot/pxe-policy.ts';
import { parseOptions, UsageError } from '../../images/agent/options.ts';
import { SiteClient } from '../../images/agent/site-client.ts';
import { UploadSink } from '../../images/agent/upload-sink.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeFrameHeader, FrameParser, MAX_FRAME_DATA } from '../../packages/chunk-frames.ts';
import { sha256Hex } from '../../packages/digest.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import type { InterfaceService } from '../../services/interface/interface-service.ts';
import { buildInterface } from '../../services/interface/main.ts';
import { makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';
import { management, type Mgmt } from '../helpers/event-recorder.ts';
import { siteJobs } from './site-jobs.ts';
import { attach, detach, extCat, gptDisk, makeTree, MiB, sha, sh, type GptDisk } from './disks.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const MAC = '52:54:00:de:f1:a7';
let n = 0;
const newId = (): string => `22222222-3333-4444-8555-${String(++n).padStart(12, '0')}`;
const jobId = (): string => `a9e17000-0000-4000-8000-${String(++n).padStart(12, '0')}`;

let site: TestSite;
let svc: InterfaceService;
let mgmt: Mgmt;
/** Two disks alike, of other contents (a chunk the site holds is not sent again): one captured deflating, one raw. */
let srcs: { disk: GptDisk; hashes: Map<string, string> }[];

const drop = (kind: string, payload: object): Promise<void> => siteJobs(site, svc, MAC, newId, jobId).drop(kind, payload);
const addJob = (job: Record<string, unknown>): Promise<string> => siteJobs(site, svc, MAC, newId, jobId).addJob(job);

/** The agent on `dev` (a /sys of our own naming it the first fixed disk), with the kernel line its PXE script gives. */
function runAgent(dev: string, extra: string[] = []): Promise<{ code: number | null; out: string }> {
  const base = join(site.dir, `machine-${++n}`);
  mkdirSync(join(base, 'sys/block/sda/device'), { recursive: true });
  writeFileSync(join(base, 'sys/block/sda/removable'), '0\n');
  writeFileSync(join(base, 'sys/block/sda/size'), `${sh('blockdev', ['--getsz', dev]).trim()}\n`);
  mkdirSync(join(base, 'dev'), { recursive: true });
  symlinkSync(dev, join(base, 'dev/sda'));
  const state = svc.state.state();
  const script = machineScript(MAC, machineAction(MAC, state), state);
  const line = script.split('\n').find((l) => l.startsWith('kernel '));
  assert.ok(line !== undefined, script);
  writeFileSync(join(base, 'cmdline'), `${line.replace(/^kernel\s+\S+\s*/, '')}\n`);
  const args = ['--import', 'tsx', 'images/agent/main.ts', '127.0.0.1', MAC, '127.0.0.2', '--cmdline', join(base, 'cmdline'),
    '--server', `127.0.0.1:${svc.boundPort}`, '--no-reboot', '--sys', join(base, 'sys'), '--dev', join(base, 'dev'), ...extra];
  return new Promise((res) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => void (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => void (out += c.toString()));
    child.on('close', (code) => res({ code, out }));
  });
}

async function control<T>(method: string, path: string, body?: unknown): Promise<T> {
  return controlCall<T>(controlSocketPath(site.config.paths.data, 'interface'), method, path, body, 30_000);
}

async function exportTo(id: string, version: string, file: string): Promise<void> {
  const { job } = await control<{ job: string }>('POST', '/images/export', { file, id, version });
  const done = await waitFor(`export ${job}`, async () => {
    const j = await control<{ state: string; error?: string }>('GET', `/images/jobs?id=${job}`);
    return j.state === 'running' ? undefined : j;
  }, 60_000);
  assert.equal(done.state, 'done', done.error);
}

function checkFiles(path: string, { disk, hashes }: (typeof srcs)[number]): void {
  for (const [name, h] of hashes) assert.equal(sha(extCat(path, disk.rootStart, name)), h, name);
  assert.equal(sh('mtype', ['-i', `${path}@@${disk.espStart}`, '::/EFI/BOOT/marker.txt']), 'netboot imaging marker\n');
  assert.equal(sh('sfdisk', ['-d', path]).replaceAll(path, 'X'), sh('sfdisk', ['-d', disk.path]).replaceAll(disk.path, 'X'));
}

interface Upload { encoding: string; chunks: number; chunksDeflated: number; chunkBytes: number; wireBytes: number }

async function capture(pkg: string, src: GptDisk, extra: string[] = []): Promise<{ result: { version: string; bytesWritten: number; bytesTransferred: number; 'x-upload': Upload }; out: string }> {
  const id = await addJob({ task: 'capture', package: pkg });
  const dev = attach(src.path);
  let run;
  try {
    run = await runAgent(dev, extra);
  } finally {
    detach(dev);
  }
  assert.equal(run.code, 0, run.out);
  const done = await waitFor(`job-completed of ${id}`, () => mgmt.events.find((e) => e.jobId === id && e.kind === 'job-completed'), 20_000);
  return { result: done.result as Awaited<ReturnType<typeof capture>>['result'], out: run.out };
}

/** Text as a file tree holds it (logs, docs, configuration): compresses several times over. */
function textFile(bytes: number, seed: number): Buffer {
  const words = ['kernel', 'netboot', 'package', 'chunk', 'digest', 'deploy', 'capture', 'the', 'of', 'a', 'site', 'agent', 'disk', 'partition'];
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = `${String(seed * 100000 + i).padStart(8, '0')} ${Array.from({ length: 8 }, (_, k) => words[(i * 7 + k * 3 + seed) % words.length]).join(' ')} ${(i * 2654435761) % 1000003}\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

before(async () => {
  mgmt = await management();
  site = await makeTestSite(`[management]\nurl = "${mgmt.url}"\n[interface]\nsettle_ms = 10\n`, 'capture-deflate');
  srcs = [0, 1].map((k) => {
    const tree = join(site.dir, `tree-${k}`);
    const hashes = makeTree(tree, 4, 256 * 1024); // incompressible: 1 MiB of random files
    mkdirSync(join(tree, 'doc'), { recursive: true });
    for (let i = 0; i < 8; i++) {
      const b = textFile(1 * MiB, 10 * k + i);
      writeFileSync(join(tree, `doc/t${i}.txt`), b);
      hashes.set(`doc/t${i}.txt`, sha(b));
    }
    return { disk: gptDisk(join(site.dir, `src-${k}.img`), 48 * MiB, tree), hashes };
  });
  svc = buildInterface(site.config, createMemoryLogger());
  await svc.start();
  await drop('config', { config: { respond: 'known', bootFiles: { bios: 'undionly.kpxe', 'efi-x64': 'snponly.efi' } } });
  await drop('clients', { clients: [{ mac: '52:54:00:00:00:02', action: { type: 'local' } }] });
  await drop('images', { images: [{ id: 'linuxpe-x64', name: 'Linux PE', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'vmlinuz', initrd: ['initrd.img'] }] });
});

after(async () => {
  await svc?.stop();
  site?.cleanup();
  mgmt?.close();
});

test('a capture uploads deflated frames, the site stores the raw chunks (export equal); raw, as an older agent sends, still works and costs far more on the wire', async (t) => {
  const d = await capture('deflated', srcs[0]!.disk, ['--upload-encoding', 'deflate']);
  const up = d.result['x-upload'];
  assert.equal(up.encoding, 'deflate');
  assert.ok(up.chunkBytes > 9 * MiB, JSON.stringify(d.result));
  assert.equal(d.result.bytesWritten, up.chunkBytes, 'bytesWritten: the chunk data stored');
  assert.ok(up.chunksDeflated > 0 && up.chunksDeflated < up.chunks, `some chunks deflated, the random ones raw: ${JSON.stringify(up)}`);
  assert.ok(d.result.bytesTransferred >= up.wireBytes && d.result.bytesTransferred < up.wireBytes + 256 * 1024, JSON.stringify(d.result));
  assert.match(d.out, /MB of data, [\d.]+ MB on the wire, \d+ chunks deflated/);
  const outD = join(site.dir, 'deflated.img');
  await exportTo('deflated', d.result.version, outD);
  checkFiles(outD, srcs[0]!);

  const r = await capture('raw', srcs[1]!.disk, ['--upload-encoding', 'raw']);
  const upR = r.result['x-upload'];
  assert.deepEqual([upR.encoding, upR.chunksDeflated], ['raw', 0]);
  assert.ok(Math.abs(upR.chunkBytes - up.chunkBytes) < 1 * MiB, `disks alike: ${upR.chunkBytes} and ${up.chunkBytes} bytes of chunks`);
  assert.equal(upR.wireBytes, upR.chunkBytes + 36 * upR.chunks, 'raw: the data and a 36-byte header per chunk');
  assert.ok(up.wireBytes < upR.wireBytes * 0.5, `deflated ${up.wireBytes} against raw ${upR.wireBytes} bytes on the wire`);
  t.diagnostic(`deflate: ${JSON.stringify(up)}; raw: ${JSON.stringify(upR)}`);
  const outR = join(site.dir, 'raw.img');
  await exportTo('raw', r.result.version, outR);
  checkFiles(outR, srcs[1]!);
});

test('the agent\'s sink: an incompressible chunk goes raw, a compressible one deflated; the site holds both as they were', async () => {
  const id = await addJob({ task: 'capture', package: 'sink-check' });
  const secret = svc.state.state().jobs!.find((j) => j.jobId === id)!.secret;
  const client = new SiteClient(`127.0.0.1:${svc.boundPort}`, secret, { attempts: 1, baseMs: 10, capMs: 10 });
  try {
    const random = randomBytes(64 * 1024);
    const text = textFile(64 * 1024, 99);
    const sink = new UploadSink(client, 'sink-check', { encoding: 'deflate' });
    await sink.put(sha256Hex(random), random);
    await sink.put(sha256Hex(text), text);
    await sink.finish();
    assert.deepEqual([sink.chunksSent, sink.chunksDeflated, sink.bytesSent], [2, 1, 128 * 1024]);
    assert.ok(sink.frameBytesSent > 64 * 1024 + 72 && sink.frameBytesSent < 64 * 1024 + 72 + 32 * 1024, `${sink.frameBytesSent} bytes on the wire`);
    const { value } = await client.json<{ missing: string[] }>('POST', '/pkg/uploads/sink-check/missing', { digests: [sha256Hex(random), sha256Hex(text)] });
    assert.deepEqual(value.missing, [], 'both held');
    await sink.abort();
  } finally {
    client.close();
  }
});

test('refused: a deflated frame that inflates beyond the largest chunk, one that is not deflate, one whose inflated bytes have another digest; nothing of them is stored', async () => {
  const id = await addJob({ task: 'capture', package: 'bombs' });
  const secret = svc.state.state().jobs!.find((j) => j.jobId === id)!.secret;
  const post = async (path: string, body: Buffer | string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`http://127.0.0.1:${svc.boundPort}/pkg/uploads/bombs/${path}`, { method: 'POST', headers: { authorization: `Bearer ${secret}` }, body: typeof body === 'string' ? body : new Uint8Array(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const frame = (digest: string, data: Buffer, deflated: boolean): Buffer => Buffer.concat([encodeFrameHeader(digest, data.length, deflated), data]);
  const missing = async (digest: string): Promise<unknown> => (await post('missing', JSON.stringify({ digests: [digest] }))).body.missing;

  // A zip bomb: 16 MiB and one byte of zeros, about 16 KB deflated.
  const huge = Buffer.alloc(MAX_FRAME_DATA + 1);
  const bomb = deflateRawSync(huge, { level: 9 });
  assert.ok(bomb.length < 64 * 1024);
  const r1 = await post('chunks', frame(sha256Hex(huge), bomb, true));
  assert.equal(r1.status, 400);
  assert.match(String(r1.body.error), new RegExp(`chunk ${sha256Hex(huge)}: its deflated frame inflates beyond ${MAX_FRAME_DATA} bytes: refused`));
  assert.deepEqual(await missing(sha256Hex(huge)), [sha256Hex(huge)]);

  const junk = randomBytes(4096);
  const r2 = await post('chunks', frame(sha256Hex(junk), junk, true));
  assert.equal(r2.status, 400);
  assert.match(String(r2.body.error), /its deflated frame is not valid deflate data|its deflated frame inflates beyond/);

  const text = textFile(64 * 1024, 7);
  const other = textFile(64 * 1024, 8);
  const r3 = await post('chunks', frame(sha256Hex(text), deflateRawSync(other), true));
  assert.equal(r3.status, 422);
  assert.match(String(r3.body.error), new RegExp(`chunk ${sha256Hex(text)}: its bytes \\(inflated\\) hash to ${sha256Hex(other)}: refused`));
  assert.deepEqual(await missing(sha256Hex(text)), [sha256Hex(text)]);
  assert.deepEqual(await missing(sha256Hex(other)), [sha256Hex(other)]);

  // The same chunk, deflated right, and a raw one (as an older agent sends): stored.
  const raw = randomBytes(8192);
  const ok = await post('chunks', Buffer.concat([frame(sha256Hex(text), deflateRawSync(text), true), frame(sha256Hex(raw), raw, false)]));
  assert.deepEqual([ok.status, ok.body], [200, { stored: 2, bytes: 64 * 1024 + 8192 }]);
  assert.deepEqual(await missing(sha256Hex(text)), []);
  assert.deepEqual(await missing(sha256Hex(raw)), []);
  assert.equal((await post('abort', '{}')).status, 200);
});

test('the upload encoding: raw unless told, deflate, raw or auto by option or environment; anything else refused', () => {
  const none = (): string => '';
  assert.equal(parseOptions([], {}, none).uploadEncoding, 'raw');
  assert.equal(parseOptions(['--upload-encoding', 'raw'], {}, none).uploadEncoding, 'raw');
  assert.equal(parseOptions([], { NETBOOT_UPLOAD_ENCODING: 'deflate' }, none).uploadEncoding, 'deflate');
  assert.equal(parseOptions(['--upload-encoding', 'auto'], { NETBOOT_UPLOAD_ENCODING: 'raw' }, none).uploadEncoding, 'auto', 'the option before the environment');
  assert.throws(() => parseOptions(['--upload-encoding', 'zstd'], {}, none), (e: unknown) => e instanceof UsageError && /--upload-encoding zstd: expected deflate, raw or auto/.test(e.message));
});

test('a site from before deflated uploads refuses a deflated frame: the agent sends that batch again raw, and all raw from then on', async () => {
  const frames: { digest: string; deflated: boolean }[] = [];
  const old = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      if (req.url!.endsWith('/missing')) return void res.end(JSON.stringify({ missing: (JSON.parse(body.toString()) as { digests: string[] }).digests }));
      const got = new FrameParser().push(body);
      const bad = got.find((f) => f.deflated);
      if (bad !== undefined) return void res.writeHead(400).end(JSON.stringify({ error: `chunk ${bad.digest}: frames must carry the chunk's raw bytes` }));
      for (const f of got) frames.push({ digest: f.digest, deflated: f.deflated });
      res.end(JSON.stringify({ stored: got.length, bytes: 0 }));
    });
  });
  await new Promise<void>((r) => old.listen(0, '127.0.0.1', r));
  const client = new SiteClient(`127.0.0.1:${(old.address() as AddressInfo).port}`, '0'.repeat(64), { attempts: 1, baseMs: 10, capMs: 10 });
  try {
    const sink = new UploadSink(client, 'old-site', { encoding: 'deflate' });
    const text = textFile(64 * 1024, 5);
    await sink.put(sha256Hex(text), text);
    await sink.finish();
    const more = textFile(64 * 1024, 6);
    await sink.put(sha256Hex(more), more);
    await sink.finish();
    assert.deepEqual(frames, [{ digest: sha256Hex(text), deflated: false }, { digest: sha256Hex(more), deflated: false }]);
    assert.deepEqual([sink.chunksSent, sink.chunksDeflated], [2, 0]);
  } finally {
    client.close();
    old.close();
  }
});
