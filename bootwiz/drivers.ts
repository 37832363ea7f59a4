// Driver packages and the Linux driver overlay. A driver package is a folder with `driver.json`
// ({"os": "linux"|"windows", "arch": "x64", "description": "..."}); a Linux one holds kernel
// modules (`*.ko`, anywhere) and firmware (under `firmware/`). The overlay is a second initrd
// beside the base one (the kernel unpacks concatenated initrds over each other), so adding a
// driver never rebuilds the base: modules go to /lib/modules/<kver>/extra/<pkg>/, the kernel
// modules they need that the base lacks are copied from the same kernel package, the load order
// (depmod + modprobe --show-depends against the base modules and these) to
// /etc/bootwiz/modules.d/<pkg>.list, firmware to /lib/firmware/, and /etc/bootwiz/drivers.d/<pkg>
// names the package on the banner. Same driver versions, same bytes (cpio.ts, gzip from node:zlib).
import { copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { NetbootError } from '../platform/runtime/errors.ts';
import { fetchDeb } from './apt.ts';
import { writeCpio, type CpioEntry } from './cpio.ts';
import { extractDeb, tool } from './extract.ts';
import { DRIVERS_DIR, MODULES_DIR } from './init-script.ts';
import { GZIP_LEVEL } from './initrd.ts';
import type { LockEntry } from './lock.ts';
import { parseShowDepends, type ModuleLoad } from './module-order.ts';

const gzipAsync = promisify(gzip);

export const DRIVER_META_FILE = 'driver.json';
export const DRIVER_OSES = ['linux', 'windows'] as const;
export const DRIVER_ARCHES = ['x64', 'x86', 'arm64'] as const;
export type DriverOs = (typeof DRIVER_OSES)[number];
export type DriverArch = (typeof DRIVER_ARCHES)[number];

export interface DriverMeta {
  readonly os: DriverOs;
  readonly arch: DriverArch;
  readonly description: string;
}

export class DriverPackageError extends NetbootError {
  constructor(message: string) {
    super('DRIVER_PACKAGE_INVALID', message);
  }
}

const EXAMPLE = '{"os": "linux", "arch": "x64", "description": "Intel X710 (i40e) and its firmware"}';

/** driver.json's text → its fields; throws DriverPackageError saying what is wrong. */
export function parseDriverMeta(text: string, source: string): DriverMeta {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new DriverPackageError(`${source}: not JSON (${(err as Error).message}); expected e.g. ${EXAMPLE}`);
  }
  const r = raw as Record<string, unknown>;
  if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new DriverPackageError(`${source}: expected an object like ${EXAMPLE}`);
  const problems: string[] = [];
  if (!(DRIVER_OSES as readonly unknown[]).includes(r.os)) problems.push(`os: ${DRIVER_OSES.join(' or ')} (got ${JSON.stringify(r.os)})`);
  if (!(DRIVER_ARCHES as readonly unknown[]).includes(r.arch)) problems.push(`arch: ${DRIVER_ARCHES.join(', ')} (got ${JSON.stringify(r.arch)})`);
  if (typeof r.description !== 'string' || r.description.trim() === '' || r.description.length > 500) problems.push('description: a non-empty text (up to 500 characters)');
  if (problems.length > 0) throw new DriverPackageError(`${source}: ${problems.join('; ')}`);
  return { os: r.os as DriverOs, arch: r.arch as DriverArch, description: (r.description as string).trim() };
}

/** Every regular file under `dir`, relative, `/`-separated, sorted. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) out.push(relative(dir, p).split('\\').join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

const isModule = (rel: string): boolean => /\.ko$/.test(rel);
const isInf = (rel: string): boolean => /\.inf$/i.test(rel);

/**
 * Checks a folder about to be published as a driver package: driver.json at its top, valid, and
 * something for its OS (a `.ko` or firmware/ for linux, an `.inf` for windows).
 */
