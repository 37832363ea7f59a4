// `netboot status [--json]`: asks each service's control socket for its status and prints one
// row per service: state, pid, ports, or "not running". Exit status 0 when all four answer, 3
// (as systemctl status) when any does not.
import { controlCall, controlSocketPath, type ServiceName } from '../platform/local/control.ts';
import { errorMessage } from '../platform/runtime/errors.ts';
import { START_ORDER } from '../services/supervisor/service-commands.ts';
import { configFor, type Command } from './context.ts';

export type ServiceStatusRow =
  | { readonly service: ServiceName; readonly running: true; readonly state: string; readonly pid: number | null; readonly ports: Record<string, unknown>; readonly status: Record<string, unknown> }
  | { readonly service: ServiceName; readonly running: false; readonly error: string };

export const NOT_RUNNING_EXIT = 3;

export const statusCommand: Command = async (ctx) => {
  const config = configFor(ctx);
  const rows = await Promise.all(
    START_ORDER.map(async (service): Promise<ServiceStatusRow> => {
      try {
        const status = await controlCall<Record<string, unknown>>(controlSocketPath(config.paths.data, service), 'GET', '/status', undefined, 2000);
        const ports = typeof status.ports === 'object' && status.ports !== null ? (status.ports as Record<string, unknown>) : {};
        return { service, running: true, state: String(status.state ?? 'unknown'), pid: typeof status.pid === 'number' ? status.pid : null, ports, status };
      } catch (err) {
        return { service, running: false, error: errorMessage(err) };
      }
    }),
  );
  if (ctx.args.flags.get('json') === true) ctx.out(JSON.stringify(rows, null, 2));
  else for (const line of [...formatTable(rows), ...bootwizLines(rows)]) ctx.out(line);
  return rows.every((r) => r.running) ? 0 : NOT_RUNNING_EXIT;
};

export function formatTable(rows: readonly ServiceStatusRow[]): string[] {
  const cells = [
    ['SERVICE', 'STATE', 'PID', 'PORTS'],
    ...rows.map((r) =>
      r.running
        ? [r.service, r.state, r.pid === null ? '-' : String(r.pid), Object.entries(r.ports).map(([k, v]) => `${k}=${String(v)}`).join(' ') || '-']
        : [r.service, 'not running', '-', '-'],
    ),
  ];
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}

/** The Interface's preboot builds (bootwiz), one line each: state, progress or error. */
function bootwizLines(rows: readonly ServiceStatusRow[]): string[] {
  const row = rows.find((r) => r.service === 'interface');
  const builds = row?.running === true ? (row.status.bootwiz as Record<string, { state: string; step?: string; percent?: number; detail?: string; error?: string }> | null | undefined) : null;
  if (builds === null || builds === undefined) return [];
  return Object.entries(builds).map(([id, b]) =>
    `bootwiz ${id}: ${b.state}${b.state === 'building' ? ` ${b.percent ?? 0}% ${b.step ?? ''} ${b.detail ?? ''}`.trimEnd() : ''}${b.error === undefined ? '' : ` (${b.error})`}`);
}
