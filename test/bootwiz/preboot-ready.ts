import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import type { PackageRef, PackageStatus } from '../../packages/model.ts';
import { poll } from '../e2e/harness/netboot-site.ts';

type Described = { packages: Array<{ ref: PackageRef; statuses: PackageStatus[] }> };

/** Package `id`'s ref once it is Ready at the site with data folder `data`, at a seq above `above`. */
export async function prebootReadyAbove(data: string, id: string, above: number): Promise<PackageRef> {
  return poll(`${id} Ready above seq ${above}`, 120_000, async () => {
    try {
      const d = await controlCall<Described>(controlSocketPath(data, 'interface'), 'GET', `/packages?id=${id}`);
      const p = d.packages[0];
      const s = p?.statuses[0];
      return p !== undefined && p.ref.seq > above && s?.state === 'ready' && s.seq === p.ref.seq ? p.ref : undefined;
    } catch {
      return undefined;
    }
  });
}
