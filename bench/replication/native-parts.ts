// The native path of package chunking against the pure path it replaces, on one thread and from
// memory (no reads, no workers), the contenders taking turns within each round so a busy moment on
// a shared machine hits both alike. CPU time of this thread is the measure.
//   chunk SHA-256: native sha256Chunks (sixteen chunks at once in AVX-512 lanes) vs node:crypto
//   per chunk, over the chunks the WebAssembly scan cut (its speed is printed too). A native gear
//   scan was measured here the same way and removed (bench/RESULTS.md, "Native paths").
// Usage: node --import tsx bench/replication/native-parts.ts [--mib 128] [--rounds 7]
import { createHash, randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { parseArgs, stringFlag } from '../../cli/args.ts';
import { Chunker, nativeChunking, newScanner } from '../../packages/chunker.ts';
import type { GearScan } from '../../packages/gear-scan.ts';
import { DATA_AT, wasmScan } from '../../packages/gear-scan.ts';

const args = parseArgs(process.argv.slice(2));
const MIB = Number(stringFlag(args, 'mib') ?? 128);
const ROUNDS = Number(stringFlag(args, 'rounds') ?? 7);
const native = nativeChunking();
if (!native.ok) throw new Error(native.reason);
const addon = createRequire(import.meta.url)(native.path) as { sha256Chunks(mem: Uint8Array, pieces: Uint32Array, out: Uint8Array): void };

const bytes = MIB * 1048576;
const scanner = newScanner(bytes);
const data = new Uint8Array(scanner.buffer, DATA_AT, bytes);
// Random bytes with runs of text-like and repeated content, as a filesystem image has.
randomFillSync(data);
for (let off = 0; off < bytes; off += 1 << 20) data.fill(off % 3, off, off + 65536);

function cpuMs(fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

let ends: number[] = [];
const cut = (scan: GearScan) => (): void => {
  const c = new Chunker(scan);
  ends = c.push(data);
  ends.push(bytes);
};
const wasm = wasmScan(scanner);
const pieces = (): Uint32Array => {
  const p = new Uint32Array(4 * ends.length);
  let from = 0;
  ends.forEach((end, i) => {
    p.set([from, end - from, 0, 0], 4 * i);
    from = end;
  });
  return p;
};

const runs: Record<string, number[]> = { 'scan wasm': [], 'sha256 native': [], 'sha256 node:crypto': [] };
for (let r = 0; r < ROUNDS; r++) {
  runs['scan wasm']!.push(cpuMs(cut(wasm)));
  const p = pieces();
  const out = new Uint8Array(32 * ends.length);
  runs['sha256 native']!.push(cpuMs(() => addon.sha256Chunks(data, p, out)));
  runs['sha256 node:crypto']!.push(
    cpuMs(() => {
      let from = 0;
      for (const end of ends) {
        createHash('sha256').update(data.subarray(from, end)).digest();
        from = end;
      }
    }),
  );
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`# ${MIB} MiB from memory, one thread, ${ROUNDS} rounds in turn (median CPU time); ${ends.length} chunks; SHA-256 ${native.lanes ? 'in AVX-512 lanes' : 'one by one'}`);
for (const [name, xs] of Object.entries(runs)) {
  console.log(`${name.padEnd(20)} ${((bytes / 1e6) / (median(xs) / 1000)).toFixed(0).padStart(6)} MB/s   [runs: ${xs.map((x) => x.toFixed(0)).join(', ')} ms]`);
}
for (const part of ['sha256']) {
  const [n, p] = Object.entries(runs).filter(([k]) => k.startsWith(part)).map(([, xs]) => median(xs));
  console.log(`${part}: native ${((p! / n! - 1) * 100).toFixed(0)} % faster than the pure path`);
}
