// `netboot state [--json] [--wide]`: the state as the running Interface holds it, with the
// `issued` and instruction `id` that last changed each object; each image's package and whether
// that package is Ready on this server.
import { controlCall, controlSocketPath } from '../platform/local/control.ts';
import type { CommandSpec } from './args.ts';
import type { Command } from './context.ts';
import { configFor } from './context.ts';
import { renderTable, type Column } from './table.ts';

export const stateSpec: CommandSpec = {
  name: 'state',
  summary: 'what the Interface holds: config, clients, images',
  options: {
    json: { type: 'boolean', help: 'print the state as JSON' },
    wide: { type: 'boolean', help: 'show every column in full (no cutting to 80 columns)' },
  },
};

interface Described {
  seq: number;
  snapshots: Array<{ table: string; issued: string; id: string }>;
  objects: Array<{ table: string; key: string; value: Record<string, unknown>; issued: string; instructionId: string }>;
}

interface Packages {
  server: string;
  packages: Array<{ ref: { package: string; digest: string | null }; statuses: Array<{ server: string; state: string }> }>;
}

const TABLES: Record<string, { columns: Column[]; row: (key: string, v: Record<string, unknown>, ready: (pkg: string) => string) => string[] }> = {
  config: {
    columns: [{ header: 'CONFIG' }],
    row: (_k, v) => [`respond ${String(v.respond)}`],
  },
  clients: {
    columns: [{ header: 'MAC', keep: true }, { header: 'NAME' }, { header: 'ACTION' }],
    row: (key, v) => {
      const a = v.action as { type: string; image?: string; once?: boolean };
      return [key, v.name === undefined ? '-' : String(v.name), a.type === 'boot' ? `boot ${a.image}${a.once ? ' once' : ''}` : a.type];
    },
  },
  images: {
    columns: [{ header: 'ID', min: 12 }, { header: 'NAME' }, { header: 'TYPE', keep: true }, { header: 'ARCH' }, { header: 'PACKAGE' }, { header: 'READY', keep: true }],
    row: (key, v, ready) => {
      const pkg = typeof v.package === 'string' ? v.package : null;
      return [key, String(v.name), String(v.type), (v.arch as string[]).join(','), pkg ?? '-', pkg === null ? '-' : ready(pkg)];
    },
  },
  predefined: {
    columns: [{ header: 'MAC', keep: true }, { header: 'NAME' }],
    row: (key, v) => [key, String(v.name)],
  },
};

export const stateCommand: Command = async (ctx) => {
  const config = configFor(ctx);
  const socket = controlSocketPath(config.paths.data, 'interface');
  const d = await controlCall<Described>(socket, 'GET', '/state');
  if (ctx.args.flags.has('json')) {
    ctx.out(JSON.stringify(d, null, 2));
    return 0;
  }
  const wide = ctx.args.flags.has('wide');
  const packages = d.objects.some((o) => o.table === 'images' && typeof o.value.package === 'string')
    ? await controlCall<Packages>(socket, 'GET', '/packages').catch(() => null)
    : null;
  const ready = (pkg: string): string => {
    if (packages === null) return '?';
    const p = packages.packages.find((x) => x.ref.package === pkg);
    if (p === undefined) return 'missing';
    if (p.ref.digest === null) return 'deleted';
    const s = p.statuses.find((x) => x.server === packages.server)?.state ?? 'absent';
    return s === 'ready' ? 'yes' : `no (${s})`;
  };
  ctx.out(`state seq ${d.seq}`);
  for (const [table, t] of Object.entries(TABLES)) {
    const snap = d.snapshots.find((s) => s.table === table);
    const rows = d.objects.filter((o) => o.table === table);
    ctx.out('');
    ctx.out(`[${table}] ${snap ? `snapshot issued ${snap.issued} id ${wide ? snap.id : snap.id.slice(0, 8)}` : 'no snapshot yet'}${table === 'config' ? '' : `, ${rows.length} object(s)`}`);
    if (rows.length === 0) continue;
    const columns = [...t.columns, { header: 'ISSUED', min: 11 }, { header: 'INSTRUCTION', min: 11 }];
    const cells = rows.map((o) => [...t.row(o.key, o.value, ready), o.issued, o.instructionId]);
    for (const line of renderTable(columns, cells, { wide, indent: 2 })) ctx.out(line);
  }
  return 0;
};