export function checkDriverDir(dir: string): DriverMeta {
  const metaPath = join(dir, DRIVER_META_FILE);
  let text: string;
  try {
    text = readFileSync(metaPath, 'utf8');
  } catch {
    throw new DriverPackageError(`a driver package needs ${DRIVER_META_FILE} at its top (${metaPath} is missing), e.g. ${EXAMPLE}`);
  }
  const meta = parseDriverMeta(text, metaPath);
  const files = filesUnder(dir);
  if (meta.os === 'linux' && !files.some((f) => isModule(f) || f.startsWith('firmware/'))) {
    throw new DriverPackageError(`${dir}: a linux driver package holds kernel modules (*.ko) or firmware files (under firmware/); found neither`);
  }
  if (meta.os === 'windows' && !files.some(isInf)) throw new DriverPackageError(`${dir}: a windows driver package holds INF folders; found no *.inf`);
  return meta;
}

/** A Ready driver package on this server. */
export interface DriverInput {
  readonly id: string;
  readonly digest: string;
  readonly dir: string;
  readonly meta: DriverMeta;
}

export interface OverlayInfo {
  readonly kernelVersion: string;
  readonly drivers: ReadonlyArray<{
    readonly id: string; readonly digest: string; readonly description: string;
    /** Load order of this package's modules and the kernel modules they need (names). */
    readonly modules: readonly string[];
    readonly firmware: readonly string[];
    readonly warnings: readonly string[];
  }>;
  readonly bytes: number;
  readonly sha256?: string;
}

/**
 * The kernel package's module tree (lib/modules/<kver>), unpacked once from the cached .deb
 * into `<data>/bootwiz/kernel/<sha256>/` and kept: overlay rebuilds then need no unpacking.
 */
export async function kernelTree(bootwizDir: string, cacheDir: string, kernel: LockEntry): Promise<string> {
  const root = join(bootwizDir, 'kernel', kernel.sha256.slice(0, 16));
  if (existsSync(join(root, '.complete'))) return root;
  const deb = await fetchDeb(cacheDir, kernel);
  const tmp = `${root}.tmp-${process.pid}-${Date.now()}`;
  try {
    await extractDeb(deb.path, tmp, ['./lib/modules']);
    writeFileSync(join(tmp, '.complete'), `${kernel.package} ${kernel.version}\n`);
    rmSync(root, { recursive: true, force: true });
    renameSync(tmp, root);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return root;
}

/** Hard-links (or copies) a tree: depmod then writes its index into the copy only. */
function linkTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    const a = join(from, name);
    const b = join(to, name);
    const st = lstatSync(a);
    if (st.isDirectory()) linkTree(a, b);
    else if (st.isFile() && !/^modules\./.test(name)) linkOrCopy(a, b);
  }
}

function linkOrCopy(a: string, b: string): void {
  try {
    linkSync(a, b);
  } catch {
    copyFileSync(a, b);
  }
}

export interface OverlayInput {
  /** kernelTree()'s folder (holding lib/modules/<kver>). */
  readonly tree: string;
  readonly kver: string;
  /** The base initrd's modules (names), not repeated in the overlay. */
  readonly baseModules: readonly string[];
  /** Linux driver packages, any order (sorted by id here). */
  readonly drivers: readonly DriverInput[];
  /** A scratch folder (removed afterwards). */
  readonly work: string;
}

