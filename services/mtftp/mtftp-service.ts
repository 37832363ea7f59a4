// The MTFTP service as one Lifecycle part: the TFTP server over the configured root, with the
// boot hooks it is given. Usable in-process (tests bind port 0 and read `port`).
import type { Config } from '../../platform/runtime/config.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import type { BootHooks } from './boot-hooks.ts';
import { TftpRoot } from './tftp-root.ts';
import { TftpServer } from './tftp-server.ts';

export interface MtftpStatus {
  readonly service: 'mtftp';
  readonly pid: number;
  readonly state: 'starting' | 'serving' | 'stopping';
  readonly ports: { readonly tftp: number };
  readonly transfers: number;
  /** How transfer sockets send: native UDP GSO, native sendmmsg, or node:dgram. */
  readonly sendPath: 'gso' | 'sendmmsg' | 'dgram';
}

export class MtftpService implements Lifecycle {
  private readonly server: TftpServer;

  constructor(config: Config, log: Logger, hooks: BootHooks) {
    const m = config.mtftp;
    this.server = new TftpServer({
      bind: m.bind,
      port: m.port,
      root: new TftpRoot(config.paths.tftpRoot),
      limits: { maxBlockSize: m.maxBlockSize, maxWindowSize: m.maxWindowSize, timeoutMs: m.timeoutMs, retries: m.retries },
      hooks,
      log,
      sendPath: m.sendPath,
      maxTransfers: m.maxTransfers,
      maxTransfersPerClient: m.maxTransfersPerClient,
      maxSessionMs: m.maxSessionS * 1000,
    });
  }

  async start(): Promise<void> {
    await this.server.start();
  }

  async stop(): Promise<void> {
    await this.server.stop();
  }

  /** The bound UDP port (the configured one, or the one the kernel chose for port 0). */
  get port(): number {
    return this.server.port;
  }

  get sendPath(): 'gso' | 'sendmmsg' | 'dgram' {
    return this.server.sendPath;
  }

  get activeTransfers(): number {
    return this.server.activeTransfers;
  }

  /** Bytes of transfer buffers held now. */
  get bufferBytes(): number {
    return this.server.bufferBytes;
  }

  status(): MtftpStatus {
    const s = this.server.state;
    return {
      service: 'mtftp',
      pid: process.pid,
      state: s === 'serving' ? 'serving' : s === 'new' || s === 'starting' ? 'starting' : 'stopping',
      ports: { tftp: this.server.port },
      transfers: this.server.activeTransfers,
      sendPath: this.server.sendPath,
    };
  }
}
