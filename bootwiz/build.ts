// One build: recipe + lock (or apt's candidates) → `vmlinuz`, `initrd.img`, `lock.json`,
// `build.json` in `<data>/bootwiz/builds/<id>/`. Inputs are fetched and checked first; the new
// build is written to a staging folder and swapped in only when complete, so a failure at any
// step (apt cannot fetch, a module is missing) leaves the previous build as it was.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../platform/runtime/logger.ts';
import { sha256Hex } from '../packages/digest.ts';
import { fetchDeb, resolveEntry, resolveKernel } from './apt.ts';
import { extractDeb, tool, ToolError } from './extract.ts';
import { buildInitrd } from './initrd.ts';
import { decodeLock, encodeLock, readLock, type Lock, type LockEntry } from './lock.ts';
import { moduleLoadOrder } from './module-order.ts';
import { BUILD_INFO_FILE, INITRD_FILE, KERNEL_FILE, LOCK_FILE, type Recipe } from './recipe.ts';
import { collectUserland } from './userland.ts';

/** The recipe's roles in a lock: the kernel, busybox and `userland/<package>` for each userland package. */
export type Role = string;

/** The lock role of a userland package. */
export const userlandRole = (pkg: string): Role => `userland/${pkg}`;

export interface BuildProgress {
  readonly id: string;
  /** resolve, fetch, extract, modules, initrd, write. */
  readonly step: string;
  /** 0..1 over the whole build. */
  readonly fraction: number;
  readonly detail: string;
}

export interface BuildOptions {
  /** The data folder (`[paths] data`): cache and builds live under `<data>/bootwiz/`. */
  readonly dataDir: string;
  readonly recipe: Recipe;
  /** Resolve apt's candidates again instead of using the existing lock. */
  readonly update?: boolean;
  /** A lock to build from instead of the one next to the current build. */
  readonly lockPath?: string;
  readonly onProgress?: (p: BuildProgress) => void;
  readonly log?: Logger;
}

export interface BuildInfo {
  readonly id: string;
  readonly kernelVersion: string;
  readonly cmdline: string;
  readonly packages: Lock['packages'];
  readonly drivers: 'all' | readonly string[];
  readonly modules: readonly string[];
  /** The userland's files (programs and data) and the shared libraries they need (sonames). */
  readonly userland: { readonly files: readonly string[]; readonly libraries: readonly string[]; readonly bytes: number };
  readonly kernel: { readonly bytes: number; readonly sha256: string };
  readonly initrd: { readonly bytes: number; readonly sha256: string; readonly cpioBytes: number; readonly compression: 'gzip-6' };
}

export interface BuildResult {
  readonly dir: string;
  readonly info: BuildInfo;
  /** Whether the lock was resolved now (no lock, --update, or a role it lacked). */
  readonly resolved: boolean;
}

export const bootwizDir = (dataDir: string): string => join(dataDir, 'bootwiz');
export const cacheDir = (dataDir: string): string => join(bootwizDir(dataDir), 'cache');
export const buildDir = (dataDir: string, id: string): string => join(bootwizDir(dataDir), 'builds', id);

/** The current build's description, or null when there is none. */
export function readBuildInfo(dataDir: string, id: string): BuildInfo | null {
  try {
    return JSON.parse(readFileSync(join(buildDir(dataDir, id), BUILD_INFO_FILE), 'utf8')) as BuildInfo;
  } catch {
    return null;
  }
}

// Share of the whole build each step ends at (measured: fetch and unpacking dominate).
const STEP_END = { resolve: 0.03, fetch: 0.4, extract: 0.7, modules: 0.8, initrd: 0.97, write: 1 } as const;

