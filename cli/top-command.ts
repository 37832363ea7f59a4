// `netboot top [--once] [--interval MS]`: the status page's live view in a terminal, read from
// the services' control sockets (it works whether or not `[web]` is enabled): live figures, the
// services, the machines seen recently with their decision, packages per site with their
// progress, peers, and rejected SBS files. Redraws every second (and as soon as a machine
// asks); Ctrl-C quits. `--once` prints one view and exits.
import type { Config } from '../platform/runtime/config.ts';
import { createLogger } from '../platform/runtime/logger.ts';
import { LiveFeed } from '../web/live-feed.ts';
import { collectSnapshot, type SiteSnapshot } from '../web/site-snapshot.ts';
import { stringFlag, UsageError, type CommandSpec } from './args.ts';
import { configFor, type Command } from './context.ts';
import { renderTable, truncate } from './table.ts';

export const topSpec: CommandSpec = {
  name: 'top',
  summary: 'a live view of the site server: services, machines booting, packages, peers',
  options: {
    once: { type: 'boolean', help: 'print the view once and exit' },
    interval: { type: 'string', value: 'MS', help: 'redraw every MS milliseconds (default 1000, at least 200)' },
  },
  description: [
    'The same view as the status page of `[web]` (http://127.0.0.1:9490/ by default), in the terminal. Machines show as soon as the PXE server sees their request; Ctrl-C quits.',
  ],
};

export const topCommand: Command = async (ctx) => {
  const config = configFor(ctx);
  const given = stringFlag(ctx.args, 'interval');
  const intervalMs = given === undefined ? 1000 : Number(given);
  if (!Number.isInteger(intervalMs) || intervalMs < 200) throw new UsageError(topSpec, `--interval is a whole number of milliseconds, at least 200, not ${given}`);
  const width = (): number => Math.max(40, process.stdout.columns || 80);
  const height = (): number => process.stdout.rows || 40;
  if (ctx.args.flags.get('once') === true) {
    for (const line of renderTop(await collectSnapshot(config), { width: width(), height: Number.POSITIVE_INFINITY, nowMs: Date.now() })) ctx.out(line);
    return 0;
  }
  return watch(config, ctx.out, ctx.err, intervalMs, width, height);
};

async function watch(config: Config, out: (line: string) => void, err: (line: string) => void, intervalMs: number, width: () => number, height: () => number): Promise<number> {
  const tty = process.stdout.isTTY === true;
  const log = createLogger({ level: 'warn', fields: { service: 'top' }, sink: { write: (line) => err(line.replace(/\n$/, '')) } });
  const feed = new LiveFeed(config, () => collectSnapshot(config), log, { fullMs: intervalMs });
  let last: SiteSnapshot | null = null;
  const draw = (): void => {
    if (last === null) return;
    const lines = renderTop(last, { width: width(), height: height(), nowMs: Date.now() });
    // Home and clear, then the frame: one write per line (the context's `out`).
    if (tty) lines[0] = `\x1b[H\x1b[2J${lines[0]}`;
    else lines.push('');
    for (const l of lines) out(l);
  };
  const unwatch = feed.watch((s) => {
    last = s;
    draw();
  });
  const timer = setInterval(draw, intervalMs);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(timer);
  unwatch();
  feed.stop();
  return 0;
}

export interface TopOptions {
  readonly width: number;
  /** Rows the terminal has: the machines list is cut to fit. */
  readonly height: number;
  readonly nowMs: number;
}

