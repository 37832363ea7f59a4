// `netboot bootwiz build [ID] [--update] [--lock FILE] [--json]`: builds a preboot environment
// (default linuxpe-x64) inside the running Interface, which publishes it as a `preboot` package
// and offers its image; the command follows the job: a progress bar on a terminal, one JSON line
// per change otherwise. Without a running Interface it builds here and says it did not publish
// (the Interface publishes an existing build when it starts).
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { controlCall, controlSocketPath } from '../platform/local/control.ts';
import { errorMessage } from '../platform/runtime/errors.ts';
import { build, type BuildProgress } from '../bootwiz/build.ts';
import type { BootwizJob } from '../bootwiz/bootwiz-service.ts';
import { RECIPES } from '../bootwiz/recipe.ts';
import { stringFlag, type CommandSpec } from './args.ts';
import { configFor, type CliContext, type Command } from './context.ts';

const USAGE = `usage:
  netboot bootwiz build [ID] [--update] [--lock FILE] [--json]
  netboot bootwiz build --winpe FILE.wim --id ID [--wimboot FILE] [--json]
    ID        a recipe (default linuxpe-x64; known: ${Object.keys(RECIPES).join(', ')})
    --update  resolve apt's current versions instead of the build's lock.json
    --lock    build exactly the versions in FILE
    --winpe   a WinPE preboot package ID from an administrator's boot.wim (Windows ADK), with
              wimboot (https://ipxe.org/wimboot; --wimboot FILE, or DATA/bootwiz/wimboot)`;

export const bootwizSpec: CommandSpec = {
  name: 'bootwiz',
  summary: 'preboot environments built from Debian packages',
  subcommands: {
    build: {
      name: 'bootwiz build', summary: 'build a preboot environment; publish and offer it', args: '[ID]', arity: [0, 1],
      options: {
        update: { type: 'boolean', help: 'resolve apt\'s current versions instead of the build\'s lock.json' },
        lock: { type: 'string', value: 'FILE', help: 'build exactly the versions in FILE' },
        json: { type: 'boolean', help: 'one JSON line per change instead of a progress bar' },
        winpe: { type: 'string', value: 'FILE.wim', help: 'build a WinPE preboot package from this boot.wim (with --id)' },
        wimboot: { type: 'string', value: 'FILE', help: 'wimboot for --winpe (not in Debian; default DATA/bootwiz/wimboot)' },
        id: { type: 'string', value: 'ID', help: 'the WinPE package and image id (with --winpe)' },
      },
      description: [`ID is a recipe (default linuxpe-x64; known: ${Object.keys(RECIPES).join(', ')}). The running Interface builds it, publishes it as a preboot package and offers its image; without one it builds here and the Interface publishes it when it starts.`, 'With --winpe FILE.wim --id ID: a WinPE preboot package from an administrator\'s boot.wim (Windows ADK) and wimboot (https://ipxe.org/wimboot, not in Debian: --wimboot FILE or DATA/bootwiz/wimboot; refused without it), offered as a winpe image. Windows driver packages are added to it, and Linux ones to LinuxPE, whenever they come or go.'],
    },
  },
};


