// The job lifecycle as a table: every state × every input, with the state it leads to and what
// the machine's action becomes (sbs-v1 "Imaging jobs").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { transition, type JobInput, type JobStatus } from '../../state/jobs-lifecycle.ts';

const P: JobStatus = { state: 'pending', cancelRequested: false };
const R: JobStatus = { state: 'running', cancelRequested: false };
const RC: JobStatus = { state: 'running', cancelRequested: true };

// [from, input, to state or 'refused', cancelRequested after, machine action]
const TABLE: Array<[JobStatus, JobInput, string, boolean?, ('then' | 'wait' | null)?]> = [
  [P, 'start', 'running', false, null],
  [P, 'check', 'pending', false, null],
  [P, 'progress', 'refused'],
  [P, 'complete', 'refused'],
  [P, 'fail', 'failed', false, 'wait'],
  [P, 'cancel', 'cancelled', false, null],
  [P, 'replace', 'cancelled', false, null],
  [R, 'start', 'running', false, null],
  [R, 'check', 'running', false, null],
  [R, 'progress', 'running', false, null],
  [R, 'complete', 'completed', false, 'then'],
  [R, 'fail', 'failed', false, 'wait'],
  [R, 'cancel', 'running', true, null],
  [R, 'replace', 'running', true, null],
  [RC, 'check', 'cancelled', false, 'wait'],
  [RC, 'progress', 'cancelled', false, 'wait'],
  [RC, 'start', 'cancelled', false, 'wait'],
  [RC, 'complete', 'cancelled', false, 'wait'],
  [RC, 'fail', 'failed', false, 'wait'],
  [RC, 'cancel', 'running', true, null],
];

test('every transition of the job lifecycle', () => {
  for (const [from, input, state, cancelRequested, machine] of TABLE) {
    const t = transition(from, input);
    const name = `${from.state}${from.cancelRequested ? '+cancel' : ''} ${input}`;
    if (state === 'refused') {
      assert.ok('refused' in t, name);
      continue;
    }
    assert.ok(!('refused' in t), `${name}: ${'refused' in t ? t.refused : ''}`);
    assert.deepEqual({ state: t.status.state, cancelRequested: t.status.cancelRequested, machine: t.machine }, { state, cancelRequested, machine }, name);
    assert.equal(t.ended, !['pending', 'running'].includes(state), name);
  }
});

test('an ended job takes no input', () => {
  for (const state of ['completed', 'failed', 'cancelled'] as const) {
    for (const input of ['start', 'progress', 'complete', 'fail', 'check', 'cancel', 'replace'] as const) {
      const t = transition({ state, cancelRequested: false }, input);
      assert.deepEqual(t, { refused: `the job has ended (${state})` }, `${state} ${input}`);
    }
  }
});
