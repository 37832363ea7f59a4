// Streaming chunk + hash of one file, optionally copying it as it is read: the bytes hashed are
// the bytes written, so a source changing under a publish can never give a copy that disagrees
// with its manifest. Never holds more than two read blocks in memory.
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { AVG_CHUNK, Chunker } from './chunker.ts';
import { BLOCK_MAX as BLOCK, ChunkHasher, type Pieces } from './chunk-hasher.ts';
import type { ChunkRef } from './manifest.ts';

export interface ChunkedFile {
  readonly size: number;
  readonly chunks: ChunkRef[];
}

/**
 * Reads `src` once: chunk boundaries, SHA-256 per chunk, and (if given) a copy at `copyTo`,
 * fsynced. With a `hasher`, chunk digests are computed on its worker threads meanwhile.
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

/** A block and who still needs it: the chunking, its write, hash jobs over its bytes. */
class HeldBlock {
  private users = 1;
  constructor(
    readonly buf: Buffer,
    private readonly hasher: ChunkHasher,
  ) {}

  retain(): void {
    this.users++;
  }

  release(): void {
    if (--this.users === 0) this.hasher.recycle(this.buf);
  }
}

/**
 * As large(), with the file read straight into the hasher's shared blocks: this thread cuts
 * (in place) and writes, the workers hash whole chunks, the next block is read meanwhile.
 */
async function largeParallel(input: FileHandle, output: FileHandle | null, hasher: ChunkHasher, onBytes?: (n: number) => void): Promise<ChunkedFile> {
  const chunker = new Chunker(hasher.scan);
  const sizes: number[] = [];
  const jobs: Array<Promise<string[]>> = [];
  const writes: Array<Promise<unknown>> = [];
  // The unfinished chunk: its bytes so far and the blocks they lie in.
  let pending: { pieces: Pieces; blocks: HeldBlock[]; bytes: number } = { pieces: [], blocks: [], bytes: 0 };
  let total = 0;
  // Every block but the last is filled, so the unfinished chunk always lies in one block.
  const readAt = async (position: number): Promise<HeldBlock> => {
    const buf = await hasher.block();
    try {
      let got = 0;
      for (;;) {
        const { bytesRead } = await input.read(buf, got, buf.length - got, position + got);
        got += bytesRead;
        if (bytesRead === 0 || got === buf.length) break;
      }
      return new HeldBlock(buf.subarray(0, got), hasher);
    } catch (err) {
      hasher.recycle(buf);
      throw err;
    }
  };
  const settle = (p: Promise<unknown>, blocks: HeldBlock[]): void => {
    for (const b of blocks) b.retain();
    void p.finally(() => blocks.forEach((b) => b.release())).catch(() => {});
  };
  let next: Promise<HeldBlock> | null = null;
  try {
    next = readAt(0);
    for (;;) {
      const block = await next;
      next = null;
      const data = block.buf;
      if (data.length === 0) {
        block.release();
        break;
      }
      next = readAt(total + data.length); // read ahead while this block is cut
      if (output !== null && !isZeroBlock(data)) {
        const w = output.write(data, 0, data.length, total); // zeros stay a hole
        writes.push(w);
        settle(w, [block]);
      }
      const chunks: Pieces[] = [];
      const touched = new Set<HeldBlock>([block]);
      let prev = 0;
      for (const cut of chunker.push(data)) {
        chunks.push([...pending.pieces, ...ChunkHasher.pieces(data, prev, cut)]);
        sizes.push(pending.bytes + cut - prev);
        for (const b of pending.blocks) touched.add(b);
        pending = { pieces: [], blocks: [], bytes: 0 };
        prev = cut;
      }
      if (prev < data.length) {
        pending.pieces.push(...ChunkHasher.pieces(data, prev, data.length));
        pending.blocks.push(block);
        pending.bytes += data.length - prev;
        block.retain();
      }
      const job = hasher.hash(chunks);
      jobs.push(job);
      settle(job, [...touched]);
      for (const b of touched) if (b !== block) b.release(); // the pending hold passes to the job
      block.release();
      total += data.length;
      onBytes?.(data.length);
    }
    chunker.end();
    if (pending.bytes > 0) {
      sizes.push(pending.bytes);
      const job = hasher.hash([pending.pieces]);
      jobs.push(job);
      settle(job, pending.blocks);
      for (const b of pending.blocks) b.release();
      pending = { pieces: [], blocks: [], bytes: 0 };
    }
    await Promise.all(writes);
    await output?.truncate(total);
    const digests = (await Promise.all(jobs)).flat();
    if (digests.length !== sizes.length) throw new Error(`hash workers returned ${digests.length} digests for ${sizes.length} chunks`);
    return { size: total, chunks: sizes.map((size, i) => ({ digest: digests[i]!, size })) };
  } finally {
    // On failure, let reads, writes and hash jobs finish so every block goes back.
    const ahead = next;
    if (ahead !== null) void ahead.then((b) => b.release(), () => {});
    for (const b of pending.blocks) b.release();
    await Promise.allSettled([...writes, ...jobs]);
  }
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
