// WinPE preboot packages: an administrator's boot.wim (Windows ADK: we cannot ship one) plus
// wimboot (https://ipxe.org/wimboot; not in Debian either), kept under
// `<data>/bootwiz/winpe/<id>/` as given, and a build in `<data>/bootwiz/builds/<id>/` that adds
// the Windows driver packages of its arch with wimlib (`wimupdate`, Debian's wimtools): each
// package's files under `\Drivers\<package>\`, and `\Windows\System32\startnet.cmd` starting with
// one `drvload` per INF before its original lines.
//
// Why change the WIM rather than let wimboot inject files at boot: wimboot injects flat files into
// X:\Windows\System32 only (no folders), so INF folders whose files share names (every vendor
// ships a `.cat` and `.sys` set) would collide, and the result could only be seen by booting
// Windows; a changed WIM is one file to publish and replicate, and wimlib reads it back here.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { writeFileAtomic } from '../platform/runtime/atomic-file.ts';
import { NetbootError } from '../platform/runtime/errors.ts';
import { sha256Hex } from '../packages/digest.ts';
import type { Image } from '../sbs/types.ts';
import { bootwizDir, buildDir } from './build.ts';
import { filesUnder, type DriverArch, type DriverInput } from './drivers.ts';
import { tool } from './extract.ts';

export const WIM_FILE = 'boot.wim';
export const WIMBOOT_FILE = 'wimboot';
export const WINPE_INFO_FILE = 'build.json';
export const STARTNET = '/Windows/System32/startnet.cmd';

export class WinpeError extends NetbootError {
  constructor(message: string) {
    super('BOOTWIZ_WINPE', message);
  }
}

export interface WinpeRecipe {
  readonly id: string;
  readonly name: string;
  readonly driverArch: DriverArch;
  /** The WIM's boot image index (wiminfo's "Boot Index", else 1). */
  readonly index: number;
}

export interface WinpeInfo {
  readonly id: string;
  readonly kind: 'winpe';
  readonly index: number;
  readonly drivers: ReadonlyArray<{ readonly id: string; readonly digest: string; readonly infs: readonly string[] }>;
  readonly wim: { readonly bytes: number; readonly sha256: string };
  readonly wimboot: { readonly bytes: number; readonly sha256: string };
}

export const winpeDir = (dataDir: string, id?: string): string => join(bootwizDir(dataDir), 'winpe', ...(id === undefined ? [] : [id]));

/** The WinPE recipes this site was given (`netboot bootwiz build --winpe`). */
export function winpeRecipes(dataDir: string): WinpeRecipe[] {
  const root = winpeDir(dataDir);
  if (!existsSync(root)) return [];
  const out: WinpeRecipe[] = [];
  for (const id of filesUnder(root).filter((f) => f.endsWith('/recipe.json')).map((f) => f.slice(0, -'/recipe.json'.length)).sort()) {
    try {
      out.push(JSON.parse(readFileSync(join(root, id, 'recipe.json'), 'utf8')) as WinpeRecipe);
    } catch {
      // A half-written recipe: ignored until it is whole.
    }
  }
  return out;
}

export function readWinpeInfo(dataDir: string, id: string): WinpeInfo | null {
  try {
    const info = JSON.parse(readFileSync(join(buildDir(dataDir, id), WINPE_INFO_FILE), 'utf8')) as WinpeInfo;
    return info.kind === 'winpe' ? info : null;
  } catch {
    return null;
  }
}

/**
 * Keeps the administrator's WIM and wimboot as a WinPE recipe `id`; refuses clearly without
 * wimboot, or when wimlib cannot read the WIM.
 */
export async function createWinpe(o: { dataDir: string; id: string; wim: string; wimboot: string | null; arch?: DriverArch }): Promise<WinpeRecipe> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(o.id)) throw new WinpeError(`--id ${JSON.stringify(o.id)}: letters, digits, ".", "_" and "-"`);
  const dir = winpeDir(o.dataDir, o.id);
  const wimboot = o.wimboot ?? (existsSync(join(dir, WIMBOOT_FILE)) ? join(dir, WIMBOOT_FILE) : join(bootwizDir(o.dataDir), WIMBOOT_FILE));
  if (!existsSync(wimboot) || !statSync(wimboot).isFile() || statSync(wimboot).size === 0) {
    throw new WinpeError(`WinPE needs wimboot (https://ipxe.org/wimboot), which Debian does not package: pass --wimboot FILE, or put it at ${join(bootwizDir(o.dataDir), WIMBOOT_FILE)}`);
  }
  let infoText: string;
  try {
    infoText = await tool('wiminfo', [o.wim]);
  } catch (err) {
    throw new WinpeError(`${o.wim}: wimlib cannot read it as a WIM (${(err as Error).message})`);
  }
  const boot = /^Boot Index:\s+(\d+)/m.exec(infoText);
  const index = boot !== null && Number(boot[1]) > 0 ? Number(boot[1]) : 1;
  mkdirSync(dir, { recursive: true });
  if (o.wim !== join(dir, 'source.wim')) copyFileSync(o.wim, join(dir, 'source.wim'));
  if (wimboot !== join(dir, WIMBOOT_FILE)) copyFileSync(wimboot, join(dir, WIMBOOT_FILE));
  const recipe: WinpeRecipe = { id: o.id, name: `WinPE ${o.id}`, driverArch: o.arch ?? 'x64', index };
  writeFileAtomic(join(dir, 'recipe.json'), `${JSON.stringify(recipe, null, 2)}\n`);
  return recipe;
}

