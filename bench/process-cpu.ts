// CPU time of a process from /proc/<pid>/stat, for the benches' server CPU figures.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime + stime in seconds; with `reaped`, its reaped children's too (cutime + cstime). */
export function processCpuSeconds(pid: number, reaped = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // After the command: state(0) ... utime(11) stime(12) cutime(13) cstime(14).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = (reaped ? [11, 12, 13, 14] : [11, 12]).reduce((n, i) => n + Number(fields[i]), 0);
  return ticks / CLOCK_TICKS;
}
