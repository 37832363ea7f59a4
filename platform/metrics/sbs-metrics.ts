// The Interface's SBS intake: files applied (by document kind) and set aside (by reason class:
// too-large, bad-name, unreadable: no field named, invalid: a field named).
import { Counter, type Registry } from 'prom-client';
import { metricFamily } from './registry.ts';

const families = metricFamily((registers: Registry[]) => ({
  applied: new Counter({ name: 'netboot_sbs_files_applied_total', help: 'SBS files applied, by document kind', labelNames: ['kind'] as const, registers }),
  rejected: new Counter({ name: 'netboot_sbs_files_rejected_total', help: 'SBS files set aside in rejected/, by reason class (too-large, bad-name, unreadable, invalid)', labelNames: ['reason'] as const, registers }),
}));

/** `kind`: a parsed document's kind, one of the SBS spec's few (sbs/types.ts). */
export function sbsApplied(kind: string): void {
  families().applied.labels(kind).inc();
}

export function sbsRejected(field: string, problem: string): void {
  const reason = problem.startsWith('too large') ? 'too-large' : problem.startsWith('the name is not valid') ? 'bad-name' : field === '' ? 'unreadable' : 'invalid';
  families().rejected.labels(reason).inc();
}
