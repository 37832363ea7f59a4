// Writing segments (segments.ts) from a file whose chunks are known: each segment not yet held
// is read from the file, every chunk hashed again on the hash workers (the bytes written are the
// bytes named: a file changing under a publish is refused, never stored under a wrong name),
// written as `<name>.part` with chunks of zeros left as holes, fsynced, and only then renamed to
// its name. Segments already held are skipped without reading them: that is what makes a new
// version of a large image cost what changed.
import { existsSync } from 'node:fs';
import { mkdir, open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { NetbootError } from '../platform/runtime/errors.ts';
import type { ChunkHasher } from './chunk-hasher.ts';
import { fsyncPath } from './fs-tree.ts';
import type { ChunkRef } from './manifest.ts';
import { isZero } from './placement.ts';
import { segmentsOf, type Segment } from './segments.ts';

export interface SegmentsWritten {
  readonly held: number;
  readonly written: number;
  readonly bytesWritten: number;
}

export async function writeSegments(src: string, path: string, chunks: readonly ChunkRef[], dir: string, hasher: ChunkHasher): Promise<SegmentsWritten> {
  const segments = segmentsOf(chunks);
  const missing = [...new Map(segments.filter((s) => !existsSync(join(dir, s.name))).map((s) => [s.name, s])).values()];
  if (missing.length === 0) return { held: segments.length, written: 0, bytesWritten: 0 };
  await mkdir(dir, { recursive: true });
  const input = await open(src, 'r');
  let bytesWritten = 0;
  const one = async (s: Segment): Promise<void> => {
    const block = await hasher.block();
    try {
      let got = 0;
      while (got < s.size) {
        const { bytesRead } = await input.read(block, got, s.size - got, s.offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got !== s.size) throw new NetbootError('PACKAGE_SOURCE_CHANGED', `${path} changed while it was published (shorter than read before); publish again`);
      const cuts: number[] = [];
      let end = 0;
      for (const c of s.chunks) cuts.push((end += c.size));
      const digests = await hasher.hashBlock(block, cuts);
      if (digests.some((d, i) => d !== s.chunks[i]!.digest)) throw new NetbootError('PACKAGE_SOURCE_CHANGED', `${path} changed while it was published (bytes at ${s.offset}); publish again`);
      const part = join(dir, `${s.name}.part`);
      const out: FileHandle = await open(part, 'w', 0o600);
      try {
        let at = 0;
        for (const c of s.chunks) {
          const data = block.subarray(at, at + c.size);
          if (!isZero(data)) await out.write(data, 0, c.size, at);
          at += c.size;
        }
        await out.truncate(s.size);
        await out.sync();
      } finally {
        await out.close();
      }
      await rename(part, join(dir, s.name));
      bytesWritten += s.size;
    } finally {
      hasher.recycle(block);
    }
  };
  try {
    let next = 0;
    let failure: unknown = null;
    await Promise.all(Array.from({ length: 3 }, async () => {
      while (next < missing.length && failure === null) {
        await one(missing[next++]!).catch((err: unknown) => void (failure ??= err));
      }
    }));
    if (failure !== null) throw failure;
  } finally {
    await input.close();
  }
  await fsyncPath(dir);
  return { held: segments.length - missing.length, written: missing.length, bytesWritten };
}
