// What the agent shows on the machine's console (its stdout: LinuxPE's /init put it on the
// serial console and the screen): one line per step, and per phase a progress line with the
// percentage, MB done of MB and MB/s. On a terminal the progress line is redrawn in place (at
// most 4 times a second); otherwise (a log, a test) a line is printed at most every 5 s.

export interface Screen {
  write(text: string): void;
  readonly isTTY: boolean;
}

const MB = 1_000_000;

export function mb(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}

/** `moved`: the bytes done within the phase's `seconds` (default all of `done`), for the rate. */
export function progressText(phase: string, done: number, total: number, seconds: number, moved = done): string {
  const pct = total > 0 ? Math.min(100, Math.floor((done * 100) / total)) : 100;
  const rate = seconds > 0 ? moved / MB / seconds : 0;
  return `${phase.padEnd(14)} ${String(pct).padStart(3)}%  ${(done / MB).toFixed(1)}/${(total / MB).toFixed(1)} MB  ${rate.toFixed(1)} MB/s`;
}

export class AgentConsole {
  private phase: { name: string; startMs: number; startDone: number; done: number; total: number; shownMs: number; shownDone: number } | null = null;
  private open = false;

  constructor(private readonly screen: Screen, private readonly now: () => number = Date.now) {}

  /** A line of its own (a progress line being drawn is finished first). */
  say(text: string): void {
    this.breakLine();
    this.screen.write(`${text}\n`);
  }

  /** Progress of a phase; the engine's final `done` report ends the phase shown. */
  progress(name: string, done: number, total: number): void {
    const t = this.now();
    if (name === 'done') {
      this.endPhase();
      return;
    }
    if (this.phase === null || this.phase.name !== name) {
      this.endPhase();
      this.phase = { name, startMs: t, startDone: done, done, total, shownMs: Number.NEGATIVE_INFINITY, shownDone: -1 };
    }
    this.phase.done = done;
    this.phase.total = total;
    const every = this.screen.isTTY ? 250 : 5000;
    if (t - this.phase.shownMs >= every) this.show();
  }

  /** The phase's last progress line (100 % when it finished). */
  endPhase(): void {
    if (this.phase === null) return;
    if (this.phase.shownDone !== this.phase.done) this.show();
    this.breakLine();
    this.phase = null;
  }

  private show(): void {
    const p = this.phase!;
    p.shownMs = this.now();
    p.shownDone = p.done;
    const text = progressText(p.name, p.done, p.total, (p.shownMs - p.startMs) / 1000, p.done - p.startDone);
    if (this.screen.isTTY) {
      this.screen.write(`\r${text}\x1b[K`);
      this.open = true;
    } else this.screen.write(`${text}\n`);
  }

  private breakLine(): void {
    if (this.open) this.screen.write('\n');
    this.open = false;
  }
}