/** The overlay initrd (gzip'd newc cpio) and what it holds. */
export async function buildOverlay(input: OverlayInput): Promise<{ compressed: Buffer; info: OverlayInfo }> {
  const drivers = [...input.drivers].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const entries: CpioEntry[] = [];
  const infos: Array<OverlayInfo['drivers'][number]> = [];
  const modDir = `lib/modules/${input.kver}`;
  const root = join(input.work, 'root');
  rmSync(input.work, { recursive: true, force: true });
  try {
    if (drivers.length > 0) {
      linkTree(join(input.tree, modDir), join(root, modDir));
      for (const d of drivers) {
        for (const f of filesUnder(d.dir).filter(isModule)) {
          const to = join(root, modDir, 'extra', d.id, f.slice(f.lastIndexOf('/') + 1));
          mkdirSync(dirname(to), { recursive: true });
          linkOrCopy(join(d.dir, f), to);
        }
      }
      await tool('depmod', ['-b', root, input.kver]);
    }
    const have = new Set(input.baseModules);
    const taken = new Set<string>();
    for (const d of drivers) {
      const warnings: string[] = [];
      const loads: ModuleLoad[] = [];
      const kos = filesUnder(d.dir).filter(isModule);
      for (const f of kos) {
        const name = f.slice(f.lastIndexOf('/') + 1).replace(/\.ko$/, '').replace(/-/g, '_');
        const magic = (await tool('modinfo', ['-F', 'vermagic', join(d.dir, f)]).catch(() => '')).trim();
        if (!magic.startsWith(`${input.kver} `)) warnings.push(`${f} is built for ${magic === '' ? 'an unknown kernel' : magic.split(' ')[0]}, not ${input.kver}: it will not load`);
        let text: string;
        try {
          text = await tool('modprobe', ['-d', root, '-S', input.kver, '--show-depends', name]);
        } catch (err) {
          warnings.push(`${f}: modprobe cannot order it: ${(err as Error).message}`);
          continue;
        }
        for (const m of parseShowDepends(text, root)) if (!have.has(m.name)) { have.add(m.name); loads.push(m); }
      }
      for (const m of loads) {
        if (taken.has(m.path)) continue;
        taken.add(m.path);
        entries.push({ path: m.path, type: 'file', data: readFileSync(join(root, m.path)) });
      }
      const firmware = filesUnder(d.dir).filter((f) => f.startsWith('firmware/') && f.length > 'firmware/'.length);
      for (const f of firmware) {
        const path = `lib/${f}`;
        if (taken.has(path)) { warnings.push(`${f} is in another driver package too; the first (by id) is kept`); continue; }
        taken.add(path);
        entries.push({ path, type: 'file', data: readFileSync(join(d.dir, f)) });
      }
      entries.push({ path: `${MODULES_DIR}/${d.id}.list`, type: 'file', data: Buffer.from(loads.map((m) => `${m.path}\n`).join('')) });
      entries.push({ path: `${DRIVERS_DIR}/${d.id}`, type: 'file', data: Buffer.from(`${d.meta.description}\ndigest ${d.digest}\n`) });
      infos.push({ id: d.id, digest: d.digest, description: d.meta.description, modules: loads.map((m) => m.name), firmware: firmware.map((f) => f.slice('firmware/'.length)), warnings });
    }
    // The folders init reads, even with no drivers (an empty overlay is a valid initrd).
    entries.push({ path: MODULES_DIR, type: 'dir' }, { path: DRIVERS_DIR, type: 'dir' });
    const compressed = await gzipAsync(writeCpio(entries), { level: GZIP_LEVEL });
    return { compressed, info: { kernelVersion: input.kver, drivers: infos, bytes: compressed.length } };
  } finally {
    rmSync(input.work, { recursive: true, force: true });
  }
}

/** The driver packages a recipe takes: its OS and arch, and its list unless it takes them all. */
export function selectDrivers(all: readonly DriverInput[], want: { os: DriverOs; arch: DriverArch; drivers: 'all' | readonly string[] }): DriverInput[] {
  return all.filter((d) => d.meta.os === want.os && d.meta.arch === want.arch && (want.drivers === 'all' || want.drivers.includes(d.id)));
}

/** The driver packages Ready here, each with its driver.json; one without a valid one is skipped. */
export function readDrivers(ready: ReadonlyArray<{ id: string; digest: string; dir: string }>, warn: (id: string, err: string) => void): DriverInput[] {
  const out: DriverInput[] = [];
  for (const r of ready) {
    try {
      out.push({ ...r, meta: parseDriverMeta(readFileSync(join(r.dir, DRIVER_META_FILE), 'utf8'), `${r.id}/${DRIVER_META_FILE}`) });
    } catch (err) {
      warn(r.id, (err as Error).message);
    }
  }
  return out;
}

export const isDirectory = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};
