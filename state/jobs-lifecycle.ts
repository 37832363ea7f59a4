// An imaging job's lifecycle (sbs-v1 "Imaging jobs"): pending → running → completed | failed |
// cancelled, as a pure function of the job's state and what happened. It also says what the
// machine's action becomes: `then` on completion; `wait` on a failure, or on a cancel that takes
// effect while the job runs (never a half-written disk booted, never a loop back into imaging).

export type JobState = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface JobStatus {
  readonly state: JobState;
  /** A cancel is waiting for the agent's next check (only while running). */
  readonly cancelRequested: boolean;
}

/**
 * What happened to a job. From the agent: start, progress, complete, fail, and check (any call
 * that reads or reports: where a requested cancel takes effect). From instructions: cancel (a
 * job-cancel) and replace (a newer job for the same machine).
 */
export type JobInput = 'start' | 'progress' | 'complete' | 'fail' | 'check' | 'cancel' | 'replace';

export type MachineOutcome = 'then' | 'wait' | null;

export type Transition =
  | { readonly status: JobStatus; readonly machine: MachineOutcome; readonly ended: boolean }
  | { readonly refused: string };

export function isActive(state: JobState): boolean {
  return state === 'pending' || state === 'running';
}

const PENDING: JobStatus = { state: 'pending', cancelRequested: false };
const RUNNING: JobStatus = { state: 'running', cancelRequested: false };

function to(status: JobStatus, machine: MachineOutcome = null): Transition {
  return { status, machine, ended: !isActive(status.state) };
}

export function transition(from: JobStatus, input: JobInput): Transition {
  if (!isActive(from.state)) return { refused: `the job has ended (${from.state})` };
  if (from.state === 'pending') {
    switch (input) {
      case 'start':
        return to(RUNNING);
      case 'check':
        return to(PENDING);
      case 'cancel':
      case 'replace':
        // Nothing was written yet: the machine keeps the action it had.
        return to({ state: 'cancelled', cancelRequested: false });
      case 'fail':
        // The agent may fail before it starts (no such disk): the disk may be untouched, but the
        // machine still waits rather than loop back into imaging.
        return to({ state: 'failed', cancelRequested: false }, 'wait');
      case 'progress':
      case 'complete':
        return { refused: 'the job has not started' };
    }
  }
  // running
  if (from.cancelRequested && (input === 'start' || input === 'progress' || input === 'check' || input === 'complete')) {
    // The agent's next check after a cancel: the job ends here, whatever the agent reported.
    return to({ state: 'cancelled', cancelRequested: false }, 'wait');
  }
  switch (input) {
    case 'start':
    case 'progress':
    case 'check':
      return to(from);
    case 'complete':
      return to({ state: 'completed', cancelRequested: false }, 'then');
    case 'fail':
      return to({ state: 'failed', cancelRequested: false }, 'wait');
    case 'cancel':
    case 'replace':
      return to({ state: 'running', cancelRequested: true });
  }
}
