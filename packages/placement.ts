// Where the chunks of a version being assembled go, and the local reads that feed them: shared by
// the copy from local files and the fetch from peers (assemble.ts).
import { chmod, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Manifest } from './manifest.ts';

/** A chunk's place in the version: file and offset. */
export interface Placement {
  readonly path: string;
  readonly offset: number;
}

export interface Need {
  readonly digest: string;
  readonly size: number;
  readonly placements: Placement[];
  tried: Set<string>;
}

/** A sync given up because its signal was aborted (a newer ref, or stop). */
export class AbortedError extends Error {
  constructor() {
    super('aborted');
  }
}

/** Reads ranges of files, keeping the last few open (sequential reads of a base file). */
export class RangeReader {
  private readonly handles = new Map<string, FileHandle | null>();

  async read(path: string, offset: number, size: number): Promise<Buffer | null> {
    let fh = this.handles.get(path);
    if (fh === undefined) {
      fh = await open(path, 'r').catch(() => null);
      if (this.handles.size >= 8) {
        const [k, v] = this.handles.entries().next().value as [string, FileHandle | null];
        this.handles.delete(k);
        await v?.close();
      }
      this.handles.set(path, fh);
    }
    if (fh === null) return null;
    const buf = Buffer.allocUnsafe(size);
    const { bytesRead } = await fh.read(buf, 0, size, offset);
    return bytesRead === size ? buf : null;
  }

  async close(): Promise<void> {
    for (const fh of this.handles.values()) await fh?.close();
    this.handles.clear();
  }
}

const ZEROS = Buffer.alloc(256 * 1024);

export function isZero(data: Buffer): boolean {
  for (let off = 0; off < data.length; off += ZEROS.length) {
    const n = Math.min(ZEROS.length, data.length - off);
    if (!data.subarray(off, off + n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
}

/** Writes chunks where the manifest puts them, keeping a bounded set of files open. */
export class PlacementWriter {
  private readonly handles = new Map<string, { fh: Promise<FileHandle>; users: number }>();
  private readonly modes: Map<string, number>;
  constructor(private readonly dir: string, manifest: Manifest, private readonly dirty: Set<string>, private readonly fresh: ReadonlySet<string>) {
    this.modes = new Map(manifest.files.map((f) => [f.path, f.mode]));
  }

  async write(need: Need, data: Buffer): Promise<void> {
    const zero = isZero(data);
    for (const p of need.placements) {
      if (zero && this.fresh.has(p.path)) continue; // already a hole of zeros
      const h = this.acquire(p.path);
      try {
        await (await h.fh).write(data, 0, data.length, p.offset);
        this.dirty.add(p.path);
      } finally {
        h.users--;
      }
    }
  }

  private acquire(path: string): { fh: Promise<FileHandle>; users: number } {
    let h = this.handles.get(path);
    if (h === undefined) {
      if (this.handles.size >= 64) {
        for (const [k, v] of this.handles) {
          if (v.users > 0) continue;
          this.handles.delete(k);
          void v.fh.then((fh) => fh.close()).catch(() => undefined);
          break;
        }
      }
      const full = join(this.dir, path);
      h = { fh: chmod(full, (this.modes.get(path) ?? 0) | 0o600).then(() => open(full, 'r+')), users: 0 };
      this.handles.set(path, h);
    }
    h.users++;
    return h;
  }

  async close(): Promise<void> {
    for (const h of this.handles.values()) await (await h.fh.catch(() => null))?.close();
    this.handles.clear();
  }
}
