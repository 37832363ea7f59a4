// One imaging job, from the agent's side (sbs-v1 "Imaging jobs"; the site's API is
// state/jobs-agent-routes.ts): take the job, report `started`, find the disk, run the task with
// the images/ engine (deploy and restore from the package routes, compare-in-place; capture and
// backup uploading only what the site lacks; erase), report progress (at most twice a second,
// and at every phase change), then `completed` with the result or `failed` with the reason and
// the phase. The job is checked every `checkMs` while the disk works: a 410 (cancelled) stops
// everything at once, and no byte is written to the disk after it.
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, realpathSync } from 'node:fs';
import { promisify } from 'node:util';
import { errorMessage } from '../../platform/runtime/errors.ts';
import { openDisk, type Disk } from '../block-device.ts';
import { captureDisk } from '../capture.ts';
import { deployImage } from '../deploy.ts';
import { eraseDisk } from '../erase.ts';
import { storedBytes } from '../disk-image.ts';
import { mb, type AgentConsole } from './console.ts';
import { findDisk, partitionPath } from './find-disk.ts';
import type { AgentOptions } from './options.ts';
import { readRemoteImage, RemoteChunks } from './remote-package.ts';
import { CancelledError, SiteError, type SiteClient } from './site-client.ts';
import { UploadSink } from './upload-sink.ts';

const run = promisify(execFile);

/** The job as GET /agent/job gives it (state/jobs.ts JobView; only what the agent uses). */
export interface AgentJob {
  readonly jobId: string;
  readonly task: 'deploy' | 'capture' | 'backup' | 'restore' | 'erase';
  readonly state: string;
  readonly job: { readonly disk?: string; readonly version?: string; readonly partitions?: readonly number[]; readonly method?: 'zero' | 'discard'; readonly keep?: number };
  readonly reads: readonly string[];
  readonly writes: readonly string[];
}

export type JobOutcome = 'completed' | 'failed' | 'cancelled' | 'refused';

/** Sends progress to the site: the latest report, at most one every `minMs`, and at once on a new phase. */
class ProgressReporter {
  private lastPhase: string | null = null;
  private lastSentMs = 0;
  private latest: { phase: string; bytesDone: number; bytesTotal: number } | null = null;
  private sending: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly client: SiteClient, private readonly minMs = 500) {}

  report(p: { phase: string; bytesDone: number; bytesTotal: number }): void {
    this.latest = p;
    const due = p.phase !== this.lastPhase || Date.now() - this.lastSentMs >= this.minMs;
    if (due) this.kick();
    else if (this.timer === null) this.timer = setTimeout(() => {
      this.timer = null;
      this.kick();
    }, this.minMs);
  }

  private kick(): void {
    if (this.sending !== null || this.latest === null || this.client.isCancelled) return;
    const p = this.latest;
    this.latest = null;
    this.lastPhase = p.phase;
    this.lastSentMs = Date.now();
    this.sending = this.client.json('POST', '/agent/job/progress', p).then(() => {}, () => {}).finally(() => {
      this.sending = null;
      if (this.latest !== null && (this.latest.phase !== this.lastPhase || Date.now() - this.lastSentMs >= this.minMs)) this.kick();
    });
  }

  async flush(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.sending;
  }
}

/** The disk, refusing every read and write once the job is cancelled; writes traced when asked. */
function guarded(disk: Disk, client: SiteClient, trace: (line: string) => void): Disk & { bytesWritten: number } {
  const g = {
    ...disk,
    bytesWritten: 0,
    read: (offset: number, length: number) => (client.isCancelled ? Promise.reject(new CancelledError()) : disk.read(offset, length)),
    write: async (offset: number, bytes: Buffer) => {
      if (client.isCancelled) throw new CancelledError();
      trace(`write ${offset} ${bytes.length}`);
      await disk.write(offset, bytes);
      g.bytesWritten += bytes.length;
    },
  };
  return g;
}

export interface RunContext {
  readonly client: SiteClient;
  readonly options: AgentOptions;
  readonly console: AgentConsole;
}

