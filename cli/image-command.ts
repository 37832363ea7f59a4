// `netboot image import FILE --id ID` (a raw disk image file, such as a VM's disk, into a new
// version of a disk image package, the same way a capture does: used blocks only, fixed 64 KiB
// chunks, what the store already holds not stored again) and `netboot image export ID[@VERSION]
// FILE` (a version back to a sparse raw disk file). Both run in the Interface, which owns the
// package store (its control socket, images/image-routes.ts), so the file paths are read and
// written by the Interface's process. A progress bar is drawn when stderr is a terminal.
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { controlCall, controlSocketPath } from '../platform/local/control.ts';
import { stringFlag, type CommandSpec } from './args.ts';
import { configFor, type CliContext, type Command } from './context.ts';

export const imageSpec: CommandSpec = {
  name: 'image',
  summary: 'disk image packages from and to raw disk files',
  subcommands: {
    import: {
      name: 'image import', summary: 'import a raw disk file as a disk image version', args: 'FILE', arity: [1, 1],
      options: {
        id: { type: 'string', value: 'ID', required: true, help: 'the package id (letters, digits, . _ -)' },
        'sector-bytes': { type: 'string', value: 'N', help: 'the disk\'s logical sector size, 512 or 4096 (default: guessed from where the GPT header or the first file system is)' },
      },
      description: ['As a capture does: the partition table and the used blocks of ext4, FAT and NTFS (other file systems whole), in fixed 64 KiB chunks; chunks the store already holds are not stored again. Every peer fetches the new version.', 'An image of a 4Kn disk (4096-byte logical sectors) deploys only onto such a disk, and one of a 512-byte disk only onto 512-byte disks.'],
    },
    export: {
      name: 'image export', summary: 'export a disk image version to a sparse raw file', args: 'ID[@VER] FILE', arity: [2, 2],
      description: ['VER is a version digest (sha256:HEX or HEX); the current version by default. Free space is left as holes. FILE is replaced.'],
    },
  },
};

const USAGE = `usage:
  netboot image import FILE --id ID [--sector-bytes 512|4096]
  netboot image export ID[@VERSION] FILE`;

const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;

interface Job<R> {
  state: 'running' | 'done' | 'failed';
  progress: { phase: string; bytesDone: number; bytesTotal: number };
  result?: R;
  error?: string;
}

/** Starts the job in the Interface and follows it (a progress bar when stderr is a terminal); null: it failed (said). */
async function follow<R>(ctx: CliContext, socket: string, path: string, body: unknown, what: string): Promise<R | null> {
  const { job } = await controlCall<{ job: string }>(socket, 'POST', path, body);
  const tty = process.stderr.isTTY === true;
  let j: Job<R>;
  for (;;) {
    j = await controlCall<Job<R>>(socket, 'GET', `/images/jobs?id=${job}`);
    if (tty) process.stderr.write(`\r${bar(j.progress.bytesDone, j.progress.bytesTotal)} ${j.progress.phase.padEnd(12)}`);
    if (j.state !== 'running') break;
    await sleep(200);
  }
  if (tty) process.stderr.write('\n');
  if (j.state === 'failed') {
    ctx.err(`netboot image ${what}: ${j.error}`);
    return null;
  }
  return j.result!;
}

function bar(done: number, total: number): string {
  const f = total > 0 ? Math.min(1, done / total) : 0;
  const n = Math.round(f * 30);
  return `[${'#'.repeat(n)}${'-'.repeat(30 - n)}] ${String(Math.round(f * 100)).padStart(3)}% ${mib(done)}/${mib(total)}`;
}

export const imageCommand: Command = async (ctx) => {
  const [sub, ...rest] = ctx.args.positionals;
  const socket = controlSocketPath(configFor(ctx).paths.data, 'interface');
  if (sub === 'import' && rest.length === 1) {
    const id = stringFlag(ctx.args, 'id');
    if (id === undefined) {
      ctx.err(`netboot image import: --id is required\n${USAGE}`);
      return 2;
    }
    const sectorText = stringFlag(ctx.args, 'sector-bytes');
    if (sectorText !== undefined && sectorText !== '512' && sectorText !== '4096') {
      ctx.err(`netboot image import: --sector-bytes is 512 or 4096, not ${sectorText}\n${USAGE}`);
      return 2;
    }
    const started = Date.now();
    const r = await follow<{ seq: number; digest: string; sizeBytes: number; sectorWhy: string; bytesRead: number; bytesStored: number; chunksStored: number; chunksTotal: number }>(
      ctx, socket, '/images/import', { file: resolve(rest[0]!), id, sectorBytes: sectorText === undefined ? undefined : Number(sectorText) }, 'import');
    if (r === null) return 1;
    const secs = (Date.now() - started) / 1000;
    ctx.out(`imported ${rest[0]} as ${id} seq ${r.seq} sha256:${r.digest}: a ${mib(r.sizeBytes)} disk, ${r.sectorWhy}, ${mib(r.bytesRead)} used read, ${mib(r.bytesStored)} new stored (${r.chunksStored} of ${r.chunksTotal} chunks) in ${secs.toFixed(1)} s`);
    return 0;
  }
  if (sub === 'export' && rest.length === 2) {
    const [spec, file] = rest as [string, string];
    const at = spec.indexOf('@');
    const id = at < 0 ? spec : spec.slice(0, at);
    const version = at < 0 ? undefined : spec.slice(at + 1);
    const r = await follow<{ digest: string; bytesWritten: number; chunksWritten: number }>(
      ctx, socket, '/images/export', { id, version, file: resolve(file) }, 'export');
    if (r === null) return 1;
    ctx.out(`exported ${id} sha256:${r.digest} to ${file}: ${mib(r.bytesWritten)} written in ${r.chunksWritten} chunks (free space left as holes)`);
    return 0;
  }
  ctx.err(USAGE);
  return 2;
};
