// BootWiz inside the Interface (which owns the package store and the state): builds run as jobs
// the CLI follows (`POST /bootwiz/build`, `GET /bootwiz/jobs?id=`), their progress is in the
// log and in the Interface's status; a finished build is published as a `preboot` package and
// its SBS image offered on this site. The host (services/interface) supplies publish and offer.
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HttpError, type ControlHandler } from '../platform/local/control.ts';
import { writeFileAtomic } from '../platform/runtime/atomic-file.ts';
import { errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { sha256Hex } from '../packages/digest.ts';
import type { Image } from '../sbs/types.ts';
import { bootwizDir, build, buildDir, cacheDir, readBuildInfo, type BuildInfo, type BuildProgress } from './build.ts';
import { buildAgentOverlay, bundleAgent, DEFAULT_AGENT_ENTRY, type AgentInfo } from './agent.ts';
import { buildOverlay, kernelTree, readDrivers, selectDrivers, type OverlayInfo } from './drivers.ts';
import { readLock } from './lock.ts';
import { buildWinpe, createWinpe, readWinpeInfo, WIMBOOT_FILE, winpeImage, winpeRecipes, type WinpeRecipe } from './winpe.ts';
import { installIpxeFiles } from './ipxe-files.ts';
import { AGENT_FILE, AGENT_INFO_FILE, LOCK_FILE, OVERLAY_FILE, OVERLAY_INFO_FILE, prebootImage, RECIPES, type Recipe } from './recipe.ts';

export interface BootwizHost {
  /** Publishes a build folder as a `preboot` package (Ready here when it resolves). */
  publish(dir: string, id: string): Promise<{ seq: number; digest: string | null }>;
  /** Offers the image on this site (kept in the state's table of built images). */
  offer(image: Image): void;
  /** Driver packages Ready on this server (any OS; driver.json says which). */
  readyDrivers(): Array<{ id: string; digest: string; dir: string }>;
  /** Whether this site publishes package `id` (it owns it, or nobody has it yet). */
  owns(id: string): boolean;
}

/** What status changes BootwizService needs from the package component. */
export interface PackageStatusLike {
  readonly package: string;
  readonly state: string;
  readonly digest: string | null;
}

/** Several driver packages arriving together make one rebuild: changes wait this long to settle. */
export const DRIVER_SETTLE_MS = 300;

export interface BootwizOptions {
  readonly dataDir: string;
  /** Build every recipe that has no build yet when the Interface starts. */
  readonly buildOnStart: boolean;
  /** Put Debian's iPXE builds into the TFTP root where missing, when the Interface starts. */
  readonly installIpxe: boolean;
  readonly tftpRoot: string;
  /** How long driver changes settle before a rebuild (default DRIVER_SETTLE_MS). */
  readonly driverSettleMs?: number;
  /** The imaging agent's entry file (`[bootwiz] agent_entry`); null or absent: DEFAULT_AGENT_ENTRY. */
  readonly agentEntry?: string | null;
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
  /** Per recipe: builds and overlay rebuilds run one after another. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Recipes with an overlay rebuild queued and not yet started (more changes join it). */
  private readonly queued = new Set<string>();
  private settleTimer: NodeJS.Timeout | null = null;
  private readonly overlays = new Map<string, { at: string; drivers: string[]; ms: number; seq: number | null; error?: string }>();

  constructor(private readonly options: BootwizOptions, private readonly log: Logger, private readonly host: BootwizHost) {}

  /** Offers what was built before; builds in the background what was never built (if asked to). */
  start(): void {
    if (this.options.installIpxe) {
      installIpxeFiles(this.options.dataDir, this.options.tftpRoot).then(
        (written) => { if (written.length > 0) this.log.info('bootwiz: Debian\'s iPXE builds put into the TFTP root', { files: written, tftpRoot: this.options.tftpRoot }); },
        (err) => this.log.error('bootwiz: cannot put iPXE builds into the TFTP root', { err: errorMessage(err) }),
      );
    }
    for (const recipe of winpeRecipes(this.options.dataDir)) {
      if (readWinpeInfo(this.options.dataDir, recipe.id) === null) continue;
      void this.serial(recipe.id, async () => {
        if (this.host.owns(recipe.id)) await this.writeWinpe(recipe, false);
        await this.publishImage(recipe.id, winpeImage(recipe));
      }).catch((err) => this.log.error('bootwiz: cannot publish the existing WinPE build', { id: recipe.id, err: errorMessage(err) }));
    }
    for (const recipe of Object.values(RECIPES)) {
      if (readBuildInfo(this.options.dataDir, recipe.id) !== null) {
        // Drivers may have come or gone while we were down, and netboot (so its agent) may be
        // another version: the overlays first, then publish (identical content is unchanged).
        void this.serial(recipe.id, async () => {
          if (this.host.owns(recipe.id)) {
            await this.writeOverlay(recipe, false);
            await this.writeAgent(recipe, false);
          }
          await this.publishAndOffer(recipe);
        }).catch((err) => this.log.error('bootwiz: cannot publish the existing build', { id: recipe.id, err: errorMessage(err) }));
      } else if (this.options.buildOnStart) {
        this.log.info('bootwiz: no build yet; building in the background', { id: recipe.id });
        this.build(recipe.id, {});
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.settleTimer = null;
    await Promise.allSettled([...this.chains.values()]);
  }

  /**
   * The package component's status changes: a driver package Ready here, or gone, rebuilds the
   * overlay of every preboot this site owns whose driver set it changes (after DRIVER_SETTLE_MS,
   * so a burst makes one rebuild). Any package's change is checked: the check is cheap, and a
   * removed package's tombstone no longer says it was a driver.
   */
  onPackageStatus(s: PackageStatusLike): void {
    if (this.stopped || RECIPES[s.package] !== undefined) return;
    if (s.state !== 'ready' && s.state !== 'absent' && s.state !== 'deleting') return;
    if (this.settleTimer !== null) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      for (const target of this.targets()) this.queueOverlay(target);
    }, this.options.driverSettleMs ?? DRIVER_SETTLE_MS);
  }

  /** Resolves once every queued build and overlay rebuild has finished (tests). */
  async idle(): Promise<void> {
    for (;;) {
      if (this.settleTimer !== null) await new Promise((r) => setTimeout(r, this.options.driverSettleMs ?? DRIVER_SETTLE_MS));
      const chains = [...this.chains.values()];
      if (chains.length === 0 && this.settleTimer === null) return;
      await Promise.allSettled(chains);
    }
  }

  /** Every preboot this site may rebuild for drivers: the Linux recipes and the WinPE ones. */
  private targets(): DriverTarget[] {
    const linux = Object.values(RECIPES).map((recipe): DriverTarget => ({
      id: recipe.id, built: () => readBuildInfo(this.options.dataDir, recipe.id) !== null,
      refresh: (force) => this.writeOverlay(recipe, force), image: () => prebootImage(recipe),
      drivers: () => this.overlayInfo(recipe.id)?.drivers.map((d) => d.id) ?? [],
    }));
    const winpe = winpeRecipes(this.options.dataDir).map((recipe): DriverTarget => ({
      id: recipe.id, built: () => readWinpeInfo(this.options.dataDir, recipe.id) !== null,
      refresh: (force) => this.writeWinpe(recipe, force), image: () => winpeImage(recipe),
      drivers: () => readWinpeInfo(this.options.dataDir, recipe.id)?.drivers.map((d) => d.id) ?? [],
    }));
    return [...linux, ...winpe];
  }

  private queueOverlay(target: DriverTarget): void {
    if (this.stopped || this.queued.has(target.id)) return;
    this.queued.add(target.id);
    void this.serial(target.id, async () => {
      this.queued.delete(target.id);
      if (this.stopped || !target.built() || !this.host.owns(target.id)) return;
      const t0 = Date.now();
      try {
        const changed = await target.refresh(false);
        if (!changed) return;
        const ref = await this.publishImage(target.id, target.image());
        const drivers = target.drivers();
        this.overlays.set(target.id, { at: new Date().toISOString(), drivers, ms: Date.now() - t0, seq: ref.seq });
        this.log.info('bootwiz: driver packages changed; preboot rebuilt and published', { id: target.id, drivers, seq: ref.seq, digest: ref.digest, ms: Date.now() - t0 });
      } catch (err) {
        this.overlays.set(target.id, { at: new Date().toISOString(), drivers: [], ms: Date.now() - t0, seq: null, error: errorMessage(err) });
        this.log.error('bootwiz: cannot rebuild for the driver packages; the previous version keeps serving', { id: target.id, err: errorMessage(err) });
      }
    });
  }

  /** The Windows driver packages of its arch into the WIM; false when it holds those already. */
  private async writeWinpe(recipe: WinpeRecipe, force: boolean): Promise<boolean> {
    const ready = readDrivers(this.host.readyDrivers(), (id, err) => this.log.warn('bootwiz: a driver package without a valid driver.json is left out', { package: id, err }));
    const drivers = selectDrivers(ready, { os: 'windows', arch: recipe.driverArch, drivers: 'all' });
    const prev = readWinpeInfo(this.options.dataDir, recipe.id);
    const key = JSON.stringify(drivers.map((d) => [d.id, d.digest]).sort());
    if (!force && prev !== null && key === JSON.stringify(prev.drivers.map((d) => [d.id, d.digest]).sort())) return false;
    const info = await buildWinpe(this.options.dataDir, recipe, drivers);
    this.log.info('bootwiz: WinPE written', { id: recipe.id, drivers: info.drivers.map((d) => ({ id: d.id, infs: d.infs.length })), wimBytes: info.wim.bytes });
    return true;
  }

  /** `netboot bootwiz build --winpe FILE.wim --id ID`: keeps the WIM and wimboot, builds, publishes, offers. */
  buildWinpe(request: { id: string; wim: string; wimboot: string | null }): BootwizJob {
    if (this.running.has(request.id)) throw new HttpError(409, `${request.id} is being built already`);
    const job: BootwizJob = { id: randomUUID(), recipe: request.id, state: 'running', step: 'start', fraction: 0, detail: '', startedAt: new Date().toISOString() };
    this.jobs.set(job.id, job);
    const done = this.serial(request.id, async () => {
      try {
        job.step = 'wim';
        job.detail = request.wim;
        const recipe = await createWinpe({ dataDir: this.options.dataDir, id: request.id, wim: request.wim, wimboot: request.wimboot });
        job.fraction = 0.3;
        job.step = 'drivers';
        await this.writeWinpe(recipe, true);
        job.fraction = 0.7;
        job.step = 'publish';
        const ref = await this.publishImage(recipe.id, winpeImage(recipe));
        const info = readWinpeInfo(this.options.dataDir, recipe.id)!;
        job.result = { dir: buildDir(this.options.dataDir, recipe.id), kernelVersion: 'wimboot', kernelBytes: info.wimboot.bytes, initrdBytes: info.wim.bytes, initrdSha256: info.wim.sha256, resolved: false, package: ref };
        job.state = 'done';
        job.fraction = 1;
        this.log.info('bootwiz WinPE build done', { id: recipe.id, seq: ref.seq, drivers: info.drivers.map((d) => d.id) });
      } catch (err) {
        job.state = 'failed';
        job.error = errorMessage(err);
        this.log.error('bootwiz WinPE build failed; the previous build (if any) keeps serving', { id: request.id, err: job.error });
      } finally {
        job.finishedAt = new Date().toISOString();
      }
    }).finally(() => this.running.delete(request.id));
    this.running.set(request.id, done);
    return job;
  }

  private serial(id: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    const tail = next.catch(() => undefined);
    this.chains.set(id, tail);
    void tail.then(() => { if (this.chains.get(id) === tail) this.chains.delete(id); });
    return next;
  }

  /** iPXE loads wimboot from the TFTP root: the administrator's copy goes there when missing. */
  private installWimboot(id: string): void {
    const to = join(this.options.tftpRoot, WIMBOOT_FILE);
    try {
      if (!existsSync(to)) {
        mkdirSync(this.options.tftpRoot, { recursive: true });
        copyFileSync(join(buildDir(this.options.dataDir, id), WIMBOOT_FILE), to);
        this.log.info('bootwiz: wimboot put into the TFTP root', { from: id, path: to });
      }
    } catch (err) {
      this.log.warn('bootwiz: cannot put wimboot into the TFTP root', { err: errorMessage(err) });
    }
  }

  /** The current build's overlay description, or null. */
  overlayInfo(id: string): (OverlayInfo & { sha256: string }) | null {
    try {
      return JSON.parse(readFileSync(join(buildDir(this.options.dataDir, id), OVERLAY_INFO_FILE), 'utf8')) as OverlayInfo & { sha256: string };
    } catch {
      return null;
    }
  }

  /** The current build's agent overlay description, or null. */
  agentInfo(id: string): AgentInfo | null {
    try {
      return JSON.parse(readFileSync(join(buildDir(this.options.dataDir, id), AGENT_INFO_FILE), 'utf8')) as AgentInfo;
    } catch {
      return null;
    }
  }

  /**
   * Bundles the agent and writes the build's agent overlay when the bundle differs from the one
   * it holds (or `force`); false when unchanged. A missing entry gives an overlay without an
   * agent; an entry that does not compile keeps the previous overlay (and is logged).
   */
  private async writeAgent(recipe: Recipe, force: boolean): Promise<boolean> {
    const dir = buildDir(this.options.dataDir, recipe.id);
    if (readBuildInfo(this.options.dataDir, recipe.id) === null) return false;
    const entry = this.options.agentEntry ?? DEFAULT_AGENT_ENTRY;
    let bundle;
    try {
      bundle = await bundleAgent(entry);
    } catch (err) {
      if (existsSync(join(dir, AGENT_FILE))) {
        this.log.error('bootwiz: cannot bundle the imaging agent; the previous agent.img stays', { id: recipe.id, entry, err: errorMessage(err) });
        return false;
      }
      throw err;
    }
    if (bundle === null) this.log.warn('bootwiz: no imaging agent to bundle; LinuxPE boots without one', { id: recipe.id, entry });
    const prev = this.agentInfo(recipe.id);
    if (!force && prev !== null && existsSync(join(dir, AGENT_FILE)) && (prev.agent?.sha256 ?? null) === (bundle?.sha256 ?? null)) return false;
    const { compressed, info } = await buildAgentOverlay(bundle);
    writeFileAtomic(join(dir, AGENT_FILE), compressed);
    writeFileAtomic(join(dir, AGENT_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
    this.log.info('bootwiz: agent overlay written', { id: recipe.id, entry, agent: info.agent, bytes: info.bytes, previous: prev?.agent?.sha256 ?? null });
    return true;
  }

  /**
   * Writes the build's driver overlay from the driver packages Ready here; false when it already
   * holds exactly those versions (and `force` is false).
   */
  private async writeOverlay(recipe: Recipe, force: boolean): Promise<boolean> {
    const dir = buildDir(this.options.dataDir, recipe.id);
    const info = readBuildInfo(this.options.dataDir, recipe.id);
    if (info === null) return false;
    const ready = readDrivers(this.host.readyDrivers(), (id, err) => this.log.warn('bootwiz: a driver package without a valid driver.json is left out', { package: id, err }));
    const drivers = selectDrivers(ready, { os: recipe.driverOs, arch: recipe.driverArch, drivers: recipe.drivers });
    const key = JSON.stringify(drivers.map((d) => [d.id, d.digest]).sort());
    const prev = this.overlayInfo(recipe.id);
    const prevKey = prev === null ? null : JSON.stringify(prev.drivers.map((d) => [d.id, d.digest]).sort());
    if (!force && key === prevKey && existsSync(join(dir, OVERLAY_FILE))) return false;
    const bw = bootwizDir(this.options.dataDir);
    let tree = '';
    if (drivers.length > 0) {
      const kernel = readLock(join(dir, LOCK_FILE))?.packages.kernel;
      if (kernel === undefined) throw new Error(`${dir}/${LOCK_FILE} names no kernel`);
      tree = await kernelTree(bw, cacheDir(this.options.dataDir), kernel);
    }
    const { compressed, info: overlay } = await buildOverlay({ tree, kver: info.kernelVersion, baseModules: info.modules, drivers, work: join(bw, 'work', `overlay-${recipe.id}-${process.pid}`) });
    for (const d of overlay.drivers) for (const w of d.warnings) this.log.warn('bootwiz: driver package', { id: recipe.id, package: d.id, warning: w });
    const described = { ...overlay, sha256: sha256Hex(compressed) };
    // Each file whole or not at all; the package published from this folder is a new version, the
    // one machines boot now stays until that is Ready.
    writeFileAtomic(join(dir, OVERLAY_FILE), compressed);
    writeFileAtomic(join(dir, OVERLAY_INFO_FILE), `${JSON.stringify(described, null, 2)}\n`);
    this.log.info('bootwiz: driver overlay written', { id: recipe.id, drivers: overlay.drivers.map((d) => ({ id: d.id, modules: d.modules, firmware: d.firmware.length })), bytes: compressed.length });
    return true;
  }

  /** Starts a build of `recipeId`; one at a time per recipe. */
  build(recipeId: string, request: BuildRequest): BootwizJob {
    const recipe = RECIPES[recipeId];
    if (recipe === undefined) throw new HttpError(404, `no recipe ${recipeId} (known: ${Object.keys(RECIPES).join(', ')})`);
    if (this.running.has(recipeId)) throw new HttpError(409, `${recipeId} is being built already`);
    const job: BootwizJob = { id: randomUUID(), recipe: recipeId, state: 'running', step: 'start', fraction: 0, detail: '', startedAt: new Date().toISOString() };
    this.jobs.set(job.id, job);
    const done = this.serial(recipeId, () => this.runJob(job, recipe, request)).finally(() => this.running.delete(recipeId));
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
  status(): Record<string, { state: string; step?: string; percent?: number; detail?: string; error?: string; built: { kernelVersion: string; initrdBytes: number } | null; drivers: string[]; agent: { entry: string; sha256: string } | null; lastDriverRebuild?: { at: string; drivers: string[]; ms: number; seq: number | null; error?: string } }> {
    const out: ReturnType<BootwizService['status']> = {};
    for (const recipe of Object.values(RECIPES)) {
      const last = [...this.jobs.values()].filter((j) => j.recipe === recipe.id).at(-1);
      const info = readBuildInfo(this.options.dataDir, recipe.id);
      const built = info === null ? null : { kernelVersion: info.kernelVersion, initrdBytes: info.initrd.bytes };
      const overlay = this.overlayInfo(recipe.id);
      const agent = this.agentInfo(recipe.id)?.agent ?? null;
      const drivers = { drivers: overlay?.drivers.map((d) => d.id) ?? [], agent: agent === null ? null : { entry: agent.entry, sha256: agent.sha256 }, ...(this.overlays.has(recipe.id) ? { lastDriverRebuild: this.overlays.get(recipe.id)! } : {}) };
      if (last === undefined) out[recipe.id] = { state: info === null ? 'not built' : 'built', built, ...drivers };
      else out[recipe.id] = { state: last.state === 'running' ? 'building' : last.state === 'done' ? 'built' : 'failed', step: last.step, percent: Math.round(last.fraction * 100), detail: last.detail, ...(last.error === undefined ? {} : { error: last.error }), built, ...drivers };
    }
    return out;
  }

  controlRoutes(): Record<string, ControlHandler> {
    return {
      'POST /bootwiz/build': (req) => {
        const b = (req.body ?? {}) as { id?: unknown; update?: unknown; lock?: unknown; winpe?: unknown; wimboot?: unknown };
        if (b.winpe !== undefined) {
          if (typeof b.winpe !== 'string' || !b.winpe.startsWith('/')) throw new HttpError(400, 'winpe: an absolute path');
          if (b.wimboot !== undefined && (typeof b.wimboot !== 'string' || !b.wimboot.startsWith('/'))) throw new HttpError(400, 'wimboot: an absolute path');
          if (typeof b.id !== 'string' || RECIPES[b.id] !== undefined) throw new HttpError(400, 'id: the WinPE package id (not a Linux recipe\'s)');
          return { job: this.buildWinpe({ id: b.id, wim: b.winpe, wimboot: typeof b.wimboot === 'string' ? b.wimboot : null }).id };
        }
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
      job.step = 'drivers';
      job.detail = 'driver overlay';
      await this.writeOverlay(recipe, true);
      job.detail = 'agent overlay';
      await this.writeAgent(recipe, true);
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
    return this.publishImage(recipe.id, prebootImage(recipe));
  }

  private async publishImage(id: string, image: Image): Promise<{ seq: number; digest: string | null }> {
    if (this.stopped) throw new Error('stopping');
    const ref = await this.host.publish(buildDir(this.options.dataDir, id), id);
    if (image.type === 'winpe') this.installWimboot(id);
    this.host.offer(image);
    return ref;
  }
}

interface DriverTarget {
  readonly id: string;
  built(): boolean;
  refresh(force: boolean): Promise<boolean>;
  image(): Image;
  drivers(): string[];
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
