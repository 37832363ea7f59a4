// The agent's HTTP client for the site's Interface (TCP 490): every request carries the job's
// secret (`Authorization: Bearer`). A network error, a timeout or a 502/503/504 is retried with
// backoff (bounded: the site server may be restarting), then the call fails. A 410 from the agent
// API means the job was cancelled: the client is cancelled at once (every request in flight is
// aborted, every later one refused), and whoever asked is told with CancelledError. node:http
// only (the preboot environment runs Node 18).
import { Agent, request } from 'node:http';
import { backoffDelayMs } from '../../platform/runtime/backoff.ts';
import { NetbootError } from '../../platform/runtime/errors.ts';
import { sleep } from '../../platform/runtime/sleep.ts';

export class CancelledError extends NetbootError {
  constructor() {
    super('JOB_CANCELLED', 'the job was cancelled by the site');
  }
}

/** An answer of the site that is not a success (4xx, or 5xx after the retries). */
export class SiteError extends NetbootError {
  constructor(readonly status: number, readonly path: string, message: string) {
    super('SITE_REFUSED', `${path}: ${status} ${message}`);
  }
}

export interface SiteAnswer {
  readonly status: number;
  readonly body: Buffer;
}

export interface RequestOptions {
  readonly body?: Buffer | string;
  readonly contentType?: string;
  /** Larger answers are refused (default 64 MiB). */
  readonly maxBytes?: number;
  /** Statuses returned rather than thrown (besides 2xx). */
  readonly accept?: readonly number[];
  readonly timeoutMs?: number;
}

export interface ClientPolicy {
  /** Attempts of one request before it fails (default 8: about a minute of backoff). */
  readonly attempts: number;
  readonly baseMs: number;
  readonly capMs: number;
}

const RETRY_STATUS = new Set([502, 503, 504]);
const DEFAULT_POLICY: ClientPolicy = { attempts: 8, baseMs: 500, capMs: 15_000 };

export class SiteClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });
  private readonly abort = new AbortController();
  private cancelled = false;
  /** Called once, when a 410 arrives. */
  onCancel: () => void = () => {};
  /** Called for every answer (the --trace file). */
  onAnswer: (method: string, path: string, status: number) => void = () => {};

  constructor(readonly server: string, private readonly secret: string, private readonly policy: ClientPolicy = DEFAULT_POLICY, private readonly say: (line: string) => void = () => {}) {}

  get isCancelled(): boolean {
    return this.cancelled;
  }

  /** The site said 410: nothing more is asked, anything in flight is dropped. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.abort.abort();
    this.onCancel();
  }

  close(): void {
    this.agent.destroy();
  }

  async json<T>(method: 'GET' | 'POST', path: string, body?: unknown, accept?: readonly number[]): Promise<{ status: number; value: T }> {
    const r = await this.call(method, path, { ...(body === undefined ? {} : { body: JSON.stringify(body), contentType: 'application/json' }), accept });
    let value: T;
    try {
      value = JSON.parse(r.body.toString('utf8')) as T;
    } catch {
      throw new SiteError(r.status, path, 'answer is not JSON');
    }
    return { status: r.status, value };
  }

  /** One request, retried while the network or the server is away. */
  async call(method: 'GET' | 'POST', path: string, opts: RequestOptions = {}): Promise<SiteAnswer> {
    let lastError = '';
    for (let attempt = 1; ; attempt++) {
      if (this.cancelled) throw new CancelledError();
      let answer: SiteAnswer | null = null;
      try {
        answer = await this.once(method, path, opts);
      } catch (err) {
        if (this.cancelled) throw new CancelledError();
        lastError = (err as Error).message;
      }
      if (answer !== null) {
        this.onAnswer(method, path, answer.status);
        if (answer.status === 410 && path.startsWith('/agent/')) {
          this.cancel();
          throw new CancelledError();
        }
        if (answer.status < 300 || opts.accept?.includes(answer.status)) return answer;
        const message = errorText(answer.body);
        if (!RETRY_STATUS.has(answer.status)) throw new SiteError(answer.status, path, message);
        lastError = `${answer.status} ${message}`;
      }
      if (attempt >= this.policy.attempts) throw new NetbootError('SITE_UNREACHABLE', `${method} ${path} on ${this.server}: ${lastError} (gave up after ${attempt} attempts)`);
      const waitMs = backoffDelayMs(attempt, this.policy);
      this.say(`site ${this.server}: ${lastError}; trying again in ${(waitMs / 1000).toFixed(1)} s`);
      await sleep(waitMs, this.abort.signal);
    }
  }

  private once(method: string, path: string, opts: RequestOptions): Promise<SiteAnswer> {
    const [host, port] = splitHostPort(this.server);
    const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body, 'utf8');
    const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
    return new Promise<SiteAnswer>((resolve, reject) => {
      const req = request({
        host, port, method, path, agent: this.agent, signal: this.abort.signal, timeout: opts.timeoutMs ?? 60_000,
        headers: {
          authorization: `Bearer ${this.secret}`,
          ...(body === undefined ? {} : { 'content-type': opts.contentType ?? 'application/octet-stream', 'content-length': String(body.length) }),
        },
      }, (res) => {
        const parts: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > maxBytes) {
            req.destroy(new Error(`answer larger than ${maxBytes} bytes`));
            return;
          }
          parts.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
        res.on('error', reject);
        res.on('aborted', () => reject(new Error('answer cut short')));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer in ${opts.timeoutMs ?? 60_000} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}

export function splitHostPort(server: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(server);
  if (m === null) throw new NetbootError('BAD_SERVER', `server ${server}: expected HOST:PORT`);
  return [m[1]!, Number(m[2])];
}

function errorText(body: Buffer): string {
  const text = body.toString('utf8').trim();
  try {
    const v = JSON.parse(text) as { error?: unknown };
    if (typeof v.error === 'string') return v.error;
  } catch {
    // not JSON: the text itself
  }
  return text.slice(0, 300);
}
