// `netboot package publish DIR --id ID --kind image|driver|preboot`, `package rm ID`,
// `package verify ID`, `package status [ID] [--watch] [--json]`: all through the running
// Interface's control socket, which owns the package store (one writer; it announces changes to
// peers the moment they commit). Progress bars are drawn only when stderr is a terminal.
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { controlCall, controlSocketPath } from '../platform/local/control.ts';
import { stringFlag, type CommandSpec } from './args.ts';
import { configFor, type CliContext, type Command } from './context.ts';
import { guardRemoval } from './package-users.ts';
import { renderTable, TABLE_WIDTH, truncate } from './table.ts';

const JSON_OPTION = { type: 'boolean', help: 'print the result as JSON' } as const;

export const packageSpec: CommandSpec = {
  name: 'package',
  summary: 'hashed packages replicated between servers',
  subcommands: {
    publish: {
      name: 'package publish', summary: 'publish a folder as a new version of a package', args: 'DIR', arity: [1, 1],
      options: {
        id: { type: 'string', value: 'ID', required: true, help: 'the package id (letters, digits, . _ -)' },
        kind: { type: 'string', value: 'image|driver|preboot', required: true, help: 'what the package holds' },
      },
      description: ['Runs in the Interface, which owns the package store; every peer fetches the new version. A progress bar is drawn when stderr is a terminal.'],
    },
    rm: {
      name: 'package rm', summary: 'delete a package here and on every replica', args: 'ID', arity: [1, 1],
      options: { force: { type: 'boolean', help: 'remove it even while images use it (they cannot boot until it is published again)' } },
      description: ['Refused (exit 1), with the images and clients that use the package listed, unless --force.'],
    },
    verify: { name: 'package verify', summary: 're-hash a package\'s files; repair damaged ones', args: 'ID', arity: [1, 1], options: { json: JSON_OPTION }, description: ['Exit status 1 when a file was damaged (it is being repaired from a peer).'] },
    status: {
      name: 'package status', summary: 'each package\'s replication state per server', args: '[ID]', arity: [0, 1],
      options: {
        watch: { type: 'boolean', help: 'redraw every 0.5 s until every package is Ready (or absent or invalid) on every server, then exit' },
        json: JSON_OPTION,
        wide: { type: 'boolean', help: 'show every column in full (no cutting to 80 columns)' },
      },
    },
  },
};

const USAGE = `usage:
  netboot package publish DIR --id ID --kind image|driver|preboot
  netboot package rm ID [--force]       (refused while an image uses the package, unless --force)
  netboot package verify ID
  netboot package status [ID] [--watch] [--json]`;

interface Status {
  server: string;
  state: string;
  seq: number;
  digest: string | null;
  bytesDone: number;
  bytesTotal: number;
  chunksDone: number;
  chunksTotal: number;
  reason: string | null;
}

interface Described {
  server: string;
  links: Array<{ peer: string; connected: boolean; rttMs: number | null }>;
  packages: Array<{ ref: { package: string; seq: number; digest: string | null; owner: string; kind: string }; statuses: Status[]; path: string | null }>;
}

interface Job {
  state: 'running' | 'done' | 'failed';
  progress: { filesDone: number; filesTotal: number; bytesDone: number; bytesTotal: number };
  ref?: { seq: number; digest: string };
  unchanged?: boolean;
  hashMs?: number;
  error?: string;
}

const tty = (): boolean => process.stderr.isTTY === true;

export const packageCommand: Command = async (ctx) => {
  const [sub, ...rest] = ctx.args.positionals;
  const config = configFor(ctx);
  const socket = controlSocketPath(config.paths.data, 'interface');
  if (sub === 'publish' && rest.length === 1) return publish(ctx, socket, rest[0]!);
  if (sub === 'rm' && rest.length === 1) {
    const refused = await guardRemoval(ctx, socket, rest[0]!);
    if (refused !== null) return refused;
    const ref = await controlCall<{ seq: number }>(socket, 'POST', '/packages/rm', { id: rest[0] });
    ctx.out(`removed ${rest[0]} (tombstone seq ${ref.seq}); every replica deletes it as soon as it hears`);
    return 0;
  }
  if (sub === 'verify' && rest.length === 1) {
    const r = await controlCall<{ digest: string; files: number; bytes: number; problems: Array<{ path: string; reason: string }> }>(socket, 'POST', '/packages/verify', { id: rest[0] }, 3_600_000);
    if (ctx.args.flags.has('json')) ctx.out(JSON.stringify(r, null, 2));
    else if (r.problems.length === 0) ctx.out(`${rest[0]} ${short(r.digest)}: ${r.files} file(s), ${mib(r.bytes)} verified, all chunks match`);
    else {
      ctx.out(`${rest[0]} ${short(r.digest)}: ${r.problems.length} damaged file(s), being repaired:`);
      for (const p of r.problems) ctx.out(`  ${p.path}: ${p.reason}`);
    }
    return r.problems.length === 0 ? 0 : 1;
  }
  if (sub === 'status' && rest.length <= 1) return status(ctx, socket, rest[0] ?? null);
  ctx.err(USAGE);
  return 2;
};