/** `startnet.cmd` with a drvload line per INF (X:\Drivers\<pkg>\...) before its original lines. */
export function startnetWith(original: string, drivers: ReadonlyArray<{ id: string; infs: readonly string[] }>): string {
  const lines = drivers.flatMap((d) => d.infs.map((inf) => `drvload X:\\Drivers\\${d.id}\\${inf.split('/').join('\\')}`));
  if (lines.length === 0) return original;
  const body = original === '' ? 'wpeinit\r\n' : original;
  return `@rem netboot: driver packages (bootwiz)\r\n${lines.join('\r\n')}\r\n${body}`;
}

/**
 * Builds `<data>/bootwiz/builds/<id>/` from the recipe's WIM and these Windows driver packages
 * (swapped in whole; the previous build stays until then).
 */
export async function buildWinpe(dataDir: string, recipe: WinpeRecipe, drivers: readonly DriverInput[]): Promise<WinpeInfo> {
  const src = winpeDir(dataDir, recipe.id);
  const current = buildDir(dataDir, recipe.id);
  const staging = join(bootwizDir(dataDir), 'builds', `.${recipe.id}.staging-${process.pid}-${Date.now()}`);
  const work = join(bootwizDir(dataDir), 'work', `winpe-${recipe.id}-${process.pid}-${Date.now()}`);
  const sorted = [...drivers].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  try {
    mkdirSync(staging, { recursive: true });
    mkdirSync(work, { recursive: true });
    const wim = join(staging, WIM_FILE);
    copyFileSync(join(src, 'source.wim'), wim);
    copyFileSync(join(src, WIMBOOT_FILE), join(staging, WIMBOOT_FILE));
    const described = sorted.map((d) => ({ id: d.id, digest: d.digest, infs: filesUnder(d.dir).filter((f) => /\.inf$/i.test(f)) }));
    if (sorted.length > 0) {
      let original = '';
      try {
        await tool('wimextract', [join(src, 'source.wim'), String(recipe.index), STARTNET, `--dest-dir=${work}`, '--no-acls']);
        original = readFileSync(join(work, 'startnet.cmd'), 'latin1');
      } catch {
        // No startnet.cmd in the WIM: ours ends with wpeinit, as WinPE's default does.
      }
      writeFileSync(join(work, 'startnet.new.cmd'), startnetWith(original, described), 'latin1');
      // Copies with fixed times (the package's files carry this site's times), so the same
      // drivers give the same WIM contents; a /Drivers that wimlib would create gets ours.
      const tree = join(work, 'tree');
      for (const d of sorted) {
        for (const f of filesUnder(d.dir)) {
          mkdirSync(join(tree, d.id, f, '..'), { recursive: true });
          copyFileSync(join(d.dir, f), join(tree, d.id, f));
        }
      }
      fixTimes(tree);
      fixTimes(join(work, 'startnet.new.cmd'));
      const commands = [
        `add '${tree}' '/Drivers'`,
        `add '${join(work, 'startnet.new.cmd')}' '${STARTNET}'`,
      ];
      // wimupdate reads its commands from stdin, one per line.
      await tool('wimupdate', [wim, String(recipe.index)], { input: Readable.from([`${commands.join('\n')}\n`]) });
    }
    const wimBytes = readFileSync(wim);
    const wimboot = readFileSync(join(staging, WIMBOOT_FILE));
    const info: WinpeInfo = {
      id: recipe.id, kind: 'winpe', index: recipe.index, drivers: described,
      wim: { bytes: wimBytes.length, sha256: sha256Hex(wimBytes) }, wimboot: { bytes: wimboot.length, sha256: sha256Hex(wimboot) },
    };
    writeFileSync(join(staging, WINPE_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
    const old = `${staging}.old`;
    if (existsSync(current)) renameSync(current, old);
    renameSync(staging, current);
    rmSync(old, { recursive: true, force: true });
    return info;
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(staging, { recursive: true, force: true });
  }
}

const FIXED_TIME = new Date('2000-01-01T00:00:00Z');

/** Sets a file's or a whole tree's times to FIXED_TIME. */
function fixTimes(path: string): void {
  if (statSync(path).isDirectory()) for (const name of readdirSync(path)) fixTimes(join(path, name));
  utimesSync(path, FIXED_TIME, FIXED_TIME);
}

/** The SBS image for a WinPE build (iPXE loads wimboot from the TFTP root and boot.wim from the package). */
export function winpeImage(recipe: WinpeRecipe): Image {
  return { id: recipe.id, name: recipe.name, arch: ['bios', 'efi-x64'], type: 'winpe', wim: WIM_FILE, package: recipe.id };
}
