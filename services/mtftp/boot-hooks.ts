// The MTFTP service's two questions for the PXE server: what a virtual path (under `netboot/`)
// means for this client, and "this client finished fetching this file" (for `once` actions).
// In production they go to the server's local channel, the first mostly answered from the
// followed copy of the server's view (server-view.ts); tests pass their own object.
import { errorMessage } from '../../platform/runtime/errors.ts';
import type { ChannelClient } from '../../platform/local/local-channel.ts';
import type { ServerView } from './server-view.ts';
import type { Logger } from '../../platform/runtime/logger.ts';

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
  /**
   * Called once a transfer of a virtual path completed (its last block acknowledged), after the
   * transfer: off the path of any packet. Must not throw.
   */
  fetched(info: FetchedInfo): void;
}

/** No PXE server attached: every virtual path is absent. */
export const NO_BOOT_HOOKS: BootHooks = {
  resolveVirtual: async () => ({ type: 'none', reason: 'no PXE server attached' }),
  fetched: () => undefined,
};

/** The wire form of the `tftp.resolve` reply. */
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

/**
 * Hooks for the PXE server on its local channel (`<data>/run/server.channel.sock`): netboot/ paths
 * are resolved from the followed copy of the server's view when it is current, else asked for.
 */
export function serverBootHooks(channel: ChannelClient, view: ServerView, log: Logger): BootHooks {
  return {
    async resolveVirtual(path, client) {
      const local = view.resolve(path);
      if (local !== null) return local;
      try {
        return parseReply(await channel.call<ResolveReply>('tftp.resolve', { path, address: client.address, port: client.port }));
      } catch (err) {
        return { type: 'none', reason: `PXE server did not answer: ${errorMessage(err)}` };
      }
    },
    fetched(info) {
      channel.call('tftp.fetched', info).catch((err: unknown) =>
        log.warn('could not tell the PXE server about a completed transfer', { path: info.path, peer: `${info.address}:${info.port}`, reason: errorMessage(err) }),
      );
    },
  };
}