async function publish(ctx: CliContext, socket: string, dir: string): Promise<number> {
  const id = stringFlag(ctx.args, 'id');
  const kind = stringFlag(ctx.args, 'kind');
  if (id === undefined || kind === undefined) {
    ctx.err(`netboot package publish: --id and --kind are required\n${USAGE}`);
    return 2;
  }
  const started = Date.now();
  const { job } = await controlCall<{ job: string }>(socket, 'POST', '/packages/publish', { dir: resolve(dir), id, kind });
  let j: Job;
  for (;;) {
    j = await controlCall<Job>(socket, 'GET', `/packages/jobs?id=${job}`);
    if (tty()) process.stderr.write(`\r${bar(j.progress.bytesDone, j.progress.bytesTotal)} ${j.progress.filesDone}/${j.progress.filesTotal} files `);
    if (j.state !== 'running') break;
    await sleep(100);
  }
  if (tty()) process.stderr.write('\n');
  if (j.state === 'failed') {
    ctx.err(`netboot package publish: ${j.error}`);
    return 1;
  }
  if (j.unchanged === true) {
    ctx.out(`${id}: unchanged (version ${j.ref!.digest}); seq ${j.ref!.seq} stays current: ${j.progress.filesTotal} file(s), ${mib(j.progress.bytesTotal)} identical, nothing written`);
    return 0;
  }
  const secs = (Date.now() - started) / 1000;
  const rate = j.hashMs ? ` (read + chunk + hash + copy at ${(j.progress.bytesTotal / 1e6 / (j.hashMs / 1000)).toFixed(0)} MB/s)` : '';
  ctx.out(`published ${id} seq ${j.ref!.seq} ${j.ref!.digest}: ${j.progress.filesTotal} file(s), ${mib(j.progress.bytesTotal)} in ${secs.toFixed(1)} s${rate}`);
  return 0;
}

async function status(ctx: CliContext, socket: string, id: string | null): Promise<number> {
  const watch = ctx.args.flags.has('watch');
  for (;;) {
    const d = await controlCall<Described>(socket, 'GET', id === null ? '/packages' : `/packages?id=${encodeURIComponent(id)}`);
    if (ctx.args.flags.has('json')) {
      ctx.out(JSON.stringify(d, null, 2));
      return 0;
    }
    const lines = render(d, ctx.args.flags.has('wide'));
    if (watch && tty()) process.stdout.write('\x1b[H\x1b[2J');
    for (const l of lines) ctx.out(l);
    const settled = d.packages.every((p) => p.statuses.every((s) => s.state === 'ready' || s.state === 'absent' || s.state === 'invalid'));
    if (!watch || settled) return 0;
    await sleep(500);
  }
}

function render(d: Described, wide: boolean): string[] {
  const fit = (line: string): string => (wide ? line : truncate(line, TABLE_WIDTH));
  const out = [fit(`server ${d.server}; peers: ${d.links.map((l) => `${l.peer} ${l.connected ? `up${l.rttMs === null ? '' : ` ${l.rttMs} ms`}` : 'down'}`).join(', ') || 'none'}`)];
  if (d.packages.length === 0) out.push('no packages');
  for (const p of d.packages) {
    const r = p.ref;
    out.push('', fit(`${r.package} (${r.kind}) seq ${r.seq} ${r.digest === null ? 'deleted' : wide ? r.digest : short(r.digest)} owner ${r.owner}`));
    const rows = p.statuses.map((s) => [
      s.server, s.state, s.digest === null ? '-' : String(s.seq), s.digest === null ? '-' : wide ? s.digest : short(s.digest),
      [s.state === 'syncing' ? `${bar(s.bytesDone, s.bytesTotal, 10)} ${s.chunksDone}/${s.chunksTotal} chunks` : '', s.reason ?? ''].filter((x) => x !== '').join(' ') || '-',
    ]);
    const columns = [{ header: 'SERVER' }, { header: 'STATE', keep: true }, { header: 'SEQ', right: true, keep: true }, { header: 'DIGEST', keep: true }, { header: 'PROGRESS', min: 10 }];
    out.push(...renderTable(columns, rows, { wide, indent: 2 }));
  }
  return out;
}

function bar(done: number, total: number, width = 30): string {
  const f = total === 0 ? 1 : Math.min(1, done / total);
  const n = Math.round(f * width);
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${(f * 100).toFixed(0).padStart(3)}% ${mib(done)}/${mib(total)}`;
}

const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
const short = (d: string): string => d.slice(0, 12);