export async function build(options: BuildOptions): Promise<BuildResult> {
  const { dataDir, recipe } = options;
  const steps = Object.keys(STEP_END) as Array<keyof typeof STEP_END>;
  const report = (step: keyof typeof STEP_END, within: number, detail: string): void => {
    const start = steps.indexOf(step) === 0 ? 0 : STEP_END[steps[steps.indexOf(step) - 1]!];
    options.onProgress?.({ id: recipe.id, step, fraction: start + (STEP_END[step] - start) * Math.min(1, within), detail });
  };
  const current = buildDir(dataDir, recipe.id);
  const work = join(bootwizDir(dataDir), 'work', `${recipe.id}-${process.pid}-${Date.now()}`);
  const staging = join(bootwizDir(dataDir), 'builds', `.${recipe.id}.staging-${process.pid}-${Date.now()}`);

  // 1. The lock: as given, as the current build's, or resolved from apt's candidates.
  report('resolve', 0, options.lockPath ?? (options.update ? 'apt candidates (--update)' : 'the current lock'));
  const existing = options.lockPath !== undefined ? readLock(options.lockPath) : options.update ? null : readLock(join(current, LOCK_FILE));
  if (options.lockPath !== undefined && existing === null) throw new ToolError(`no lock file at ${options.lockPath}`);
  const packages: Record<string, LockEntry> = { ...(existing?.packages ?? {}) };
  let resolved = false;
  const want: Record<Role, () => Promise<LockEntry>> = {
    kernel: () => resolveKernel(recipe.kernelPackage),
    busybox: () => resolveEntry(recipe.busyboxPackage),
    ...Object.fromEntries(recipe.userland.map((u) => [userlandRole(u.package), () => resolveEntry(u.package)])),
  };
  // A lock from a build before the userland existed resolves the roles it lacks; roles the recipe
  // no longer has are dropped.
  for (const role of Object.keys(packages)) if (want[role] === undefined) delete packages[role];
  for (const role of Object.keys(want) as Role[]) {
    if (packages[role] !== undefined) continue;
    packages[role] = await want[role]!();
    resolved = true;
  }
  // Normalised (roles in order), so build.json and the initrd do not depend on how it came about.
  const lock: Lock = decodeLock(encodeLock({ lock: 1, packages }), 'lock');

  try {
    // 2. The .debs, checked against the lock (and apt's index) before anything is unpacked.
    const debs: Record<Role, string> = {};
    const roles = Object.keys(want) as Role[];
    for (const [n, role] of roles.entries()) {
      const e = packages[role]!;
      report('fetch', n / roles.length, `${e.package} ${e.version}`);
      const got = await fetchDeb(cacheDir(dataDir), e);
      debs[role] = got.path;
      options.log?.info('bootwiz: package ready', { id: recipe.id, package: e.package, version: e.version, downloaded: got.downloaded });
    }

    // 3. Unpack.
    report('extract', 0, packages.kernel!.package);
    const kroot = join(work, 'kernel');
    await extractDeb(debs.kernel!, kroot);
    report('extract', 0.9, packages.busybox!.package);
    const broot = join(work, 'busybox');
    await extractDeb(debs.busybox!, broot, ['./bin/busybox']);
    // The userland: every package into one folder, as ld.so would see an installed system.
    const uroot = join(work, 'userland');
    for (const [n, u] of recipe.userland.entries()) {
      report('extract', 0.9 + (0.1 * n) / recipe.userland.length, packages[userlandRole(u.package)]!.package);
      await extractDeb(debs[userlandRole(u.package)]!, uroot);
    }
    const kvers = readdirSync(join(kroot, 'lib', 'modules'));
    if (kvers.length !== 1) throw new ToolError(`${packages.kernel!.package} holds ${kvers.length} module trees (${kvers.join(', ')}); expected one`);
    const kver = kvers[0]!;
    const vmlinuz = join(kroot, 'boot', `vmlinuz-${kver}`);
    if (!existsSync(vmlinuz)) throw new ToolError(`${packages.kernel!.package} has no boot/vmlinuz-${kver}`);

    // 4. Module load order, computed here.
    report('modules', 0, `${recipe.modules.length} modules for ${kver}`);
    const order = await moduleLoadOrder(kroot, kver, recipe.modules);

    // 5. The initrd.
    const userlandFiles = recipe.userland.flatMap((u) => u.files ?? []);
    const userland = await collectUserland(uroot, userlandFiles);
    report('initrd', 0, `${order.length} module files, busybox, ${userlandFiles.length} userland files, ${userland.libraries.length} libraries`);
    const busyboxPath = join(broot, 'bin', 'busybox');
    const applets = (await tool(busyboxPath, ['--list-full'])).split('\n').map((l) => l.trim()).filter((l) => l !== '');
    const kernel = readFileSync(vmlinuz);
    const infoBase = {
      id: recipe.id, kernelVersion: kver, cmdline: recipe.cmdline, packages: lock.packages, drivers: recipe.drivers,
      modules: order.map((m) => m.name),
      userland: { files: userlandFiles, libraries: userland.libraries, bytes: userland.bytes },
    };
    const { cpioBytes, compressed } = await buildInitrd({
      busybox: readFileSync(busyboxPath),
      applets,
      modules: order.map((m) => ({ ...m, data: readFileSync(join(kroot, m.path)) })),
      userland: userland.entries,
      extraFiles: {
        'etc/bootwiz/build.json': `${JSON.stringify(infoBase, null, 2)}\n`,
        // Debian's node reads this as its extra CA file and warns on every start when it is
        // missing; the preboot holds no public CAs (the agent talks to the site server).
        'etc/ssl/certs/ca-certificates.crt': '',
      },
    });
    const info: BuildInfo = {
      ...infoBase,
      kernel: { bytes: kernel.length, sha256: sha256Hex(kernel) },
      initrd: { bytes: compressed.length, sha256: sha256Hex(compressed), cpioBytes, compression: 'gzip-6' },
    };

    // 6. Staging, then swap: the previous build stays whole until the new one is.
    report('write', 0, current);
    mkdirSync(staging, { recursive: true });
    copyFileSync(vmlinuz, join(staging, KERNEL_FILE));
    writeFileSync(join(staging, INITRD_FILE), compressed);
    writeFileSync(join(staging, LOCK_FILE), encodeLock(lock));
    writeFileSync(join(staging, BUILD_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
    const old = `${staging}.old`;
    if (existsSync(current)) renameSync(current, old);
    renameSync(staging, current);
    rmSync(old, { recursive: true, force: true });
    report('write', 1, current);
    return { dir: current, info, resolved };
  } finally {
    // Asynchronously: the scratch tree (the kernel's modules, the userland packages) is thousands
    // of files, and the Interface that runs the build keeps answering meanwhile.
    await rm(work, { recursive: true, force: true });
    await rm(staging, { recursive: true, force: true });
  }
}
