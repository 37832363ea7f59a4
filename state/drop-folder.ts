// The SBS drop folder: notices `*.sbs` files (chokidar, plus a full scan at start), waits until a
// file's size has been stable for `settleMs`, reads and parses it, and hands valid documents on
// in batches. A file that is not (yet) complete JSON is retried until it has been unchanged for
// `parseRetryMs` (slow SMB/scp copies), then rejected; a complete but invalid document is
// rejected at once. Applied files move to <store>/<YYYY-MM-DD>/, rejected ones to
// <store>/rejected/ with <name>.error.json. Nothing is ever deleted.
//
// Hardening (issue 16): a file larger than `maxFileBytes` is set aside as `too large` without
// being read; a file is opened with O_NOFOLLOW and checked to be a regular file on the opened
// descriptor, so a symbolic link is never followed; every entry that is not a regular `*.sbs`
// file (a link, a directory, a FIFO, a device, another name) is reported once and left alone;
// a name that is not valid UTF-8 is set aside under a safe name, its bytes (hex) in the reason.
import { sbsApplied, sbsRejected } from '../platform/metrics/sbs-metrics.ts';
import { watch, type FSWatcher } from 'chokidar';
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, type Stats } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { writeFileAtomic, fsyncDir } from '../platform/runtime/atomic-file.ts';
import { errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import type { SbsDocument } from '../sbs/types.ts';
import { parseSbs } from '../sbs/parse.ts';
import { SbsError } from '../sbs/errors.ts';
import { kindOf, notRegularProblem, readRegularFile, safeName, utf8Name, type BoundedRead, type EntryKind } from './folder-entry.ts';

export interface ReadyFile {
  readonly name: string;
  readonly path: string;
  /** Inode read, so a file replaced under the same name before archiving is not moved unread. */
  readonly ino: number;
  readonly doc: SbsDocument;
}

export interface Rejection {
  readonly name: string;
  readonly field: string;
  readonly problem: string;
}

export interface DropFolderOptions {
  readonly dir: string;
  readonly storeDir: string;
  readonly settleMs: number;
  readonly parseRetryMs: number;
  /** A larger file is set aside as `too large` without being read (`[interface] max_sbs_file_mib`). */
  readonly maxFileBytes: number;
  /** Called with every batch of newly parsed documents, on one tick. */
  readonly onReady: (files: ReadyFile[]) => void;
  readonly onRejected: (rejection: Rejection) => void;
  readonly now?: () => Date;
}

interface Pending {
  size: number;
  mtimeMs: number;
  /** When the file was first seen unparseable with its current size/mtime. */
  unparseableSince: number | null;
  timer: NodeJS.Timeout | null;
  settling: boolean;
  reading: boolean;
  /** Failed reads in a row (EACCES, EIO...): the retry backs off, and only the first one warns. */
  readFailures: number;
}

/** A retried read waits at most this long. */
const MAX_READ_RETRY_MS = 30_000;
/** Link targets are quoted in the log only this far. */
const MAX_QUOTED = 200;

export const isSbsName = (name: string): boolean => extname(name).toLowerCase() === '.sbs' && !name.startsWith('.');

export class DropFolder {
  private watcher: FSWatcher | null = null;
  private readonly pending = new Map<string, Pending>();
  /** Entries reported as left alone: name -> what was reported (kind and inode), so each is reported once. */
  private readonly reported = new Map<string, string>();
  private ready: ReadyFile[] = [];
  private flushScheduled = false;
  private scanQueued = false;
  private firstReadyAt = 0;
  /** Files waiting for their size to settle: a batch waits briefly for them (spec: files found together apply in `issued` order). */
  private settling = 0;
  private stopped = false;

  constructor(private readonly opts: DropFolderOptions, private readonly log: Logger) {}

  async start(): Promise<void> {
    mkdirSync(this.opts.dir, { recursive: true });
    mkdirSync(join(this.opts.storeDir, 'rejected'), { recursive: true });
    // persistent: false: chokidar can still arm a watch after close() while its own async work
    // drains (seen when the folder is deleted right after a stop); an unref'd watch cannot keep a
    // stopped process alive. The Interface's sockets keep a running one alive.
    // followSymlinks: false: a link in the folder is reported, never watched or read through.
    const watcher = watch(this.opts.dir, { depth: 0, ignoreInitial: true, persistent: false, alwaysStat: false, followSymlinks: false });
    watcher.on('add', (p) => this.onWatchEvent(p));
    watcher.on('change', (p) => this.onWatchEvent(p));
    watcher.on('addDir', (p) => this.onWatchEvent(p));
    // A name that is not UTF-8 reaches us mangled (U+FFFD) and chokidar, failing to stat it, drops
    // the event: only the raw one shows it, and a scan by bytes finds it.
    watcher.on('raw', (_event, p) => {
      if (typeof p === 'string' && p.includes('\uFFFD')) this.scanSoon();
    });
    watcher.on('error', (err) => this.log.error('watching the SBS folder failed', { err, dir: this.opts.dir }));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    this.watcher = watcher;
    // Scan after the watcher is ready, so nothing written in between is missed.
    this.scan();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const p of this.pending.values()) if (p.timer !== null) clearTimeout(p.timer);
    this.pending.clear();
    this.settling = 0;
    await this.watcher?.close();
    this.watcher = null;
  }

  /**
   * Looks at every entry in the folder (at start, and as a safety net). Names are listed as bytes:
   * a name that is not valid UTF-8 is only visible this way (chokidar reports it mangled).
   */
  scan(): void {
    if (this.stopped) return;
    let names: Buffer[];
    try {
      names = readdirSync(this.opts.dir, { encoding: 'buffer' });
    } catch (err) {
      this.log.error('cannot list the SBS folder', { dir: this.opts.dir, err });
      return;
    }
    const seen = new Set<string>();
    for (const raw of names) {
      const name = utf8Name(raw);
      if (name === null) {
        this.setAsideUnnamed(raw);
        continue;
      }
      seen.add(name);
      if (isSbsName(name)) this.notice(name);
      else this.inspectOther(name, true);
    }
    // Forget reports of entries that are gone, so the map stays as small as the folder.
    for (const name of this.reported.keys()) if (!seen.has(name)) this.reported.delete(name);
  }

  private onWatchEvent(path: string): void {
    if (this.stopped || path === this.opts.dir) return;
    const name = basename(path);
    if (isSbsName(name)) this.notice(name);
    else this.inspectOther(name, false);
  }

  private scanSoon(): void {
    if (this.scanQueued) return;
    this.scanQueued = true;
    setImmediate(() => {
      this.scanQueued = false;
      this.scan();
    });
  }

  private notice(name: string): void {
    if (this.stopped || !isSbsName(name)) return;
    let p = this.pending.get(name);
    if (p === undefined) {
      p = { size: -1, mtimeMs: -1, unparseableSince: null, timer: null, settling: false, reading: false, readFailures: 0 };
      this.pending.set(name, p);
    }
    if (p.timer === null && !p.reading) this.check(name, p);
  }

  /**
   * An entry without an SBS name. Anything but a regular file is reported as soon as it is seen; a
   * regular file (a readme, a copier's temporary file) only when a scan finds it still there.
   */
  private inspectOther(name: string, fromScan: boolean): void {
    let st: Stats;
    try {
      st = lstatSync(join(this.opts.dir, name));
    } catch {
      return; // gone
    }
    const kind = kindOf(st);
    if (kind !== 'file') this.leftAlone(name, st, kind);
    else if (fromScan) this.reportOnce(name, `file:${st.ino}`, 'info', { kind, problem: 'not an SBS file (the name does not end in .sbs, or starts with a dot)' });
  }

  /** Reports an entry that is not a regular file, once, and leaves it where it is. */
  private leftAlone(name: string, st: Stats, kind: EntryKind): void {
    const fields: Record<string, unknown> = { kind, problem: notRegularProblem(kind) };
    if (kind === 'symlink') {
      try {
        fields['target'] = quote(readlinkSync(join(this.opts.dir, name)));
      } catch {
        // gone or unreadable: the kind says enough
      }
    }
    this.reportOnce(name, `${kind}:${st.ino}`, 'warn', fields);
  }

  private reportOnce(name: string, identity: string, level: 'info' | 'warn', fields: Record<string, unknown>): void {
    if (this.reported.get(name) === identity) return;
    this.reported.set(name, identity);
    this.log[level]('SBS folder entry left alone', { file: name, ...fields });
  }

  private check(name: string, p: Pending): void {
    p.timer = null;
    this.setSettling(p, false);
    if (this.stopped) return;
    const path = join(this.opts.dir, name);
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch {
      this.pending.delete(name); // gone (moved by us or by someone else)
      return;
    }
    const kind = kindOf(st);
    if (kind !== 'file') {
      this.pending.delete(name);
      this.leftAlone(name, st, kind);
      return;
    }
    if (st.size > this.opts.maxFileBytes) {
      // Set aside at once, even while it is still growing: it is never read.
      this.pending.delete(name);
      this.rejectTooLarge(name, st.size);
      return;
    }
    const changed = st.size !== p.size || st.mtimeMs !== p.mtimeMs;
    if (changed) {
      p.size = st.size;
      p.mtimeMs = st.mtimeMs;
      p.unparseableSince = null;
    }
    const age = Date.now() - st.mtimeMs;
    if (changed && age < this.opts.settleMs) {
      // Still being written (or just renamed in): look again once it has been quiet long enough.
      p.timer = setTimeout(() => this.check(name, p), Math.max(1, this.opts.settleMs - age));
      this.setSettling(p, true);
      return;
    }
    this.read(name, path, p);
  }

  private read(name: string, path: string, p: Pending): void {
    let got: BoundedRead;
    try {
      got = readRegularFile(path, this.opts.maxFileBytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.pending.delete(name);
        return;
      }
      const retryMs = Math.min(MAX_READ_RETRY_MS, Math.max(this.opts.settleMs, 100) * 2 ** p.readFailures);
      if (p.readFailures === 0) this.log.warn('cannot read SBS file; will retry', { file: name, err });
      else this.log.debug('cannot read SBS file; will retry', { file: name, err, failures: p.readFailures + 1, retryMs });
      p.readFailures++;
      p.timer = setTimeout(() => this.check(name, p), retryMs);
      return;
    }
    p.readFailures = 0;
    if (got.kind === 'not-regular') {
      // Replaced by a link, FIFO... between lstat and open.
      this.pending.delete(name);
      this.leftAloneNow(name, got.entry);
      return;
    }
    if (got.kind === 'too-large') {
      this.pending.delete(name);
      this.rejectTooLarge(name, got.size);
      return;
    }
    const bytes = got.bytes;
    if (!isCompleteJson(bytes)) {
      const since = p.unparseableSince ?? Date.now();
      p.unparseableSince = since;
      const waited = Date.now() - since;
      if (waited < this.opts.parseRetryMs) {
        this.log.debug('SBS file is not complete JSON yet; retrying', { file: name, size: bytes.length, waitedMs: waited });
        p.timer = setTimeout(() => this.check(name, p), Math.min(this.opts.parseRetryMs - waited, Math.max(this.opts.settleMs, 250)));
        return;
      }
    }
    let doc: SbsDocument;
    try {
      doc = parseSbs(bytes);
    } catch (err) {
      this.pending.delete(name);
      const field = err instanceof SbsError ? err.field : '';
      const problem = err instanceof SbsError ? err.problem : errorMessage(err);
      this.reject(name, field, problem);
      return;
    }
    p.reading = true;
    this.ready.push({ name, path, ino: got.ino, doc });
    this.scheduleFlush();
  }

  private leftAloneNow(name: string, fallback: EntryKind): void {
    try {
      const st = lstatSync(join(this.opts.dir, name));
      this.leftAlone(name, st, kindOf(st));
    } catch {
      this.log.warn('SBS folder entry left alone', { file: name, kind: fallback, problem: notRegularProblem(fallback) });
    }
  }

  private setSettling(p: Pending, on: boolean): void {
    if (p.settling !== on) this.settling += on ? 1 : -1;
    p.settling = on;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.firstReadyAt = Date.now();
    const flush = (): void => {
      // Hold the batch while other files are still settling, for at most two settle periods.
      if (this.settling > 0 && Date.now() - this.firstReadyAt < 2 * this.opts.settleMs) {
        setTimeout(flush, Math.max(1, Math.floor(this.opts.settleMs / 4)));
        return;
      }
      this.flushScheduled = false;
      const batch = this.ready;
      this.ready = [];
      if (batch.length > 0 && !this.stopped) this.opts.onReady(batch);
    };
    setImmediate(flush);
  }

  /** Moves an applied file into the dated store. Call only after its effect is committed. */
  archive(file: ReadyFile): void {
    this.pending.delete(file.name);
    try {
      if (lstatSync(file.path).ino !== file.ino) {
        // Replaced under the same name after we read it: the new file is a new instruction.
        this.log.info('SBS file was replaced after reading; leaving the new one in place', { file: file.name });
        this.notice(file.name);
        return;
      }
    } catch {
      return; // already gone
    }
    const dir = join(this.opts.storeDir, dateFolder(this.now()));
    mkdirSync(dir, { recursive: true });
    renameSync(file.path, uniquePath(dir, file.name));
    sbsApplied(file.doc.kind);
  }

  /** Gives a file back after its batch failed to apply: it is looked at again shortly. */
  release(file: ReadyFile): void {
    const p = this.pending.get(file.name);
    if (p === undefined || this.stopped) return;
    p.reading = false;
    p.size = -1;
    p.timer = setTimeout(() => this.check(file.name, p), 1000);
  }

  /** fsyncs the folders touched by archive() (once per batch, not per file). */
  syncArchive(): void {
    fsyncDir(this.opts.dir);
    const dir = join(this.opts.storeDir, dateFolder(this.now()));
    if (existsSync(dir)) fsyncDir(dir);
  }

  private rejectTooLarge(name: string, size: number): void {
    const limitMib = Math.round((this.opts.maxFileBytes / (1024 * 1024)) * 100) / 100;
    this.reject(name, '', `too large: ${size} bytes; the limit is ${limitMib} MiB ([interface] max_sbs_file_mib)`);
  }

  private reject(name: string, field: string, problem: string): void {
    this.setAside(join(this.opts.dir, name), name, { file: name, field, problem });
  }

  /** Sets aside an entry whose name is not valid UTF-8, under a safe name; the bytes go in the reason. */
  private setAsideUnnamed(raw: Buffer): void {
    const name = safeName(raw);
    const hex = raw.toString('hex');
    const from = Buffer.concat([Buffer.from(join(this.opts.dir, '/')), raw]);
    this.setAside(from, name, { file: name, field: '', problem: `the name is not valid UTF-8 (bytes ${hex})`, nameHex: hex });
  }

  /** Moves an entry (never followed: rename moves a link itself) to rejected/ after writing its reason. */
  private setAside(from: string | Buffer, name: string, reason: { file: string; field: string; problem: string; nameHex?: string }): void {
    const rejectedDir = join(this.opts.storeDir, 'rejected');
    const target = uniquePath(rejectedDir, name);
    const at = this.now().toISOString();
    try {
      // The reason is written first: a crash before the move leaves the file to be judged again.
      writeFileAtomic(`${target}.error.json`, JSON.stringify({ ...reason, rejectedAt: at }, null, 2) + '\n');
      renameSync(from, target);
      fsyncDir(this.opts.dir);
    } catch (err) {
      this.log.error('cannot move rejected SBS file', { file: reason.file, err });
      return;
    }
    this.log.warn('SBS file rejected', { ...reason, movedTo: target });
    sbsRejected(reason.field, reason.problem);
    this.opts.onRejected({ name: reason.file, field: reason.field, problem: reason.problem });
  }

  private now(): Date {
    return this.opts.now?.() ?? new Date();
  }
}

function quote(s: string): string {
  return s.length > MAX_QUOTED ? `${s.slice(0, MAX_QUOTED)}...` : s;
}

function isCompleteJson(bytes: Buffer): boolean {
  try {
    JSON.parse(bytes.toString('utf8').replace(/^\uFEFF/, ''));
    return true;
  } catch {
    return false;
  }
}

export function dateFolder(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/**
 * `name` in `dir`, or `stem-N.ext` if that is taken: a store never overwrites a file. (A lone
 * `<name>.error.json` is ours, from a crash between writing the reason and moving the file: the
 * retry takes that slot again.)
 */
export function uniquePath(dir: string, name: string): string {
  let candidate = join(dir, name);
  const ext = extname(name);
  const stem = name.slice(0, name.length - ext.length);
  for (let n = 1; existsSync(candidate); n++) candidate = join(dir, `${stem}-${n}${ext}`);
  return candidate;
}
