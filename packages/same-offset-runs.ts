// The cheap path of a replica's sync: chunks that sit at the same offset of the same file in the
// previous version are copied in long runs (large sequential reads), every chunk hashed on the
// hash workers before it is written, so a damaged base is never propagated.
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ChunkHasher } from './chunk-hasher.ts';
import { isZero } from './placement.ts';

export interface SameOffset {
  readonly path: string;
  readonly from: string;
  readonly offset: number;
  readonly size: number;
  readonly digest: string;
}

const RUN_BYTES = 4 * 1024 * 1024;

/**
 * Copies chunks that sit at the same offset in the previous version's file, in runs of up to
 * 4 MiB: read, hash every chunk of the run on worker threads while the next run is read, write
 * the chunks that verify (zeros into a new sparse file are skipped). Returns the placements done
 * ("offset@path"); anything that did not verify is left for the chunk-by-chunk path.
 */
export async function copyRuns(items: readonly SameOffset[], dir: string, fresh: ReadonlySet<string>, checkAbort: () => void): Promise<Set<string>> {
  const runs: SameOffset[][] = [];
  for (const it of items) {
    const run = runs.at(-1);
    const last = run?.at(-1);
    if (run !== undefined && last !== undefined && last.path === it.path && last.offset + last.size === it.offset && it.offset + it.size - run[0]!.offset <= RUN_BYTES) run.push(it);
    else runs.push([it]);
  }
  const done = new Set<string>();
  const hasher = new ChunkHasher({ blocks: 4 }); // three runs in flight
  const reads = new Map<string, FileHandle>();
  const writes = new Map<string, FileHandle>();
  const handle = async (map: Map<string, FileHandle>, path: string, flags: string): Promise<FileHandle> => {
    let fh = map.get(path);
    if (fh === undefined) {
      if (map.size >= 8) {
        const [k, v] = map.entries().next().value as [string, FileHandle];
        map.delete(k);
        await v.close();
      }
      fh = await open(path, flags);
      map.set(path, fh);
    }
    return fh;
  };
  const one = async (run: SameOffset[]): Promise<void> => {
    const start = run[0]!.offset;
    const len = run.at(-1)!.offset + run.at(-1)!.size - start;
    const block = await hasher.block(); // RUN_BYTES <= BLOCK
    let got = 0;
    try {
      got = (await (await handle(reads, run[0]!.from, 'r')).read(block, 0, len, start)).bytesRead;
    } catch {
      got = 0;
    }
    if (got !== len) return hasher.recycle(block);
    const cuts = run.map((c) => c.offset + c.size - start);
    try {
      const digests = await hasher.hashBlock(block, cuts);
      const out = await handle(writes, join(dir, run[0]!.path), 'r+');
      // One write per stretch of verified chunks (zeros into a sparse file end a stretch).
      let from = -1;
      const flush = async (to: number): Promise<void> => {
        if (from >= 0) await out.write(block, from - start, to - from, from);
        from = -1;
      };
      for (let i = 0; i < run.length; i++) {
        const c = run[i]!;
        const ok = digests[i] === c.digest;
        const skip = !ok || (fresh.has(c.path) && isZero(block.subarray(c.offset - start, c.offset - start + c.size)));
        if (skip) await flush(c.offset);
        else if (from < 0) from = c.offset;
        if (ok) done.add(`${c.offset}@${c.path}`);
      }
      await flush(run.at(-1)!.offset + run.at(-1)!.size);
    } finally {
      hasher.recycle(block);
    }
  };
  let failure: unknown = null;
  const inFlight: Array<Promise<void>> = [];
  try {
    for (const run of runs) {
      checkAbort();
      if (failure !== null) throw failure;
      inFlight.push(one(run).catch((err: unknown) => void (failure ??= err)));
      if (inFlight.length >= 3) await inFlight.shift();
    }
  } finally {
    await Promise.all(inFlight);
    await hasher.close();
    for (const fh of [...reads.values(), ...writes.values()]) await fh.close();
  }
  if (failure !== null) throw failure;
  return done;
}
