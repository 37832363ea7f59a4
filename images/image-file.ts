// `netboot image import FILE --id ID` and `netboot image export ID[@VERSION] FILE`: a raw disk
// image file (a VM's disk) into a disk image package the same way a capture does, and a package
// back to a sparse raw file (holes wherever the image holds nothing: free space stays unwritten).
import { closeSync, ftruncateSync, openSync } from 'node:fs';
import type { PackageStore } from '../packages/package-store.ts';
import { openDisk } from './block-device.ts';
import { captureDisk, type CaptureResult, type ImagingProgress } from './capture.ts';
import { deployImage, type DeployResult } from './deploy.ts';
import { packageChunkSource, PackageImageWriter, readPackageImage } from './package-image.ts';

export async function importImageFile(store: PackageStore, file: string, pkg: string, progress?: ImagingProgress): Promise<CaptureResult & { digest: string; seq: number }> {
  const disk = await openDisk(file, 'r');
  const writer = new PackageImageWriter(store, pkg);
  try {
    const r = await captureDisk(disk, { sink: writer, madeBy: 'import', progress });
    const { ref, digest } = await writer.commit(r.image);
    return { ...r, digest, seq: ref.seq };
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
  const disk = await openDisk(file, 'r+');
  try {
    return { ...(await deployImage(disk, image, { source: packageChunkSource(store), grow: false, progress })), digest };
  } finally {
    await disk.close();
  }
}
