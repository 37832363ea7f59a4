// The MTFTP service as one Lifecycle part: the TFTP server over the configured root, with the
// boot hooks it is given (main.ts builds it). Usable in-process (tests bind port 0 and read `port`).
import { existsSync } from 'node:fs';
import type { ServiceStatusBody } from '../../platform/local/control.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import type { TftpRoot } from './tftp-root.ts';
import type { TftpServer } from './tftp-server.ts';

export interface MtftpStatus extends ServiceStatusBody {
  readonly service: 'mtftp';
  readonly pid: number;
  readonly state: 'starting' | 'serving' | 'stopping';
  readonly ports: { readonly tftp: number };
  readonly transfers: number;
  /** How transfer sockets send: native UDP GSO, native sendmmsg, or node:dgram. */
  readonly sendPath: 'gso' | 'sendmmsg' | 'dgram';
  /** Start-up checks that would fail requests (a missing TFTP root). */
  readonly warnings: readonly string[];
}

export class MtftpService implements Lifecycle {
  private warnings: readonly string[] = [];

  /** Built by main.ts (buildMtftp) with its TFTP server over the configured root. */
  constructor(private readonly server: TftpServer, private readonly root: TftpRoot, private readonly log: Logger) {}

  async start(): Promise<void> {
    // A start-up check that would fail every request: a warning, in the log and the status.
    this.warnings = existsSync(this.root.dir) ? [] : [`tftp_root ${this.root.dir} does not exist: every request will fail`];
    for (const w of this.warnings) this.log.warn(w);
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
      warnings: this.warnings,
    };
  }
}
