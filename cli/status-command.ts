// `netboot status [--json] [--wide]`: asks each service's control socket for its status and
// prints one row per service: state, pid, ports, or "not running"; then the warnings services
// report (start-up checks that would fail requests). Exit status 0 when all four answer, 3 (as
// systemctl status) when any does not.
import { controlCall, controlSocketPath, type ServiceName } from '../platform/local/control.ts';
import { errorMessage } from '../platform/runtime/errors.ts';
import { START_ORDER } from '../services/supervisor/service-commands.ts';
import { wrap, type CommandSpec } from './args.ts';
import { configFor, type Command } from './context.ts';
import { renderTable, TABLE_WIDTH } from './table.ts';

export const statusSpec: CommandSpec = {
  name: 'status',
  summary: 'each service\'s state, pid and ports, and its warnings',
  options: {
    json: { type: 'boolean', help: 'print the rows as JSON' },
    wide: { type: 'boolean', help: 'show every column in full (no cutting to 80 columns)' },
  },
  description: ['Exit status 0 when all four services answer, 3 when any does not.'],
};

export type ServiceStatusRow =
  | { readonly service: ServiceName; readonly running: true; readonly state: string; readonly pid: number | null; readonly ports: Record<string, unknown>; readonly warnings: string[]; readonly status: Record<string, unknown> }
  | { readonly service: ServiceName; readonly running: false; readonly error: string };

export const NOT_RUNNING_EXIT = 3;

export const statusCommand: Command = async (ctx) => {
  const config = configFor(ctx);
  const rows = await Promise.all(
    START_ORDER.map(async (service): Promise<ServiceStatusRow> => {
      try {
        const status = await controlCall<Record<string, unknown>>(controlSocketPath(config.paths.data, service), 'GET', '/status', undefined, 2000);
        const ports = typeof status.ports === 'object' && status.ports !== null ? (status.ports as Record<string, unknown>) : {};
        const warnings = Array.isArray(status.warnings) ? status.warnings.map(String) : [];
        return { service, running: true, state: String(status.state ?? 'unknown'), pid: typeof status.pid === 'number' ? status.pid : null, ports, warnings, status };
      } catch (err) {
        return { service, running: false, error: errorMessage(err) };
      }
    }),
  );
  if (ctx.args.flags.get('json') === true) ctx.out(JSON.stringify(rows, null, 2));
  else for (const line of [...formatTable(rows, ctx.args.flags.has('wide')), ...bootwizLines(rows)]) ctx.out(line);
  return rows.every((r) => r.running) ? 0 : NOT_RUNNING_EXIT;
};

export function formatTable(rows: readonly ServiceStatusRow[], wide = false): string[] {
  const cells = rows.map((r) =>
    r.running
      ? [r.service, r.state, r.pid === null ? '-' : String(r.pid), Object.entries(r.ports).map(([k, v]) => `${k}=${String(v)}`).join(' ') || '-']
      : [r.service, 'not running', '-', '-'],
  );
  const out = renderTable([{ header: 'SERVICE', keep: true }, { header: 'STATE', keep: true }, { header: 'PID', keep: true }, { header: 'PORTS' }], cells, { wide });
  if (rows.some((r) => !r.running)) out.push('', 'Start the services with `netboot run` or `systemctl start netboot.target`.');
  const warned = rows.filter((r) => r.running && r.warnings.length > 0);
  if (warned.length > 0) {
    out.push('', 'warnings:');
    for (const r of warned) {
      for (const w of r.running ? r.warnings : []) out.push(...(wide ? [`  ${r.service}: ${w}`] : wrap(`${r.service}: ${w}`, TABLE_WIDTH - 2, 2).map((l) => `  ${l}`)));
    }
  }
  return out;
}

/** The Interface's preboot builds (bootwiz), one line each: state, progress or error. */
function bootwizLines(rows: readonly ServiceStatusRow[]): string[] {
  const row = rows.find((r) => r.service === 'interface');
  const builds = row?.running === true ? (row.status.bootwiz as Record<string, { state: string; step?: string; percent?: number; detail?: string; error?: string }> | null | undefined) : null;
  if (builds === null || builds === undefined) return [];
  return Object.entries(builds).map(([id, b]) =>
    `bootwiz ${id}: ${b.state}${b.state === 'building' ? ` ${b.percent ?? 0}% ${b.step ?? ''} ${b.detail ?? ''}`.trimEnd() : ''}${b.error === undefined ? '' : ` (${b.error})`}`);
}
