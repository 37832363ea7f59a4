// The throttled scrub: every so often, re-hash every file of every Ready version at a capped
// read rate, and report damage for repair. Finds what watching cannot (bit rot, a write that
// raced the watcher, damage while the service was down).
import type { Logger } from '../platform/runtime/logger.ts';
import { versionDir } from './layout.ts';
import type { PackageStore } from './package-store.ts';
import { RateLimiter, verifyFile } from './verify.ts';

export interface ScrubTarget {
  readonly store: PackageStore;
  /** A sync or repair is running for the package: skip it this pass. */
  busy(pkg: string): boolean;
  onDamage(pkg: string, digest: string, path: string, reason: string): void;
}

export class Scrubber {
  private stopped = false;
  private wake: (() => void) | null = null;
  private done: Promise<void> | null = null;

  constructor(
    private readonly target: ScrubTarget,
    private readonly intervalMs: number,
    private readonly rateMib: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.done;
  }

  private pause(): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, this.intervalMs);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async loop(): Promise<void> {
    const { store } = this.target;
    const limiter = new RateLimiter(this.rateMib * 1024 * 1024);
    await this.pause();
    while (!this.stopped) {
      let checked = 0;
      let damaged = 0;
      for (const s of store.db.allStatuses()) {
        if (this.stopped) return;
        if (s.state !== 'ready' || s.digest === null || this.target.busy(s.package)) continue;
        const m = store.manifest(s.digest);
        if (m === null) continue;
        for (const f of m.files) {
          if (this.stopped) return;
          if (this.target.busy(s.package) || store.currentDigest(s.package) !== s.digest) break;
          const p = await verifyFile(versionDir(store.root, s.package, s.digest), f, limiter, () => this.stopped, store.segmented(m, f));
          checked++;
          if (p !== null && !this.stopped) {
            damaged++;
            this.target.onDamage(s.package, s.digest, p.path, `scrub: ${p.reason}`);
          }
        }
      }
      this.log.info('scrub pass done', { files: checked, damaged });
      await this.pause();
    }
  }
}
