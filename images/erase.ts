// Erase a whole disk: `zero` writes zeros over it; `discard` tells the device every block is
// free (BLKDISCARD through util-linux's blkdiscard; for an image file, holes are punched with
// fallocate). Both in steps, reporting progress after each.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { NetbootError } from '../platform/runtime/errors.ts';
import type { Disk } from './block-device.ts';
import type { ImagingProgress } from './capture.ts';

const run = promisify(execFile);

export async function eraseDisk(disk: Disk, method: 'zero' | 'discard', progress?: ImagingProgress, stepBytes = 64 * 1024 * 1024): Promise<{ bytesErased: number }> {
  const total = disk.sizeBytes;
  progress?.({ phase: `erase-${method}`, bytesDone: 0, bytesTotal: total });
  if (method === 'zero') {
    const zeros = Buffer.alloc(Math.min(4 * 1024 * 1024, stepBytes));
    for (let at = 0; at < total; ) {
      const stepEnd = Math.min(total, at + stepBytes);
      while (at < stepEnd) {
        const n = Math.min(zeros.length, stepEnd - at);
        await disk.write(at, n === zeros.length ? zeros : zeros.subarray(0, n));
        at += n;
      }
      await disk.sync();
      progress?.({ phase: 'erase-zero', bytesDone: at, bytesTotal: total });
    }
    return { bytesErased: total };
  }
  for (let at = 0; at < total; at += stepBytes) {
    const len = Math.min(stepBytes, total - at);
    try {
      if (disk.isBlockDevice) await run('blkdiscard', ['-f', '-o', String(at), '-l', String(len), disk.path]);
      else await run('fallocate', ['--punch-hole', '--keep-size', '-o', String(at), '-l', String(len), disk.path]);
    } catch (err) {
      throw new NetbootError('DISCARD_FAILED', `discard of ${disk.path} at byte ${at} failed (${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}); use method "zero" for a device without discard`);
    }
    progress?.({ phase: 'erase-discard', bytesDone: at + len, bytesTotal: total });
  }
  return { bytesErased: total };
}
