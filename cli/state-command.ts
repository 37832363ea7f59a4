// `netboot state [--json]`: the state as the running Interface holds it, with the `issued` and
// instruction `id` that last changed each object.
import { controlCall, controlSocketPath } from '../platform/local/control.ts';
import type { Command } from './context.ts';
import { configFor } from './context.ts';

interface Described {
  seq: number;
  snapshots: Array<{ table: string; issued: string; id: string }>;
  objects: Array<{ table: string; key: string; value: Record<string, unknown>; issued: string; instructionId: string }>;
}

export const stateCommand: Command = async (ctx) => {
  const config = configFor(ctx);
  const d = await controlCall<Described>(controlSocketPath(config.paths.data, 'interface'), 'GET', '/state');
  if (ctx.args.flags.has('json')) {
    ctx.out(JSON.stringify(d, null, 2));
    return 0;
  }
  ctx.out(`state seq ${d.seq}`);
  for (const table of ['config', 'clients', 'images', 'predefined']) {
    const snap = d.snapshots.find((s) => s.table === table);
    const rows = d.objects.filter((o) => o.table === table);
    ctx.out(`\n[${table}] ${snap ? `snapshot issued ${snap.issued} id ${snap.id}` : 'no snapshot yet'}${table === 'config' ? '' : `, ${rows.length} object(s)`}`);
    for (const o of rows) {
      ctx.out(`  ${o.key === '' ? '(config)' : o.key}  ${summary(table, o.value)}  issued ${o.issued}  id ${o.instructionId}`);
    }
  }
  return 0;
};

function summary(table: string, v: Record<string, unknown>): string {
  if (table === 'clients') {
    const a = v.action as { type: string; image?: string; once?: boolean };
    const action = a.type === 'boot' ? `boot ${a.image}${a.once ? ' once' : ''}` : a.type;
    return `${v.name ? `${String(v.name)} ` : ''}${action}`;
  }
  if (table === 'images') return `${String(v.name)} (${String(v.type)}, ${(v.arch as string[]).join(',')})`;
  if (table === 'predefined') return String(v.name);
  return `respond ${String(v.respond)}`;
}
