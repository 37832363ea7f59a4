// What no local copy has comes from peers: batches of chunks asked from the best source that has
// not yet failed them, several in flight, each chunk verified on arrival (after inflating) and
// a bad one fetched elsewhere; with no source left, wait and start over.
import { packageBytesFetched, packageChunkRejected } from '../platform/metrics/replication-metrics.ts';
import { promisify } from 'node:util';
import { inflateRaw } from 'node:zlib';
import { errorMessage } from '../platform/runtime/errors.ts';
import type { AssembleOptions, AssembleProgress } from './assemble.ts';
import type { Frame } from './chunk-frames.ts';
import { sha256Hex } from './digest.ts';
import { AbortedError, type Need, type PlacementWriter } from './placement.ts';
import { sleep } from '../platform/runtime/sleep.ts';

export interface ChunkSource {
  readonly id: string;
  fetchChunks(digests: readonly string[], onFrame: (f: Frame) => Promise<void>): Promise<void>;
}

export async function fetchAll(
  o: AssembleOptions,
  pending: Need[],
  writer: PlacementWriter,
  stats: { fetchedChunks: number; fetchedBytes: number; rejectedChunks: number; localChunks: number },
  progress: AssembleProgress,
  done: (size: number) => void,
  report: (force: boolean) => void,
): Promise<void> {
  const queue = pending;
  let inFlight = 0;
  let roundsWithoutSource = 0;
  const takeBatch = (): { source: ChunkSource; batch: Need[] } | null => {
    const sources = o.sources();
    for (const source of sources) {
      const batch: Need[] = [];
      let bytes = 0;
      for (let i = 0; i < queue.length && batch.length < 1024 && bytes < o.batchBytes; ) {
        const n = queue[i]!;
        if (n.tried.has(source.id)) {
          i++;
          continue;
        }
        batch.push(n);
        bytes += n.size;
        queue.splice(i, 1);
      }
      if (batch.length > 0) return { source, batch };
    }
    return null;
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      if (o.signal.aborted) throw new AbortedError();
      const job = takeBatch();
      if (job === null) {
        if (queue.length === 0 && inFlight === 0) return;
        if (queue.length === 0) {
          await sleep(20, o.signal);
          continue;
        }
        // Every source has been tried for what is left (or none is reachable): wait, then start over.
        if (inFlight > 0) {
          await sleep(20, o.signal);
          continue;
        }
        roundsWithoutSource++;
        progress.reason = o.sources().length === 0 ? 'no peer to fetch from is connected' : `${queue.length} chunk(s) not available from any source yet`;
        report(true);
        await sleep(Math.min(5000, 250 * 2 ** Math.min(roundsWithoutSource, 5)), o.signal);
        for (const n of queue) n.tried.clear();
        continue;
      }
      inFlight++;
      const { source, batch } = job;
      const waiting = new Map(batch.map((n) => [n.digest, n]));
      try {
        await source.fetchChunks(batch.map((n) => n.digest), async (frame) => {
          const need = waiting.get(frame.digest);
          if (need === undefined) throw new Error(`sent chunk ${frame.digest}, which was not asked for`);
          waiting.delete(frame.digest);
          need.tried.add(source.id);
          if (frame.data === null) {
            queue.push(need);
            return;
          }
          let data: Buffer | null = frame.data;
          if (frame.deflated) data = await inflated(frame.data, need.size);
          if (data === null || data.length !== need.size || sha256Hex(data) !== need.digest) {
            stats.rejectedChunks++;
            packageChunkRejected();
            o.log.warn('rejected a chunk that does not match its digest; fetching it elsewhere', { peer: source.id, digest: need.digest, size: data?.length ?? null, deflated: frame.deflated });
            queue.push(need);
            return;
          }
          await o.throttle?.(frame.data.length);
          await writer.write(need, data);
          stats.fetchedChunks++;
          stats.fetchedBytes += frame.data.length;
          packageBytesFetched(frame.data.length);
          for (let k = 0; k < need.placements.length; k++) done(need.size);
          roundsWithoutSource = 0;
        });
        progress.reason = null;
      } catch (err) {
        if (o.signal.aborted) throw new AbortedError();
        progress.reason = `fetch from ${source.id} failed: ${errorMessage(err)}`;
        o.log.warn('chunk fetch failed; retrying elsewhere', { peer: source.id, chunks: waiting.size, err: errorMessage(err) });
        report(true);
      } finally {
        inFlight--;
        for (const n of waiting.values()) {
          n.tried.add(source.id);
          queue.push(n);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
}

const inflate = promisify(inflateRaw);

/** Inflates a deflated chunk, never beyond its stated size; null if it is not valid deflate. */
async function inflated(data: Buffer, size: number): Promise<Buffer | null> {
  try {
    return await inflate(data, { maxOutputLength: size });
  } catch {
    return null;
  }
}
