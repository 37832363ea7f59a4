// MTFTP's copy of the PXE server's view (boot/tftp-view.ts), followed on the local
// channel: netboot/ paths are resolved here, by the server's own pure resolver (imported, not
// copied), with no second process in the way while a machine waits for its first packet. Measured
// beside QEMU guests on two cores, the question to the server took 2 to 29 ms per file; dnsmasq
// answers in 0.3 ms. While the copy is not current (not received yet, or the connection is gone)
// the server is asked per request instead, so a copy that is not there costs time, never a boot.
import { readyPackagePath } from '../../packages/layout.ts';
import { tftpTarget } from '../../boot/tftp-resolve.ts';
import { TFTP_VIEW_TOPIC, type TftpView, type TftpViewPush } from '../../boot/tftp-view.ts';
import { errorMessage } from '../../platform/runtime/errors.ts';
import { applyChange, type FeedState } from '../../boot/feed-protocol.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { ChannelClient } from '../../platform/local/local-channel.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import type { VirtualTarget } from './boot-hooks.ts';
import { enrolSecrets } from '../../boot/enrol-secret.ts';
import { LocalKey } from '../../platform/trust/local-key.ts';

export const FOLLOW_RETRY_MIN_MS = 500;
export const FOLLOW_RETRY_MAX_MS = 10000;

export interface ViewPaths {
  readonly tftpRoot: string;
  /** The data folder: where the Ready package versions are. */
  readonly data: string;
  /** Boot HTTP's port when it is on (GRUB configurations then load kernels over HTTP). */
  readonly httpPort?: number;
}

export class ServerView implements Lifecycle {
  private state: FeedState | null = null;
  private consumed: ReadonlySet<string> = new Set();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private retryMs = FOLLOW_RETRY_MIN_MS;
  /** Initial deployment's enrolment secrets, from the site server's local key (read on first use). */
  private readonly enrolSecret: (mac: string) => string;

  constructor(
    private readonly channel: ChannelClient,
    private readonly paths: ViewPaths,
    private readonly log: Logger,
  ) {
    const localKey = LocalKey.of(paths.data);
    this.enrolSecret = enrolSecrets(() => localKey.get());
  }

  /** The copy is there and being kept up to date. */
  get current(): boolean {
    return this.state !== null;
  }

  async start(): Promise<void> {
    this.running = true;
    this.follow(); // not waited for: until it is current, requests go to the server
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.state = null;
  }

  /** What the server would answer for `path`, or null when the copy is not current (ask it). */
  resolve(path: string): VirtualTarget | null {
    if (this.state === null) return null;
    const t = tftpTarget(path, this.state, { consumed: this.consumed, httpPort: this.paths.httpPort, enrolSecret: this.enrolSecret }, this.paths.tftpRoot, (id) => readyPackagePath(this.paths.data, id));
    return t.type === 'content' ? { type: 'content', data: Buffer.from(t.text, 'utf8') } : t;
  }

  private follow(): void {
    this.channel.follow('tftp.follow', null, (topic, body) => this.onPush(topic, body), (reason) => this.lost(reason)).then(
      (body) => {
        if (!this.running) return;
        const view = body as TftpView;
        if (!isState(view?.state) || !isMacList(view.consumed)) return this.resync('the server sent a view of the wrong shape');
        this.state = view.state;
        this.consumed = new Set(view.consumed);
        this.retryMs = FOLLOW_RETRY_MIN_MS;
        this.log.info('following the PXE server\'s view: netboot/ paths are resolved here', { clients: view.state.clients?.length ?? 0, images: view.state.images?.length ?? 0 });
      },
      (err: unknown) => this.retry(`cannot follow the PXE server's view: ${errorMessage(err)}`),
    );
  }

  private onPush(topic: string, body: unknown): void {
    if (topic !== TFTP_VIEW_TOPIC || this.state === null) return;
    const push = body as TftpViewPush;
    try {
      if (!isMacList(push?.consumed)) throw new Error('no consumed list');
      if (push.state !== undefined) {
        if (!isState(push.state)) throw new Error('state of the wrong shape');
        this.state = push.state;
      } else if (push.change !== undefined) {
        this.state = applyChange(this.state, push.change);
      }
      this.consumed = new Set(push.consumed);
    } catch (err) {
      this.resync(`a push could not be applied: ${errorMessage(err)}`);
    }
  }

  /** The copy can no longer be trusted: drop it and the connection, follow again. */
  private resync(reason: string): void {
    this.log.warn('dropped the copy of the PXE server\'s view; asking per request until it is back', { reason });
    this.state = null;
    this.channel.close(); // the close reports lost(), which follows again
  }

  private lost(reason: string): void {
    const was = this.state !== null;
    this.state = null;
    if (was && this.running) this.log.info('lost the PXE server\'s view; asking per request until it is back', { reason });
    this.retry(null);
  }

  private retry(reason: string | null): void {
    if (!this.running) return;
    if (reason !== null) this.log.info(reason, { retryMs: this.retryMs });
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.running) this.follow();
    }, this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(this.retryMs * 2, FOLLOW_RETRY_MAX_MS);
  }
}

function isState(s: unknown): s is FeedState {
  return typeof s === 'object' && s !== null && 'config' in s && 'clients' in s && 'images' in s;
}

function isMacList(x: unknown): x is string[] {
  return Array.isArray(x) && x.every((m) => typeof m === 'string');
}
