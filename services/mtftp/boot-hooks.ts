// The MTFTP service's two questions for the PXE server: what a virtual path (under `netboot/`)
// means for this client, and "this client finished fetching this file" (for `once` actions).
// In production they travel over the server's control socket; tests pass their own object.
import { Agent } from 'node:http';
import { controlCall, HttpError } from '../shared/control.ts';
import { errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';

/** Paths under this prefix are answered by the server, never looked up in the TFTP root. */
export const VIRTUAL_PREFIX = 'netboot/';

export interface Client {
  readonly address: string;
  readonly port: number;
}

export type VirtualTarget =
  | { readonly type: 'file'; readonly path: string }
  | { readonly type: 'content'; readonly data: Buffer }
  | { readonly type: 'none'; readonly reason: string };

export interface FetchedInfo {
  /** The requested path, normalised (`/` separators, no leading separator). */
  readonly path: string;
  /** The file actually sent, when it was a file. */
  readonly resolvedPath?: string;
  readonly address: string;
  readonly port: number;
  readonly bytes: number;
  readonly durationMs: number;
}

export interface BootHooks {
  resolveVirtual(path: string, client: Client): Promise<VirtualTarget>;
  /** Called once a transfer completed (its last block acknowledged). Must not throw. */
  fetched(info: FetchedInfo): void;
}

/** No PXE server attached: every virtual path is absent. */
export const NO_BOOT_HOOKS: BootHooks = {
  resolveVirtual: async () => ({ type: 'none', reason: 'no PXE server attached' }),
  fetched: () => undefined,
};

/** The wire form of POST /tftp/resolve's reply. */
type ResolveReply = { type: 'file'; path: string } | { type: 'content'; dataBase64: string } | { type: 'none'; reason: string };

function parseReply(reply: unknown): VirtualTarget {
  const r = reply as Partial<Record<string, unknown>> | null;
  if (typeof r === 'object' && r !== null) {
    if (r.type === 'file' && typeof r.path === 'string' && r.path !== '') return { type: 'file', path: r.path };
    if (r.type === 'content' && typeof r.dataBase64 === 'string') return { type: 'content', data: Buffer.from(r.dataBase64, 'base64') };
    if (r.type === 'none' && typeof r.reason === 'string') return { type: 'none', reason: r.reason };
  }
  throw new Error(`unexpected reply from the server: ${JSON.stringify(reply).slice(0, 200)}`);
}

/** Hooks that ask the PXE server over its control socket. */
export function controlBootHooks(serverSocket: string, log: Logger, timeoutMs = 2000): BootHooks {
  // Kept-alive connections: a boot fetches several netboot/ files within a second, and a fresh
  // connection per file showed up in boot times. A connection the server closed (it restarted)
  // fails once; the call is then made again on a new one.
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const call = async <T>(path: string, body: unknown): Promise<T> => {
    try {
      return await controlCall<T>(serverSocket, 'POST', path, body, timeoutMs, agent);
    } catch (err) {
      if (err instanceof HttpError) throw err;
      return controlCall<T>(serverSocket, 'POST', path, body, timeoutMs, agent);
    }
  };
  return {
    async resolveVirtual(path, client) {
      try {
        const reply = await call<ResolveReply>('/tftp/resolve', { path, address: client.address, port: client.port });
        return parseReply(reply);
      } catch (err) {
        return { type: 'none', reason: `PXE server did not answer: ${errorMessage(err)}` };
      }
    },
    fetched(info) {
      call('/tftp/fetched', info).catch((err: unknown) =>
        log.warn('could not tell the PXE server about a completed transfer', { path: info.path, peer: `${info.address}:${info.port}`, reason: errorMessage(err) }),
      );
    },
  };
}
