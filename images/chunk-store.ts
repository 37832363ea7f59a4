// The narrow interface between imaging and wherever chunks live: capture asks `has` and `put`s
// what is missing; deploy `get`s what the target lacks and verifies it itself (a source is never
// trusted). One simple store here, in memory (tests).
// The package store adapter is in package-image.ts.

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
