// The test's handle on the management-server stand-in (outside the product, real HTTP): starts it
// in a namespace, sets the start-up state it serves, and reads the requests it received.
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cleanup } from './cleanup.ts';
import { Running, inNamespace } from './processes.ts';

const MAIN = fileURLToPath(new URL('./management-stand-in-main.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../../../node_modules/tsx/dist/loader.mjs', import.meta.url));

export interface StandInRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly body: unknown;
}

export interface PxeEvent {
  readonly eventId: string;
  readonly server: string;
  readonly kind: string;
  readonly mac?: string;
  readonly image?: string;
  readonly [k: string]: unknown;
}

export class ManagementStandIn {
  private constructor(private readonly proc: Running, private readonly answerFile: string, readonly port: number) {}

  static async start(namespace: string, port: number, dir: string, answer: unknown, cleanup: Cleanup): Promise<ManagementStandIn> {
    const answerFile = join(dir, 'startup-answer.json');
    const [command, args] = inNamespace(namespace, process.execPath, ['--import', TSX, MAIN, String(port), answerFile]);
    writeAnswer(answerFile, answer);
    const proc = new Running('management stand-in', command, args, join(dir, 'management-stand-in.log'), cleanup);
    await proc.waitFor(/"listening"/, 15000);
    return new ManagementStandIn(proc, answerFile, port);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** What GET /pxe/startup answers from now on. */
  setStartup(answer: unknown): void {
    writeAnswer(this.answerFile, answer);
  }

  requests(): StandInRequest[] {
    return this.proc.output
      .split('\n')
      .filter((l) => l.startsWith('{"request"'))
      .map((l) => (JSON.parse(l) as { request: StandInRequest }).request);
  }

  count(method: string, path: string): number {
    return this.requests().filter((r) => r.method === method && r.path === path).length;
  }

  /** Every event posted to /pxe/events so far. */
  events(): PxeEvent[] {
    return this.requests()
      .filter((r) => r.method === 'POST' && r.path === '/pxe/events')
      .flatMap((r) => ((r.body as { events?: PxeEvent[] } | null)?.events ?? []));
  }
}

function writeAnswer(file: string, answer: unknown): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(answer));
  renameSync(`${file}.tmp`, file);
}
