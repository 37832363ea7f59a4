// BootWiz inside the Interface (which owns the package store and the state): builds run as jobs
// the CLI follows (`POST /bootwiz/build`, `GET /bootwiz/jobs?id=`), their progress is in the
// log and in the Interface's status; a finished build is published as a `preboot` package and
// its SBS image offered on this site. The host (services/interface) supplies publish and offer.
import { randomUUID } from 'node:crypto';
import { HttpError, type ControlHandler } from '../platform/local/control.ts';
import { errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import type { Image } from '../sbs/types.ts';
import { build, buildDir, readBuildInfo, type BuildInfo, type BuildProgress } from './build.ts';
import { installIpxeFiles } from './ipxe-files.ts';
import { prebootImage, RECIPES, type Recipe } from './recipe.ts';

export interface BootwizHost {
  /** Publishes a build folder as a `preboot` package (Ready here when it resolves). */
  publish(dir: string, id: string): Promise<{ seq: number; digest: string | null }>;
  /** Offers the image on this site (kept in the state's table of built images). */
  offer(image: Image): void;
}

export interface BootwizOptions {
  readonly dataDir: string;
  /** Build every recipe that has no build yet when the Interface starts. */
  readonly buildOnStart: boolean;
  /** Put Debian's iPXE builds into the TFTP root where missing, when the Interface starts. */
  readonly installIpxe: boolean;
  readonly tftpRoot: string;
}

export interface BuildRequest {
  readonly update?: boolean;
  /** A lock file to build from (absolute path). */
  readonly lock?: string;
}

export interface BootwizJob {
  readonly id: string;
  readonly recipe: string;
  state: 'running' | 'done' | 'failed';
  step: string;
  /** 0..1 */
  fraction: number;
  detail: string;
  readonly startedAt: string;
  finishedAt?: string;
  error?: string;
  result?: { dir: string; kernelVersion: string; kernelBytes: number; initrdBytes: number; initrdSha256: string; resolved: boolean; package: { seq: number; digest: string | null } };
}

export class BootwizService {
  private readonly jobs = new Map<string, BootwizJob>();
  private readonly running = new Map<string, Promise<void>>();
  private stopped = false;

  constructor(private readonly options: BootwizOptions, private readonly log: Logger, private readonly host: BootwizHost) {}

  /** Offers what was built before; builds in the background what was never built (if asked to). */
  start(): void {
    if (this.options.installIpxe) {
      installIpxeFiles(this.options.dataDir, this.options.tftpRoot).then(
        (written) => { if (written.length > 0) this.log.info('bootwiz: Debian\'s iPXE builds put into the TFTP root', { files: written, tftpRoot: this.options.tftpRoot }); },
        (err) => this.log.error('bootwiz: cannot put iPXE builds into the TFTP root', { err: errorMessage(err) }),
      );
    }
    for (const recipe of Object.values(RECIPES)) {
      if (readBuildInfo(this.options.dataDir, recipe.id) !== null) {
        void this.publishAndOffer(recipe).catch((err) => this.log.error('bootwiz: cannot publish the existing build', { id: recipe.id, err: errorMessage(err) }));
      } else if (this.options.buildOnStart) {
        this.log.info('bootwiz: no build yet; building in the background', { id: recipe.id });
        this.build(recipe.id, {});
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }

  /** Starts a build of `recipeId`; one at a time per recipe. */
  build(recipeId: string, request: BuildRequest): BootwizJob {
    const recipe = RECIPES[recipeId];
    if (recipe === undefined) throw new HttpError(404, `no recipe ${recipeId} (known: ${Object.keys(RECIPES).join(', ')})`);
    if (this.running.has(recipeId)) throw new HttpError(409, `${recipeId} is being built already`);
    const job: BootwizJob = { id: randomUUID(), recipe: recipeId, state: 'running', step: 'start', fraction: 0, detail: '', startedAt: new Date().toISOString() };
    this.jobs.set(job.id, job);
    const done = this.runJob(job, recipe, request).finally(() => this.running.delete(recipeId));
    this.running.set(recipeId, done);
    return job;
  }

  /** Resolves once the recipe's current build (if any) has finished. */
  async settled(recipeId: string): Promise<void> {
    await this.running.get(recipeId);
  }

  job(id: string): BootwizJob | undefined {
    return this.jobs.get(id);
  }

  /** For the Interface's status: each recipe's build, running or last finished. */
  status(): Record<string, { state: string; step?: string; percent?: number; detail?: string; error?: string; built: { kernelVersion: string; initrdBytes: number } | null }> {
    const out: ReturnType<BootwizService['status']> = {};
    for (const recipe of Object.values(RECIPES)) {
      const last = [...this.jobs.values()].filter((j) => j.recipe === recipe.id).at(-1);
      const info = readBuildInfo(this.options.dataDir, recipe.id);
      const built = info === null ? null : { kernelVersion: info.kernelVersion, initrdBytes: info.initrd.bytes };
      if (last === undefined) out[recipe.id] = { state: info === null ? 'not built' : 'built', built };
      else out[recipe.id] = { state: last.state === 'running' ? 'building' : last.state === 'done' ? 'built' : 'failed', step: last.step, percent: Math.round(last.fraction * 100), detail: last.detail, ...(last.error === undefined ? {} : { error: last.error }), built };
    }
    return out;
  }

  controlRoutes(): Record<string, ControlHandler> {
    return {
      'POST /bootwiz/build': (req) => {
        const b = (req.body ?? {}) as { id?: unknown; update?: unknown; lock?: unknown };
        const id = typeof b.id === 'string' ? b.id : 'linuxpe-x64';
        if (b.lock !== undefined && (typeof b.lock !== 'string' || !b.lock.startsWith('/'))) throw new HttpError(400, 'lock: an absolute path');
        return { job: this.build(id, { update: b.update === true, ...(typeof b.lock === 'string' ? { lock: b.lock } : {}) }).id };
      },
      'GET /bootwiz/jobs': (req) => {
        const job = this.jobs.get(req.query.get('id') ?? '');
        if (job === undefined) throw new HttpError(404, 'no such job');
        return job;
      },
    };
  }

  private async runJob(job: BootwizJob, recipe: Recipe, request: BuildRequest): Promise<void> {
    let lastStep = '';
    const onProgress = (p: BuildProgress): void => {
      job.step = p.step;
      job.fraction = p.fraction;
      job.detail = p.detail;
      if (p.step !== lastStep) this.log.info('bootwiz build progress', { id: recipe.id, step: p.step, percent: Math.round(p.fraction * 100), detail: p.detail });
      lastStep = p.step;
    };
    try {
      const r = await build({ dataDir: this.options.dataDir, recipe, update: request.update === true, ...(request.lock === undefined ? {} : { lockPath: request.lock }), onProgress, log: this.log });
      job.step = 'publish';
      job.detail = `preboot package ${recipe.id}`;
      const ref = await this.publishAndOffer(recipe);
      job.result = resultOf(r.dir, r.info, r.resolved, ref);
      job.state = 'done';
      job.fraction = 1;
      this.log.info('bootwiz build done', { id: recipe.id, kernel: r.info.kernelVersion, initrdBytes: r.info.initrd.bytes, seq: ref.seq, digest: ref.digest });
    } catch (err) {
      job.state = 'failed';
      job.error = errorMessage(err);
      this.log.error('bootwiz build failed; the previous build (if any) keeps serving', { id: recipe.id, step: job.step, err: job.error });
    } finally {
      job.finishedAt = new Date().toISOString();
    }
  }

  private async publishAndOffer(recipe: Recipe): Promise<{ seq: number; digest: string | null }> {
    if (this.stopped) throw new Error('stopping');
    const ref = await this.host.publish(buildDir(this.options.dataDir, recipe.id), recipe.id);
    this.host.offer(prebootImage(recipe));
    return ref;
  }
}

function resultOf(dir: string, info: BuildInfo, resolved: boolean, ref: { seq: number; digest: string | null }): NonNullable<BootwizJob['result']> {
  return { dir, kernelVersion: info.kernelVersion, kernelBytes: info.kernel.bytes, initrdBytes: info.initrd.bytes, initrdSha256: info.initrd.sha256, resolved, package: ref };
}

/** The bootwiz routes of the Interface's control socket, registered before the service starts. */
export function bootwizControlRoutes(service: () => BootwizService | null): Record<string, ControlHandler> {
  return Object.fromEntries(['POST /bootwiz/build', 'GET /bootwiz/jobs'].map((key) => [key, (req) => {
    const s = service();
    if (s === null) throw new HttpError(503, 'bootwiz is starting');
    return s.controlRoutes()[key]!(req);
  }]));
}
