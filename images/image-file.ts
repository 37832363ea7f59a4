// `netboot image import FILE --id ID` and `netboot image export ID[@VERSION] FILE`: a raw disk
// image file (a VM's disk) into a disk image package the same way a capture does, and a package
// back to a sparse raw file (holes wherever the image holds nothing: free space stays unwritten).
// A file has no sector size of its own: an import guesses it or is told it (512 or 4096), an
// export writes the image's.
import { closeSync, ftruncateSync, openSync } from 'node:fs';
import type { PackageStore } from '../packages/package-store.ts';
import { NetbootError } from '../platform/runtime/errors.ts';
import { openDisk } from './block-device.ts';
import { captureDisk, type CaptureResult, type ImagingProgress } from './capture.ts';
import { deployImage, type DeployResult } from './deploy.ts';
import { packageChunkSource, PackageImageWriter, readPackageImage } from './package-image.ts';
import { guessSectorBytes, type SectorBytes } from './sector-size.ts';

/** The sector size to open `file` with (undefined: a device's own) and how it was found. */
async function sectorSizeOf(file: string, given: SectorBytes | undefined): Promise<{ sectorBytes: SectorBytes | undefined; why: string }> {
  const probe = await openDisk(file, 'r');
  try {
    if (probe.isBlockDevice) {
      if (given !== undefined && given !== probe.sectorBytes) throw new NetbootError('SECTOR_SIZE', `${file} has ${probe.sectorBytes}-byte logical sectors, not ${given}`);
      return { sectorBytes: undefined, why: `${probe.sectorBytes}-byte sectors (the kernel's)` };
    }
    const g = given === undefined ? await guessSectorBytes((o, l) => probe.read(o, l), probe.sizeBytes) : { sectorBytes: given, why: 'given' };
    return { sectorBytes: g.sectorBytes, why: `${g.sectorBytes}-byte sectors (${g.why})` };
  } finally {
    await probe.close();
  }
}

/**
 * `sectorBytes`: the file's logical sector size; by default guessed (sector-size.ts: where the
 * GPT header is, or where a file system begins), and said in the result's `sectorWhy`.
 */
export async function importImageFile(store: PackageStore, file: string, pkg: string, progress?: ImagingProgress, sectorBytes?: SectorBytes): Promise<CaptureResult & { digest: string; seq: number; sectorWhy: string }> {
  const sector = await sectorSizeOf(file, sectorBytes);
  const sectorWhy = sector.why;
  const disk = await openDisk(file, 'r', { sectorBytes: sector.sectorBytes });
  const writer = new PackageImageWriter(store, pkg);
  try {
    const r = await captureDisk(disk, { sink: writer, madeBy: 'import', progress });
    const { ref, digest } = await writer.commit(r.image);
    return { ...r, digest, seq: ref.seq, sectorWhy };
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    await disk.close();
  }
}

export async function exportImageFile(store: PackageStore, pkg: string, version: string | undefined, file: string, progress?: ImagingProgress): Promise<DeployResult & { digest: string }> {
  const { image, digest } = await readPackageImage(store, pkg, version);
  const fd = openSync(file, 'w');
  try {
    ftruncateSync(fd, image.sizeBytes);
  } finally {
    closeSync(fd);
  }
  const disk = await openDisk(file, 'r+', { sectorBytes: image.sectorBytes });
  try {
    return { ...(await deployImage(disk, image, { source: packageChunkSource(store), grow: false, progress })), digest };
  } finally {
    await disk.close();
  }
}
