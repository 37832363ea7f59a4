// Streaming chunk + hash of one file, optionally copying it as it is read: the bytes hashed are
// the bytes written, so a source changing under a publish can never give a copy that disagrees
// with its manifest. Never holds more than two read blocks in memory.
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { AVG_CHUNK, Chunker } from './chunker.ts';
import type { ChunkHasher } from './chunk-hasher.ts';
import type { ChunkRef } from './manifest.ts';

const BLOCK = 4 * 1024 * 1024;

export interface ChunkedFile {
  readonly size: number;
  readonly chunks: ChunkRef[];
}

/**
 * Reads `src` once: chunk boundaries, SHA-256 per chunk, and (if given) a copy at `copyTo`,
 * fsynced. With a `hasher`, chunk digests are computed on its worker thread meanwhile.
 */
export async function chunkFile(src: string, copyTo: string | null, onBytes?: (n: number) => void, hasher?: ChunkHasher): Promise<ChunkedFile> {
  const input = await open(src, 'r');
  let output: FileHandle | null = null;
  try {
    if (copyTo !== null) output = await open(copyTo, 'wx', 0o600);
    const size0 = (await input.stat()).size;
    const result = size0 <= AVG_CHUNK ? await small(input, output, onBytes) : hasher ? await largeParallel(input, output, hasher, onBytes) : await large(input, output, onBytes);
    if (output !== null) await output.sync();
    return result;
  } finally {
    await input.close();
    await output?.close();
  }
}

/** Files up to the average chunk size are one chunk: no point cutting them. */
async function small(input: FileHandle, output: FileHandle | null, onBytes?: (n: number) => void): Promise<ChunkedFile> {
  const data = await input.readFile();
  if (data.length > AVG_CHUNK) return chunkBuffer(data, output, onBytes); // it grew since stat
  if (output !== null && data.length > 0) await output.write(data);
  onBytes?.(data.length);
  return { size: data.length, chunks: data.length === 0 ? [] : [{ digest: createHash('sha256').update(data).digest('hex'), size: data.length }] };
}

async function chunkBuffer(data: Buffer, output: FileHandle | null, onBytes?: (n: number) => void): Promise<ChunkedFile> {
  const state = new ChunkAccumulator();
  state.push(data);
  if (output !== null) await output.write(data);
  onBytes?.(data.length);
  return state.finish();
}

async function large(input: FileHandle, output: FileHandle | null, onBytes?: (n: number) => void): Promise<ChunkedFile> {
  const state = new ChunkAccumulator();
  const readBlock = async (): Promise<Buffer> => {
    const buf = Buffer.allocUnsafe(BLOCK);
    const { bytesRead } = await input.read(buf, 0, BLOCK, null);
    return buf.subarray(0, bytesRead);
  };
  let next = readBlock();
  for (;;) {
    const data = await next;
    if (data.length === 0) break;
    next = readBlock(); // read ahead while this block is hashed
    const written = output?.write(data); // and written, on the thread pool
    state.push(data);
    await written;
    onBytes?.(data.length);
  }
  return state.finish();
}

/** As large(), with SHA-256 on the worker: this thread reads, cuts and writes; the worker hashes. */
async function largeParallel(input: FileHandle, output: FileHandle | null, hasher: ChunkHasher, onBytes?: (n: number) => void): Promise<ChunkedFile> {
  const chunker = new Chunker();
  const sizes: number[] = [];
  const digests: string[] = [];
  const inFlight: Array<Promise<string[]>> = [];
  let pending = 0;
  let total = 0;
  const readBlock = async (): Promise<Buffer> => {
    const buf = hasher.block(BLOCK); // owns its memory: it is transferred to the worker and back
    const { bytesRead } = await input.read(buf, 0, BLOCK, null);
    return buf.subarray(0, bytesRead);
  };
  try {
    let next = readBlock();
    for (;;) {
      const data = await next;
      if (data.length === 0) break;
      next = readBlock();
      const written = output === null || isZeroBlock(data) ? undefined : output.write(data, 0, data.length, total); // zeros stay a hole
      const cuts = chunker.push(data);
      let prev = 0;
      for (const cut of cuts) {
        sizes.push(pending + cut - prev);
        pending = 0;
        prev = cut;
      }
      pending += data.length - prev;
      total += data.length;
      await written;
      const length = data.length;
      inFlight.push(hasher.push(data, cuts)); // `data` is detached from here on
      if (inFlight.length > 4) digests.push(...(await inFlight.shift()!));
      onBytes?.(length);
    }
    chunker.end();
    if (pending > 0) sizes.push(pending);
    await output?.truncate(total);
    inFlight.push(hasher.end(pending > 0));
    for (const p of inFlight.splice(0)) digests.push(...(await p));
  } finally {
    // On failure, let the worker's answers drain so the next file starts from a clean hash.
    await Promise.allSettled(inFlight);
  }
  if (digests.length !== sizes.length) throw new Error(`hash worker returned ${digests.length} digests for ${sizes.length} chunks`);
  return { size: total, chunks: sizes.map((size, i) => ({ digest: digests[i]!, size })) };
}

const ZERO_BLOCK = Buffer.alloc(BLOCK);

function isZeroBlock(data: Buffer): boolean {
  return data.equals(ZERO_BLOCK.subarray(0, data.length));
}

/** Chunk boundaries and digests over a stream of buffers. */
export class ChunkAccumulator {
  private readonly chunker = new Chunker();
  private hash = createHash('sha256');
  private pending = 0;
  private total = 0;
  readonly chunks: ChunkRef[] = [];

  push(data: Uint8Array): void {
    let prev = 0;
    for (const cut of this.chunker.push(data)) {
      this.hash.update(data.subarray(prev, cut));
      this.chunks.push({ digest: this.hash.digest('hex'), size: this.pending + cut - prev });
      this.hash = createHash('sha256');
      this.pending = 0;
      prev = cut;
    }
    if (prev < data.length) {
      this.hash.update(data.subarray(prev));
      this.pending += data.length - prev;
    }
    this.total += data.length;
  }

  finish(): ChunkedFile {
    this.chunker.end();
    if (this.pending > 0) this.chunks.push({ digest: this.hash.digest('hex'), size: this.pending });
    this.pending = 0;
    return { size: this.total, chunks: this.chunks };
  }
}
