// The disk image routes of the Interface's control socket (`netboot image import|export`): they
// run in the Interface, which owns the package store, under the package's lock, so an import is
// published and announced to peers like any other version. Both answer only once done (the CLI
// waits); 503 until the package component runs.
//   POST /images/import  {file, id}            -> {package, seq, digest, bytesRead, bytesStored, chunksStored, chunksTotal, sizeBytes}
//   POST /images/export  {id, version?, file}  -> {package, digest, bytesWritten, chunksWritten, chunksSkipped}
import { isAbsolute } from 'node:path';
import { HttpError, type ControlHandler } from '../platform/local/control.ts';
import { NetbootError } from '../platform/runtime/errors.ts';
import { isDigest, isPackageId } from '../packages/digest.ts';
import type { PackageService } from '../packages/package-service.ts';
import { exportImageFile, importImageFile } from './image-file.ts';

/** Codes the engine throws for what the caller asked wrongly (not a fault of the Interface). */
const NOT_FOUND = new Set(['PACKAGE_NOT_READY', 'NOT_A_DISK_IMAGE']);
const REFUSED = new Set(['PACKAGE_KIND', 'PACKAGE_OWNER', 'DISK_TOO_SMALL']);

export function imageControlRoutes(packages: PackageService): Record<string, ControlHandler> {
  const running = (): void => {
    if (!packages.running) throw new HttpError(503, 'the package service is starting');
  };
  return {
    'POST /images/import': async (req) => {
      running();
      const b = (req.body ?? {}) as { file?: unknown; id?: unknown };
      if (typeof b.file !== 'string' || !isAbsolute(b.file)) throw new HttpError(400, 'file: an absolute path is required');
      if (!isPackageId(b.id)) throw new HttpError(400, 'id: letters, digits, ".", "_" and "-" (up to 128), not starting with "."');
      const id = b.id;
      const file = b.file;
      const r = await answer(() => packages.withStore(id, (store) => importImageFile(store, file, id)));
      return { package: id, seq: r.seq, digest: r.digest, sizeBytes: r.image.sizeBytes, bytesRead: r.bytesRead, bytesStored: r.bytesStored, chunksStored: r.chunksStored, chunksTotal: r.chunksTotal };
    },
    'POST /images/export': async (req) => {
      running();
      const b = (req.body ?? {}) as { file?: unknown; id?: unknown; version?: unknown };
      if (typeof b.file !== 'string' || !isAbsolute(b.file)) throw new HttpError(400, 'file: an absolute path is required');
      if (!isPackageId(b.id)) throw new HttpError(400, 'id: a package id is required');
      const version = b.version === undefined || b.version === null ? undefined : String(b.version).replace(/^sha256:/, '');
      if (version !== undefined && !isDigest(version)) throw new HttpError(400, 'version: a version digest (sha256:HEX or HEX) is required');
      const id = b.id;
      const file = b.file;
      const ref = packages.refOf(id);
      if (ref === null || ref.digest === null) throw new HttpError(404, `no package ${id}`);
      if (ref.kind !== 'image') throw new HttpError(409, `package ${id} is a ${ref.kind} package, not a disk image`);
      const r = await answer(() => packages.withStore(id, (store) => exportImageFile(store, id, version, file)));
      return { package: id, digest: r.digest, bytesWritten: r.bytesWritten, chunksWritten: r.chunksWritten, chunksSkipped: r.chunksSkipped };
    },
  };
}

/** The engine's errors as the control socket's statuses: 404 not held, 409 refused, 400 a bad file. */
async function answer<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof NetbootError && NOT_FOUND.has(err.code)) throw new HttpError(404, err.message);
    if (err instanceof NetbootError && REFUSED.has(err.code)) throw new HttpError(409, err.message);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw new HttpError(400, (err as Error).message);
    throw err;
  }
}
