// The disk image routes of the Interface's control socket (`netboot image import|export`): they
// run in the Interface, which owns the package store, under the package's lock, so an import is
// published and announced to peers like any other version. A request is checked at once (400,
// 404, 409), then runs as a job the CLI follows for its progress bar; 503 until the package
// component runs.
//   POST /images/import  {file, id, sectorBytes?} -> {job}   (sectorBytes: 512 or 4096; guessed when absent)
//   POST /images/export  {id, version?, file}  -> {job}
//   GET  /images/jobs?id=JOB                   -> {state, progress, result?, error?}
//     import result: {package, seq, digest, sizeBytes, sectorBytes, sectorWhy, bytesRead, bytesStored, chunksStored, chunksTotal}
//     export result: {package, digest, bytesWritten, chunksWritten, chunksSkipped}
import { randomUUID } from 'node:crypto';
import { isAbsolute } from 'node:path';
import { HttpError, type ControlHandler } from '../platform/local/control.ts';
import { errorMessage } from '../platform/runtime/errors.ts';
import { isDigest, isPackageId } from '../packages/digest.ts';
import type { PackageService } from '../packages/package-service.ts';
import { exportImageFile, importImageFile } from './image-file.ts';

export interface ImageJob {
  state: 'running' | 'done' | 'failed';
  progress: { phase: string; bytesDone: number; bytesTotal: number };
  result?: Record<string, unknown>;
  error?: string;
}

/** Finished jobs kept for the CLI to read (the oldest dropped first). */
const KEEP_FINISHED = 32;

/** `serverId`: this site's id (an import into a package another site owns is refused at once). */
export function imageControlRoutes(packages: PackageService, serverId: string): Record<string, ControlHandler> {
  const jobs = new Map<string, ImageJob>();
  const running = (): void => {
    if (!packages.running) throw new HttpError(503, 'the package service is starting');
  };
  const start = (run: (job: ImageJob) => Promise<Record<string, unknown>>): { job: string } => {
    const id = randomUUID();
    const job: ImageJob = { state: 'running', progress: { phase: 'start', bytesDone: 0, bytesTotal: 0 } };
    jobs.set(id, job);
    void run(job).then(
      (result) => Object.assign(job, { state: 'done', result }),
      (err) => Object.assign(job, { state: 'failed', error: errorMessage(err) }),
    ).finally(() => {
      const finished = [...jobs].filter(([, j]) => j.state !== 'running');
      for (const [old] of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) jobs.delete(old);
    });
    return { job: id };
  };
  const fileOf = (b: { file?: unknown }): string => {
    if (typeof b.file !== 'string' || !isAbsolute(b.file)) throw new HttpError(400, 'file: an absolute path is required');
    return b.file;
  };
  return {
    'POST /images/import': (req) => {
      running();
      const b = (req.body ?? {}) as { file?: unknown; id?: unknown; sectorBytes?: unknown };
      const file = fileOf(b);
      if (!isPackageId(b.id)) throw new HttpError(400, 'id: letters, digits, ".", "_" and "-" (up to 128), not starting with "."');
      if (b.sectorBytes !== undefined && b.sectorBytes !== null && b.sectorBytes !== 512 && b.sectorBytes !== 4096) throw new HttpError(400, 'sectorBytes: 512 or 4096');
      const sectorBytes = b.sectorBytes === 512 || b.sectorBytes === 4096 ? b.sectorBytes : undefined;
      const id = b.id;
      const ref = packages.refOf(id);
      if (ref !== null && ref.digest !== null && ref.kind !== 'image') throw new HttpError(409, `package ${id} is a ${ref.kind} package, not a disk image`);
      if (ref !== null && ref.digest !== null && ref.owner !== serverId) throw new HttpError(409, `package ${id} is owned by ${ref.owner}; import it there (or remove it there first)`);
      return start(async (job) => {
        const r = await packages.withStore(id, (store) => importImageFile(store, file, id, (p) => (job.progress = p), sectorBytes));
        return { package: id, seq: r.seq, digest: r.digest, sizeBytes: r.image.sizeBytes, sectorBytes: r.image.sectorBytes, sectorWhy: r.sectorWhy, bytesRead: r.bytesRead, bytesStored: r.bytesStored, chunksStored: r.chunksStored, chunksTotal: r.chunksTotal };
      });
    },
    'POST /images/export': (req) => {
      running();
      const b = (req.body ?? {}) as { file?: unknown; id?: unknown; version?: unknown };
      const file = fileOf(b);
      if (!isPackageId(b.id)) throw new HttpError(400, 'id: a package id is required');
      const version = b.version === undefined || b.version === null ? undefined : String(b.version).replace(/^sha256:/, '');
      if (version !== undefined && !isDigest(version)) throw new HttpError(400, 'version: a version digest (sha256:HEX or HEX) is required');
      const id = b.id;
      const ref = packages.refOf(id);
      if (ref === null || ref.digest === null) throw new HttpError(404, `no package ${id}`);
      if (ref.kind !== 'image') throw new HttpError(409, `package ${id} is a ${ref.kind} package, not a disk image`);
      return start(async (job) => {
        const r = await packages.withStore(id, (store) => exportImageFile(store, id, version, file, (p) => (job.progress = p)));
        return { package: id, digest: r.digest, bytesWritten: r.bytesWritten, chunksWritten: r.chunksWritten, chunksSkipped: r.chunksSkipped };
      });
    },
    'GET /images/jobs': (req) => {
      const job = jobs.get(req.query.get('id') ?? '');
      if (job === undefined) throw new HttpError(404, 'no such image job');
      return job;
    },
  };
}
