// Chunks travel raw-deflated (RFC 1951) where that pays, both ways: the package routes' batched
// downloads (http-routes.ts, POST /pkg/chunks with "encoding":"deflate") and an agent's capture
// uploads (images/agent/upload-sink.ts, images/capture-uploads.ts). One decision for both: a 4 KiB
// probe at level 1 first, so incompressible data (most of a disk's used blocks) costs little CPU;
// the chunk is kept deflated only if that saves at least a tenth. zlib's async API runs in
// libuv's threadpool, off the event loop. Inflating is bounded: never beyond the size the caller
// allows, so a small frame cannot expand into gigabytes.
import { promisify } from 'node:util';
import { deflateRaw, inflateRaw } from 'node:zlib';
import { NetbootError } from '../platform/runtime/errors.ts';

const deflate = promisify(deflateRaw);
const inflate = promisify(inflateRaw);

/** Smaller chunks are sent as they are (a frame header and zlib's start cost more than they save). */
export const MIN_DEFLATE_BYTES = 1024;
export const PROBE_BYTES = 4096;

/** The chunk deflated, if that saves at least a tenth; null otherwise. */
export async function compressed(data: Buffer): Promise<Buffer | null> {
  if (data.length < MIN_DEFLATE_BYTES) return null;
  const probe = data.subarray(0, PROBE_BYTES);
  if ((await deflate(probe, { level: 1 })).length > probe.length * 0.9) return null;
  const packed = await deflate(data, { level: 1 });
  return packed.length <= data.length * 0.9 ? packed : null;
}

/** A deflated chunk that is not valid deflate data, or inflates beyond what it may. */
export class InflateError extends NetbootError {
  constructor(message: string) {
    super('CHUNK_INFLATE', message);
  }
}

/** Inflates raw deflate data, never beyond `maxBytes` (the chunk's stated or largest size). */
export async function inflateAtMost(data: Buffer, maxBytes: number): Promise<Buffer> {
  try {
    return await inflate(data, { maxOutputLength: maxBytes });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) throw new InflateError(`inflates beyond ${maxBytes} bytes`);
    throw new InflateError(`is not valid deflate data (${e.message})`);
  }
}
