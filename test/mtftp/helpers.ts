// Helpers for the MTFTP tests: a running service on a temp site, real client processes with a
// bounded run time, file digests, and a scripted TFTP client on a plain UDP socket for the cases
// a real client cannot produce (forged packets, a client that stops ACKing, raw file names).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SEND_PATHS, type Config, type SendPath } from '../../platform/runtime/config.ts';
import { createMemoryLogger, type LogFields, type Logger } from '../../platform/runtime/logger.ts';
import { NO_BOOT_HOOKS, type BootHooks } from '../../services/mtftp/boot-hooks.ts';
import type { MtftpService } from '../../services/mtftp/mtftp-service.ts';
import { buildMtftp } from '../../services/mtftp/main.ts';
import { makeTestSite, type TestSite } from '../helpers/env.ts';
import { ensureAddonBuilt } from '../helpers/native-build.ts';

export interface RunningService {
  readonly site: TestSite;
  readonly service: MtftpService;
  readonly log: Logger & { records: LogFields[] };
  readonly root: string;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * The send path the service tests run on: NETBOOT_TEST_SEND_PATH (send-paths.test.ts runs the
 * wire tests again with each one), else the default (auto: native GSO here).
 */
export function testSendPath(): SendPath {
  const v = process.env.NETBOOT_TEST_SEND_PATH ?? 'auto';
  if (!(SEND_PATHS as readonly string[]).includes(v)) throw new Error(`NETBOOT_TEST_SEND_PATH: unknown send path ${v}`);
  return v as SendPath;
}

/** A service on 127.0.0.1 and a kernel-chosen port, over a fresh temp site. */
export async function startService(opts: { hooks?: BootHooks; mtftp?: Partial<Config['mtftp']>; log?: Logger & { records: LogFields[] } } = {}): Promise<RunningService> {
  ensureNativeBuilt(); // the service takes the native path when it is there: never a stale one
  const site = await makeTestSite('', 'netboot-mtftp');
  const config: Config = { ...site.config, mtftp: { ...site.config.mtftp, port: 0, sendPath: testSendPath(), ...opts.mtftp } };
  const log = opts.log ?? createMemoryLogger('debug');
  const service = buildMtftp(config, log, opts.hooks ?? NO_BOOT_HOOKS);
  await service.start();
  const wanted = config.mtftp.sendPath;
  if (wanted !== 'auto' && service.sendPath !== wanted) throw new Error(`service runs on ${service.sendPath}, not ${wanted}`);
  return {
    site,
    service,
    log,
    root: config.paths.tftpRoot,
    port: service.port,
    async stop() {
      await service.stop();
      site.cleanup();
    },
  };
}

/** Writes `data` (or `size` random bytes) to root/rel; returns the bytes. */
export function putFile(root: string, rel: string, data: Buffer | number): Buffer {
  const bytes = typeof data === 'number' ? randomBytes(data) : data;
  const path = join(root, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return bytes;
}

export function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

export function md5File(path: string): string {
  return md5(readFileSync(path));
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program, killing it (by pid) if it outlives `timeoutMs`. */
export function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A program that exits before reading its input closes the pipe: EPIPE then says nothing
    // about the result (its exit code and output do), and unhandled it would crash the test run.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Records whose message and fields match. */
export function logged(log: { records: LogFields[] }, msg: string, match: (r: LogFields) => boolean = () => true): LogFields[] {
  return log.records.filter((r) => r.msg === msg && match(r));
}

export function rrq(filename: string | Buffer, mode = 'octet', options: Record<string, string> = {}): Buffer {
  const parts: Buffer[] = [Buffer.from([0, 1]), typeof filename === 'string' ? Buffer.from(filename, 'latin1') : filename, Buffer.from([0])];
  parts.push(Buffer.from(mode + '\0', 'latin1'));
  for (const [k, v] of Object.entries(options)) parts.push(Buffer.from(`${k}\0${v}\0`, 'latin1'));
  return Buffer.concat(parts);
}

export function ack(block: number): Buffer {
  return Buffer.from([0, 4, (block >> 8) & 0xff, block & 0xff]);
}

/** A UDP socket that queues what it receives, for scripted exchanges. */
export class ScriptedClient {
  readonly socket: Socket;
  private readonly queue: { msg: Buffer; rinfo: RemoteInfo }[] = [];
  private waiter: (() => void) | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      this.queue.push({ msg, rinfo });
      this.waiter?.();
    });
  }

  static async open(address = '127.0.0.1'): Promise<ScriptedClient> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, address, resolve));
    return new ScriptedClient(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(msg: Buffer, port: number, address = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(msg, port, address, (err) => (err ? reject(err) : resolve())));
  }

  /** The next datagram, or null after `timeoutMs`. */
  async next(timeoutMs = 3000): Promise<{ msg: Buffer; rinfo: RemoteInfo } | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
    return this.queue.shift() ?? null;
  }

  /** Drains what arrived so far. */
  drain(): { msg: Buffer; rinfo: RemoteInfo }[] {
    return this.queue.splice(0);
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * Downloads `file` lock-step with the scripted client (octet, optional options), ACKing from
 * `client`; returns the bytes and the server's transfer port. Bounded by `timeoutMs` overall.
 */
export async function scriptedDownload(client: ScriptedClient, port: number, file: string, options: Record<string, string> = {}, timeoutMs = 10000): Promise<{ data: Buffer; serverPort: number }> {
  const deadline = Date.now() + timeoutMs;
  await client.send(rrq(file, 'octet', options), port);
  let blockSize = 512;
  const chunks: Buffer[] = [];
  let expected = 1;
  let serverPort = -1;
  for (;;) {
    const got = await client.next(Math.max(1, deadline - Date.now()));
    if (got === null) throw new Error(`scripted download of ${file} timed out`);
    const { msg, rinfo } = got;
    if (serverPort === -1) serverPort = rinfo.port;
    if (rinfo.port !== serverPort) continue;
    const op = msg.readUInt16BE(0);
    if (op === 6) {
      const parts = msg.subarray(2).toString('latin1').split('\0');
      const i = parts.indexOf('blksize');
      if (i >= 0) blockSize = Number(parts[i + 1]);
      await client.send(ack(0), serverPort);
      continue;
    }
    if (op === 5) throw new Error(`server sent ERROR ${msg.readUInt16BE(2)} ${msg.subarray(4).toString('latin1')}`);
    if (op !== 3) continue;
    const block = msg.readUInt16BE(2);
    if (block === (expected & 0xffff)) {
      chunks.push(msg.subarray(4));
      expected++;
    }
    await client.send(ack((expected - 1) & 0xffff), serverPort);
    if (block === ((expected - 1) & 0xffff) && msg.length - 4 < blockSize) return { data: Buffer.concat(chunks), serverPort };
  }
}

/** native/udp-link built and not older than its sources (test/helpers/native-build.ts). */
export function ensureNativeBuilt(): void {
  ensureAddonBuilt('udp-link', 'udp_link.node');
}