export const bootwizCommand: Command = async (ctx) => {
  const [sub, id = 'linuxpe-x64', ...extra] = ctx.args.positionals;
  if (sub !== 'build' || extra.length > 0) {
    ctx.err(USAGE);
    return 2;
  }
  const config = configFor(ctx);
  const lockFlag = stringFlag(ctx.args, 'lock');
  const lock = lockFlag === undefined ? undefined : resolve(lockFlag);
  const update = ctx.args.flags.get('update') === true;
  const show = progressView(ctx);
  const winpeFlag = stringFlag(ctx.args, 'winpe');
  const winpe = winpeFlag === undefined ? undefined : resolve(winpeFlag);
  const wimbootFlag = stringFlag(ctx.args, 'wimboot');
  const winpeId = stringFlag(ctx.args, 'id');
  if (winpe !== undefined && (winpeId === undefined || ctx.args.positionals.length > 1)) {
    ctx.err(`netboot bootwiz build --winpe: --id ID names the WinPE package\n${USAGE}`);
    return 2;
  }
  const body = winpe === undefined ? { id, update, ...(lock === undefined ? {} : { lock }) }
    : { id: winpeId, winpe, ...(wimbootFlag === undefined ? {} : { wimboot: resolve(wimbootFlag) }) };
  let jobId: string;
  try {
    ({ job: jobId } = await controlCall<{ job: string }>(controlSocketPath(config.paths.data, 'interface'), 'POST', '/bootwiz/build', body));
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'CONTROL_UNREACHABLE') throw err;
    if (winpe !== undefined) {
      ctx.err('netboot bootwiz build --winpe: the Interface is not running (netboot run); it builds and publishes WinPE');
      return 1;
    }
    return buildHere(ctx, config.paths.data, id, update, lock, show);
  }
  let job: BootwizJob;
  for (;;) {
    job = await controlCall<BootwizJob>(controlSocketPath(config.paths.data, 'interface'), 'GET', `/bootwiz/jobs?id=${jobId}`);
    show({ id: winpeId ?? id, step: job.step, fraction: job.fraction, detail: job.detail });
    if (job.state !== 'running') break;
    await sleep(200);
  }
  show(null);
  if (job.state === 'failed') {
    ctx.err(`netboot bootwiz build ${winpeId ?? id}: ${job.error}\nThe previous build (if any) keeps serving.`);
    return 1;
  }
  const r = job.result!;
  if (ctx.args.flags.get('json') === true) ctx.out(JSON.stringify({ event: 'done', ...r }));
  else if (winpe !== undefined) ctx.out(`built WinPE ${winpeId}: boot.wim ${mib(r.initrdBytes)}, wimboot in ${r.dir}; published as preboot package ${winpeId} seq ${r.package.seq} and offered as image ${winpeId} (type winpe)`);
  else ctx.out(`built ${id}: kernel ${r.kernelVersion} (${mib(r.kernelBytes)}), initrd ${mib(r.initrdBytes)} in ${r.dir}; published as preboot package ${id} seq ${r.package.seq} and offered as image ${id}`);
  return 0;
};

async function buildHere(ctx: CliContext, dataDir: string, id: string, update: boolean, lock: string | undefined, show: (p: BuildProgress | null) => void): Promise<number> {
  const recipe = RECIPES[id];
  if (recipe === undefined) {
    ctx.err(`netboot bootwiz build: no recipe ${id}\n${USAGE}`);
    return 2;
  }
  try {
    const r = await build({ dataDir, recipe, update, ...(lock === undefined ? {} : { lockPath: lock }), onProgress: show });
    show(null);
    ctx.out(`built ${id}: kernel ${r.info.kernelVersion}, initrd ${mib(r.info.initrd.bytes)} in ${r.dir}; not published: the Interface is not running (it publishes this build when it starts)`);
    return 0;
  } catch (err) {
    show(null);
    ctx.err(`netboot bootwiz build ${id}: ${errorMessage(err)}\nThe previous build (if any) is unchanged.`);
    return 1;
  }
}

/** A bar on a terminal (stderr); JSON lines on stdout otherwise, one per change of step or percent. */
function progressView(ctx: CliContext): (p: BuildProgress | null) => void {
  const tty = process.stderr.isTTY === true && ctx.args.flags.get('json') !== true;
  let last = '';
  return (p) => {
    if (p === null) {
      if (tty && last !== '') process.stderr.write('\n');
      return;
    }
    const percent = Math.round(p.fraction * 100);
    const key = `${p.step} ${percent}`;
    if (key === last) return;
    last = key;
    if (tty) {
      const width = 30;
      const n = Math.round((percent / 100) * width);
      process.stderr.write(`\r[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${String(percent).padStart(3)}% ${p.step.padEnd(8)} ${p.detail.slice(0, 60).padEnd(60)}`);
    } else {
      ctx.out(JSON.stringify({ event: 'progress', id: p.id, step: p.step, percent, detail: p.detail }));
    }
  };
}

const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