export async function runJob(ctx: RunContext): Promise<JobOutcome> {
  const { client, options, console: con } = ctx;
  const trace = (line: string): void => {
    if (options.trace !== null) appendFileSync(options.trace, `${line}\n`);
  };
  client.onAnswer = (method, path, status) => trace(`answer ${status} ${method} ${path}`);
  client.onCancel = () => {
    trace('cancelled');
    con.say('the site cancelled this job: stopping now (nothing more is written)');
  };
  let job: AgentJob;
  try {
    const r = await client.json<{ job?: AgentJob; error?: string }>('GET', '/agent/job', undefined, [401, 403]);
    if (r.value.job === undefined) {
      con.say(`the site refused this job: ${r.value.error ?? r.status}`);
      return 'refused';
    }
    job = r.value.job;
  } catch (err) {
    if (err instanceof CancelledError) return 'cancelled';
    con.say(`cannot take the job: ${errorMessage(err)}`);
    return 'failed';
  }
  if (job.jobId !== options.jobId) {
    con.say(`the site answered for job ${job.jobId}, not ${options.jobId}: stopping`);
    return 'refused';
  }
  con.say(`job ${job.jobId}: ${job.task}${job.reads.length > 0 ? ` from ${job.reads.join(', ')}` : ''}${job.writes.length > 0 ? ` into ${job.writes.join(', ')}` : ''}`);
  const startMs = Date.now();
  let phase = 'start';
  let lastCallMs = Date.now();
  const progress = new ProgressReporter(client);
  const heartbeat = setInterval(() => {
    if (Date.now() - lastCallMs < options.checkMs || client.isCancelled) return;
    lastCallMs = Date.now();
    void client.json('GET', '/agent/job').catch(() => {});
  }, Math.max(50, Math.floor(options.checkMs / 2)));
  const onProgress = (p: { phase: string; bytesDone: number; bytesTotal: number }): void => {
    phase = p.phase;
    con.progress(p.phase, p.bytesDone, p.bytesTotal);
    lastCallMs = Date.now();
    progress.report(p);
  };
  let sink: UploadSink | null = null;
  let disk: (Disk & { bytesWritten: number }) | null = null;
  try {
    await client.json('POST', '/agent/job/started', { jobId: job.jobId });
    phase = 'disk';
    const found = await findDisk(job.job.disk ?? 'first', options.sysDir, options.devDir);
    const writes = job.task === 'deploy' || job.task === 'restore' || job.task === 'erase';
    disk = guarded(await openDisk(found.path, writes ? 'r+' : 'r'), client, trace);
    con.say(`disk ${found.path} (${found.why}): ${mb(disk.sizeBytes)}, ${disk.sectorBytes}-byte sectors${disk.model === null ? '' : `, ${disk.model}`}${disk.serial === null ? '' : `, serial ${disk.serial}`}`);
    const real = realpathOr(found.path);
    const partitionDevice = (n: number): string | null => {
      const p = partitionPath(real, n);
      return existsSync(p) ? p : null;
    };
    let result: Record<string, unknown>;
    if (job.task === 'deploy' || job.task === 'restore') {
      phase = 'image';
      const pkg = job.reads[0];
      if (pkg === undefined) throw new Error('the job names no package to read');
      const remote = await readRemoteImage(client, pkg, job.job.version);
      const made = remote.image.inventory.madeBy;
      if (job.task === 'deploy' && made === 'backup') throw new Error(`version sha256:${remote.digest} of ${pkg} is a backup: deploy takes captured or imported images only (use restore); nothing was written`);
      if (job.task === 'restore' && made !== 'backup') throw new Error(`version sha256:${remote.digest} of ${pkg} was made by ${made}, not a backup: restore takes backups only; nothing was written`);
      con.say(`image ${pkg} version sha256:${remote.digest.slice(0, 12)}…: ${remote.image.table}, ${remote.image.partitions.length} partition(s), ${mb(storedBytes(remote.image))} stored, made by ${made}`);
      phase = job.task;
      const source = new RemoteChunks(client);
      const r = await deployImage(disk, remote.image, {
        source, partitions: job.job.partitions, progress: onProgress, partitionDevice,
        rereadTable: () => rereadTable(real, remote.image.partitions.map((p) => p.number), partitionPath),
      });
      con.endPhase();
      if (r.grown !== null) con.say(`partition ${r.grown.partition} grown from ${mb(r.grown.fromBytes)} to ${mb(r.grown.toBytes)}: ${r.grown.note}`);
      result = {
        package: pkg, version: `sha256:${remote.digest}`, bytesWritten: r.bytesWritten, bytesTransferred: r.bytesTransferred + remote.bytesFetched,
        seconds: seconds(startMs),
      };
      con.say(`deployed: wrote ${mb(r.bytesWritten)} (${r.chunksWritten} chunks; ${r.chunksSkipped} already on the disk), fetched ${mb(r.bytesTransferred)}`);
    } else if (job.task === 'capture' || job.task === 'backup') {
      const pkg = job.writes[0];
      if (pkg === undefined) throw new Error('the job names no package to write');
      // A site that restarted mid-capture has lost what it had staged: its commit names the
      // chunks it lacks (409), and the capture runs once more, sending what is missing now.
      let sent = { chunks: 0, deflated: 0, bytes: 0, frames: 0, transferred: 0 };
      let done: { c: Awaited<ReturnType<UploadSink['commit']>>; r: Awaited<ReturnType<typeof captureDisk>> } | null = null;
      for (let attempt = 1; done === null; attempt++) {
        const uploader = new UploadSink(client, pkg, { encoding: options.uploadEncoding });
        sink = uploader;
        phase = 'capture';
        const r = await captureDisk(disk, { sink: uploader, partitions: job.job.partitions, madeBy: job.task, partitionDevice, progress: onProgress });
        con.endPhase();
        phase = 'upload';
        await uploader.finish();
        phase = 'commit';
        try {
          const c = await uploader.commit(r.image);
          done = { c, r };
        } catch (err) {
          if (!(err instanceof SiteError && err.status === 409 && /does not hold/.test(err.message)) || attempt >= 2) throw err;
          con.say(`the site lost part of the capture (${err.message}): capturing again`);
        }
        sent = {
          chunks: sent.chunks + uploader.chunksSent, deflated: sent.deflated + uploader.chunksDeflated, bytes: sent.bytes + uploader.bytesSent,
          frames: sent.frames + uploader.frameBytesSent, transferred: sent.transferred + uploader.bytesTransferred,
        };
      }
      sink = null;
      const { c, r } = done;
      con.say(`captured into ${c.package} version ${c.version.slice(0, 19)}…: read ${mb(r.bytesRead)}, sent ${sent.chunks} of ${r.chunksTotal} chunks (${mb(sent.bytes)} of data, ${mb(sent.frames)} on the wire, ${sent.deflated} chunks deflated)`);
      // bytesWritten: the chunk data the site stored; bytesTransferred: every request body (the
      // wire). `x-upload` (the spec ignores x- members) splits the chunks' part out: their data
      // and their frames as sent, deflated where that paid.
      result = {
        package: c.package, version: c.version, bytesWritten: sent.bytes, bytesTransferred: sent.transferred,
        seconds: seconds(startMs), inventory: r.image.inventory,
        'x-upload': { encoding: options.uploadEncoding, chunks: sent.chunks, chunksDeflated: sent.deflated, chunkBytes: sent.bytes, wireBytes: sent.frames },
      };
    } else {
      const method = job.job.method ?? 'zero';
      const r = await eraseDisk(disk, method, onProgress);
      con.endPhase();
      result = { bytesWritten: method === 'zero' ? r.bytesErased : 0, bytesTransferred: 0, seconds: seconds(startMs) };
      con.say(`erased (${method}): ${mb(r.bytesErased)}`);
    }
    await disk.sync();
    await progress.flush();
    phase = 'report';
    try {
      await client.json('POST', '/agent/job/completed', { jobId: job.jobId, result });
    } catch (err) {
      // Taken before a lost answer: the retry finds the job completed already.
      if (!(err instanceof SiteError && err.status === 403 && /has ended \(completed\)/.test(err.message))) throw err;
    }
    con.say(`completed in ${(result.seconds as number).toFixed(1)} s`);
    return 'completed';
  } catch (err) {
    con.endPhase();
    await progress.flush().catch(() => {});
    if (client.isCancelled || err instanceof CancelledError) {
      con.say(`job ${job.jobId} cancelled by the site during ${phase}; ${mb(disk?.bytesWritten ?? 0)} had been written`);
      return 'cancelled';
    }
    const reason = errorMessage(err);
    con.say(`FAILED during ${phase}: ${reason}`);
    if (sink !== null) await sink.abort().catch(() => {});
    try {
      await client.json('POST', '/agent/job/failed', { jobId: job.jobId, reason: reason.slice(0, 1000), phase });
    } catch (e) {
      if (e instanceof SiteError || e instanceof CancelledError) con.say(`the site did not take the failure: ${errorMessage(e)}`);
      else con.say(`could not report the failure: ${errorMessage(e)}`);
    }
    return 'failed';
  } finally {
    clearInterval(heartbeat);
    await disk?.close().catch(() => {});
  }
}

function seconds(startMs: number): number {
  return Math.round((Date.now() - startMs) / 100) / 10;
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** After a deploy wrote a table: the kernel re-reads it, and the partition nodes appear. */
async function rereadTable(disk: string, numbers: readonly number[], nodeOf: (disk: string, n: number) => string): Promise<void> {
  try {
    await run('partx', ['-u', disk], { timeout: 30_000 });
  } catch {
    await run('blockdev', ['--rereadpt', disk], { timeout: 30_000 }).catch(() => {});
  }
  for (let i = 0; i < 50 && !numbers.every((n) => existsSync(nodeOf(disk, n))); i++) await new Promise((r) => setTimeout(r, 100));
}