/** One frame of `netboot top`. */
export function renderTop(s: SiteSnapshot, o: TopOptions): string[] {
  const f = s.figures;
  const w = o.width;
  const out: string[] = [];
  out.push(truncate(`netboot top · ${s.site} · ${new Date(s.at).toLocaleTimeString('en-GB')}   (Ctrl-C quits)`, w));
  out.push(truncate(`PXE ${f.pxeRequests} requests, ${f.pxeOffers} offers · TFTP ${f.tftpActive} active, ${f.tftpTransfers} done, ${bytes(f.tftpBytes)} sent`, w));
  out.push(truncate(`SBS ${f.sbsApplied} applied, ${f.sbsRejected} rejected · ${s.packages.length} packages · ${s.peers.filter((p) => p.connected).length}/${s.peers.length} peers up`, w));
  out.push('');
  out.push(...renderTable(
    [{ header: 'SERVICE', keep: true }, { header: 'STATE', keep: true }, { header: 'PID', keep: true, right: true }, { header: 'PORTS' }],
    s.services.map((x) => [x.service, x.state, x.pid === null ? '-' : String(x.pid), Object.entries(x.ports).map(([k, v]) => `${k}=${String(v)}`).join(' ') || '-']),
    { width: w },
  ));
  const rest: string[] = [];
  if (s.packages.length > 0) {
    rest.push('');
    rest.push(...renderTable(
      [{ header: 'PACKAGE' }, { header: 'SITE' }, { header: 'STATE', keep: true }, { header: 'PROGRESS', keep: true }],
      s.packages.flatMap((p) => p.sites.map((x) => [p.id, x.server, x.state, x.state === 'ready' ? `seq ${x.seq}` : progress(x.bytesDone, x.bytesTotal)])),
      { width: w },
    ));
  }
  const jobs = (s.jobs ?? []).filter((j) => j.state === 'running' || j.state === 'pending');
  if (jobs.length > 0) {
    rest.push('');
    rest.push(...renderTable(
      [{ header: 'JOB MACHINE', keep: true }, { header: 'TASK' }, { header: 'STATE' }, { header: 'PROGRESS', keep: true }],
      jobs.slice(0, 10).map((j) => [j.mac, j.task, `${j.state}${j.phase === null ? '' : ` ${j.phase}`}`, j.bytesTotal ? progress(j.bytesDone ?? 0, j.bytesTotal) : '-']),
      { width: w },
    ));
  }
  if (s.peers.length > 0) {
    rest.push('');
    rest.push(...renderTable(
      [{ header: 'PEER' }, { header: 'LINK', keep: true }, { header: 'QUEUED', right: true, keep: true }, { header: 'DELIVERED', right: true, keep: true }, { header: 'LATENCY', right: true, keep: true }],
      s.peers.map((p) => [p.id, p.connected ? (p.authenticated ? 'up' : 'unauth') : 'down', String(p.queued), String(p.delivered), p.lastLatencyMs === null ? '-' : `${p.lastLatencyMs} ms`]),
      { width: w },
    ));
  }
  if (s.rejected.length > 0) {
    rest.push('');
    rest.push(...renderTable([{ header: 'REJECTED SBS FILE' }, { header: 'REASON' }], s.rejected.slice(0, 5).map((r) => [r.file, `${r.field === '' ? '' : `${r.field}: `}${r.problem}`]), { width: w }));
  }
  // The machines get the rows that are left (at least three).
  const room = Math.max(3, o.height - out.length - rest.length - 3);
  out.push('');
  if (s.machines.length === 0) out.push('no PXE requests seen since the server started');
  else {
    out.push(...renderTable(
      [{ header: 'MACHINE', keep: true }, { header: 'ARCH', keep: true }, { header: 'SEEN', keep: true, right: true }, { header: 'DECISION' }],
      s.machines.slice(0, room).map((m) => [m.mac, m.arch, ago(o.nowMs - m.atMs), m.outcome]),
      { width: w },
    ));
  }
  return [...out, ...rest];
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h`;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/** `[#####.....]  50%`. */
function progress(done: number, total: number): string {
  const pct = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(pct * 10);
  return `[${'#'.repeat(filled)}${'.'.repeat(10 - filled)}] ${String(Math.round(pct * 100)).padStart(3)}%`;
}
