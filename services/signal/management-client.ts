// HTTP to the management server (outside the product): the start-up query and the one-time
// registration. Owns nothing but requests; each is bounded by config.management.timeoutMs.
import { NetbootError, errorMessage } from '../../platform/runtime/errors.ts';
import { StartupAnswerError } from './startup-documents.ts';

export interface Registration {
  readonly serverId: string;
  readonly name: string;
  readonly addresses: readonly string[];
  readonly version: string;
}

export class ManagementUnreachableError extends NetbootError {
  constructor(message: string) {
    super('MANAGEMENT_UNREACHABLE', message);
  }
}

export class ManagementRefusedError extends NetbootError {
  constructor(readonly status: number, message: string) {
    super('MANAGEMENT_REFUSED', message);
  }
}

export class ManagementClient {
  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs: number,
  ) {}

  /** GET /pxe/startup?server=ID: the answer, parsed but not yet validated. */
  async startup(serverId: string, abort?: AbortSignal): Promise<unknown> {
    const text = await this.request('GET', `/pxe/startup?server=${encodeURIComponent(serverId)}`, undefined, abort);
    try {
      return JSON.parse(text);
    } catch {
      throw new StartupAnswerError(`answer is not JSON (${text.length} bytes, starting ${JSON.stringify(text.slice(0, 40))})`);
    }
  }

  async register(registration: Registration, abort?: AbortSignal): Promise<void> {
    await this.request('POST', '/pxe/register', registration, abort);
  }

  private async request(method: string, path: string, body: unknown, abort?: AbortSignal): Promise<string> {
    const url = `${this.baseUrl}${path}`;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: abort === undefined ? timeout : AbortSignal.any([timeout, abort]),
      });
      text = await res.text();
    } catch (err) {
      throw new ManagementUnreachableError(`${method} ${url}: ${describeFetchError(err, timeout, this.timeoutMs)}`);
    }
    if (!res.ok) throw new ManagementRefusedError(res.status, `${method} ${url}: HTTP ${res.status} ${text.slice(0, 200)}`.trim());
    return text;
  }
}

function describeFetchError(err: unknown, timeout: AbortSignal, timeoutMs: number): string {
  if (timeout.aborted) return `no answer within ${timeoutMs} ms`;
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  if (cause?.code !== undefined) return cause.code;
  return cause?.message ?? errorMessage(err);
}
