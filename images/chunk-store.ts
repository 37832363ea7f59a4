// The narrow interface between imaging and wherever chunks live: capture asks `has` and `put`s
// what is missing; deploy `get`s what the target lacks and verifies it itself (a source is never
// trusted). Two simple stores here: in memory (tests) and a folder of files (import/export, bench).
// The package store adapter is in package-chunks.ts.
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface ChunkSink {
  has(digest: string): Promise<boolean>;
  put(digest: string, bytes: Buffer): Promise<void>;
}

export interface ChunkSource {
  /** The chunk's bytes, or null when not held. Not verified: the caller checks the digest. */
  get(digest: string): Promise<Buffer | null>;
  /** Several at once (one request over a network); what is absent from the map is not held. */
  getMany?(digests: readonly string[]): Promise<Map<string, Buffer>>;
}

export class MemoryChunkStore implements ChunkSink, ChunkSource {
  readonly chunks = new Map<string, Buffer>();
  bytesPut = 0;
  bytesGot = 0;

  async has(digest: string): Promise<boolean> {
    return this.chunks.has(digest);
  }

  async put(digest: string, bytes: Buffer): Promise<void> {
    if (this.chunks.has(digest)) return;
    this.chunks.set(digest, Buffer.from(bytes));
    this.bytesPut += bytes.length;
  }

  async get(digest: string): Promise<Buffer | null> {
    const b = this.chunks.get(digest);
    if (b !== undefined) this.bytesGot += b.length;
    return b === undefined ? null : Buffer.from(b);
  }

  /** Bytes held. */
  get bytesHeld(): number {
    let n = 0;
    for (const b of this.chunks.values()) n += b.length;
    return n;
  }
}

/** One file per chunk, `<dir>/<first two hex digits>/<digest>`. */
export class DirChunkStore implements ChunkSink, ChunkSource {
  bytesPut = 0;
  constructor(readonly dir: string) {}

  private path(digest: string): string {
    return join(this.dir, digest.slice(0, 2), digest);
  }

  async has(digest: string): Promise<boolean> {
    try {
      await stat(this.path(digest));
      return true;
    } catch {
      return false;
    }
  }

  async put(digest: string, bytes: Buffer): Promise<void> {
    if (await this.has(digest)) return;
    const p = this.path(digest);
    await mkdir(join(this.dir, digest.slice(0, 2)), { recursive: true });
    await writeFile(`${p}.tmp`, bytes);
    await rename(`${p}.tmp`, p);
    this.bytesPut += bytes.length;
  }

  async get(digest: string): Promise<Buffer | null> {
    try {
      return await readFile(this.path(digest));
    } catch {
      return null;
    }
  }
}
