// Teardown that always runs: every resource registers how to undo itself the moment it exists,
// and `run()` undoes them in reverse order, each step guarded so one failure cannot skip the rest.
// If the process exits without `run()` (an uncaught error), the synchronous fallbacks still kill
// our processes by pid and delete our namespaces.
import { execFileSync } from 'node:child_process';

interface Step {
  readonly what: string;
  readonly undo: () => Promise<void> | void;
  /** Best-effort synchronous version for process exit. */
  readonly undoSync?: () => void;
}

const live = new Set<Cleanup>();
let signalsHooked = false;

/** Interrupted (Ctrl-C, or the test runner's SIGTERM): undo what we can, then die as asked. */
function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      for (const c of live) c.runSync();
      process.exit(code);
    });
  }
}

export class Cleanup {
  private steps: Step[] = [];
  private readonly onExit = (): void => this.runSync();

  constructor() {
    process.on('exit', this.onExit);
    live.add(this);
    hookSignals();
  }

  add(what: string, undo: () => Promise<void> | void, undoSync?: () => void): void {
    this.steps.push({ what, undo, ...(undoSync === undefined ? {} : { undoSync }) });
  }

  /** Runs every registered step (newest first); returns the problems instead of throwing. */
  async run(): Promise<string[]> {
    const problems: string[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.undo();
      } catch (err) {
        problems.push(`${step.what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    process.off('exit', this.onExit);
    live.delete(this);
    return problems;
  }

  /** Best effort, synchronous: kills our processes and deletes our namespaces. */
  runSync(): void {
    for (const step of this.steps.reverse()) {
      try {
        step.undoSync?.();
      } catch {
        // process exit: nothing more can be done
      }
    }
    this.steps = [];
  }
}

/** Sends `signal` to a pid we started; false if it is already gone. */
export function signalPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

export function deleteNamespaceSync(name: string): void {
  execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
}
