// The kernel modules to load and their order, worked out at build time: busybox's modprobe may
// not read Debian's modules.dep, so init runs a plain insmod list. `depmod -b ROOT KVER` indexes
// the unpacked kernel package; `modprobe --show-depends` prints `insmod PATH` lines with
// dependencies (and softdeps, e.g. crc32c for ext4) first.
import { NetbootError } from '../platform/runtime/errors.ts';
import { tool } from './extract.ts';

export interface ModuleLoad {
  /** The module's name as the kernel knows it (`e1000e`, `crc32c_intel`). */
  readonly name: string;
  /** Path inside the initrd, without a leading slash (`lib/modules/KVER/kernel/...ko`). */
  readonly path: string;
}

/**
 * `modprobe --show-depends` output → module files under `root`, in load order. Lines for
 * built-in modules (`builtin NAME`) need nothing.
 */
export function parseShowDepends(text: string, root: string): ModuleLoad[] {
  const prefix = `${root.replace(/\/+$/, '')}/`;
  const out: ModuleLoad[] = [];
  for (const line of text.split('\n')) {
    const m = /^insmod (\S+)/.exec(line.trim());
    if (m === null) continue;
    const abs = m[1]!;
    if (!abs.startsWith(prefix)) throw new NetbootError('BOOTWIZ_MODULES', `modprobe named ${abs}, outside ${root}`);
    const path = abs.slice(prefix.length);
    const file = path.slice(path.lastIndexOf('/') + 1);
    out.push({ name: file.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_'), path });
  }
  return out;
}

/** Concatenates load lists, keeping each module's first place (its dependencies precede it). */
export function mergeLoadOrder(lists: readonly (readonly ModuleLoad[])[]): ModuleLoad[] {
  const seen = new Set<string>();
  const out: ModuleLoad[] = [];
  for (const list of lists) for (const m of list) if (!seen.has(m.path)) { seen.add(m.path); out.push(m); }
  return out;
}

/** Indexes the unpacked kernel at `root` and returns the load order of `modules`. */
export async function moduleLoadOrder(root: string, kver: string, modules: readonly string[]): Promise<ModuleLoad[]> {
  await tool('depmod', ['-b', root, kver]);
  const lists: ModuleLoad[][] = [];
  for (const name of modules) {
    let text: string;
    try {
      text = await tool('modprobe', ['-d', root, '-S', kver, '--show-depends', name]);
    } catch (err) {
      throw new NetbootError('BOOTWIZ_MODULES', `module ${name} is not in kernel ${kver}: ${(err as Error).message}`);
    }
    lists.push(parseShowDepends(text, root));
  }
  return mergeLoadOrder(lists);
}
