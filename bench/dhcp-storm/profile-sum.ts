// Sums a V8 .cpuprofile's self time by function (or by file) and prints µs per reply: the CPU a
// server spends per answer in each function, independent of how busy the machine was.
// Usage: node --import tsx bench/dhcp-storm/profile-sum.ts [--by file] [--top 40] [--replies N] [--whole | --under FUNCTION] A.cpuprofile [B.cpuprofile]
// With two profiles (e.g. the base's and this checkout's server from one storm run), prints them
// side by side with the difference. Paths are shortened to the part after the checkout root.
import { readFileSync } from 'node:fs';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const argv = process.argv.slice(2);
let by: 'function' | 'file' = 'function';
let top = 40;
let replies = 1;
/** --whole: every sample, not only the storm's (profiles of answer-cpu.ts, which has no socket). */
let whole = false;
/** --under NAME: the window is that of the samples with a function named NAME on the stack (e.g. `pass` in answer-cpu.ts), not a datagram handler's. */
let under: string | null = null;
const files: string[] = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  if (a === '--by') by = argv[++i] as 'function' | 'file';
  else if (a === '--top') top = Number(argv[++i]);
  else if (a === '--replies') replies = Number(argv[++i]);
  else if (a === '--whole') whole = true;
  else if (a === '--under') under = argv[++i]!;
  else files.push(a);
}

function shorten(url: string): string {
  const m = /\/(boot|services|protocols|platform|native|bench|node_modules|sbs|packages|cli|web|state)\/.*/.exec(url);
  return m === null ? url.replace(/^file:\/\//, '') : m[0].slice(1);
}

/**
 * Self time (µs) by key, from the first to the last sample taken inside a datagram handler (a
 * function in services/server/batch-socket.ts or dhcp-socket.ts on the stack): the storm, without
 * the start-up (module loading, tsx) before it and the shut-down after it. Idle time is left out.
 */
function sum(file: string): Map<string, number> {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inHandler = new Map<number, boolean>();
  const handled = (id: number): boolean => {
    let v = inHandler.get(id);
    if (v === undefined) {
      const url = byId.get(id)!.callFrame.url;
      const up = parent.get(id);
      const self = under === null ? /\/services\/server\/(batch|dhcp)-socket\.ts$/.test(url) : byId.get(id)!.callFrame.functionName === under;
      v = self || (up !== undefined && handled(up));
      inHandler.set(id, v);
    }
    return v;
  };
  let first = -1;
  let last = -1;
  for (let i = 0; i < p.samples.length; i++) {
    if (!handled(p.samples[i]!)) continue;
    if (first < 0) first = i;
    last = i;
  }
  const out = new Map<string, number>();
  const interval = [...p.timeDeltas].sort((a, b) => a - b)[Math.floor(p.timeDeltas.length / 2)]!;
  if (whole) [first, last] = [0, p.samples.length - 1];
  for (let i = Math.max(first, 0); i <= last; i++) {
    const n = byId.get(p.samples[i]!)!;
    if (n.callFrame.functionName === '(idle)') continue;
    const f = n.callFrame;
    const where = f.url === '' ? '' : shorten(f.url);
    // By file name (not folder) and function name (not line): the two checkouts' trees differ.
    const base = where.replace(/^.*\//, '');
    const key = by === 'file' ? (where === '' ? `(${f.functionName || 'native'})` : base) : `${f.functionName || '(anonymous)'} ${base}`;
    // Each sample counts as one sampling interval (the median time between samples), not as the
    // time to the next sample: on a loaded machine the thread waits for a CPU between samples,
    // and that wall time is no function's cost. Samples are taken only while the thread runs, so
    // their count follows CPU time.
    out.set(key, (out.get(key) ?? 0) + interval);
  }
  return out;
}

const sums = files.map(sum);
const keys = new Set(sums.flatMap((s) => [...s.keys()]));
const total = sums.map((s) => [...s.values()].reduce((a, b) => a + b, 0));
const rows = [...keys].map((k) => ({ k, v: sums.map((s) => (s.get(k) ?? 0) / replies) }));
rows.sort((a, b) => (sums.length === 2 ? Math.abs(b.v[1]! - b.v[0]!) - Math.abs(a.v[1]! - a.v[0]!) : b.v[0]! - a.v[0]!));
const fmt = (x: number): string => x.toFixed(3).padStart(9);
console.log(`${files.map((f, i) => `#${i}: ${f} total ${fmt(total[i]! / replies)} µs per reply`).join('\n')}`);
console.log(`${sums.map((_, i) => `      #${i}`).join('')}${sums.length === 2 ? '     diff' : ''}  function`);
for (const { k, v } of rows.slice(0, top)) console.log(`${v.map(fmt).join('')}${v.length === 2 ? fmt(v[1]! - v[0]!) : ''}  ${k}`);
