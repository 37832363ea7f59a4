// The SBS drop folder: notices `*.sbs` files (chokidar, plus a full scan at start), waits until a
// file's size has been stable for `settleMs`, reads and parses it, and hands valid documents on
// in batches. A file that is not (yet) complete JSON is retried until it has been unchanged for
// `parseRetryMs` (slow SMB/scp copies), then rejected; a complete but invalid document is
// rejected at once. Applied files move to <store>/<YYYY-MM-DD>/, rejected ones to
// <store>/rejected/ with <name>.error.json. Nothing is ever deleted.
import { watch, type FSWatcher } from 'chokidar';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, type Stats } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { writeFileAtomic, fsyncDir } from '../platform/runtime/atomic-file.ts';
import { errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import type { SbsDocument } from '../sbs/types.ts';
import { parseSbs } from '../sbs/parse.ts';
import { SbsError } from '../sbs/errors.ts';

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
}

export const isSbsName = (name: string): boolean => extname(name).toLowerCase() === '.sbs' && !name.startsWith('.');

export class DropFolder {
  private watcher: FSWatcher | null = null;
  private readonly pending = new Map<string, Pending>();
  private ready: ReadyFile[] = [];
  private flushScheduled = false;
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
    const watcher = watch(this.opts.dir, { depth: 0, ignoreInitial: true, persistent: false, alwaysStat: false });
    watcher.on('add', (p) => this.notice(basename(p)));
    watcher.on('change', (p) => this.notice(basename(p)));
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

  /** Looks at every file in the folder (at start, and as a safety net). */
  scan(): void {
    for (const name of readdirSync(this.opts.dir)) this.notice(name);
  }

  private notice(name: string): void {
    if (this.stopped || !isSbsName(name)) return;
    let p = this.pending.get(name);
    if (p === undefined) {
      p = { size: -1, mtimeMs: -1, unparseableSince: null, timer: null, settling: false, reading: false };
      this.pending.set(name, p);
    }
    if (p.timer === null && !p.reading) this.check(name, p);
  }

  private check(name: string, p: Pending): void {
    p.timer = null;
    this.setSettling(p, false);
    if (this.stopped) return;
    const path = join(this.opts.dir, name);
    let st: Stats;
    try {
      st = statSync(path);
    } catch {
      this.pending.delete(name); // gone (moved by us or by someone else)
      return;
    }
    if (!st.isFile()) {
      this.pending.delete(name);
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
    this.read(name, path, p, st);
  }

  private read(name: string, path: string, p: Pending, st: Stats): void {
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      this.log.warn('cannot read SBS file; will retry', { file: name, err });
      p.timer = setTimeout(() => this.check(name, p), Math.max(this.opts.settleMs, 100));
      return;
    }
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
    this.ready.push({ name, path, ino: st.ino, doc });
    this.scheduleFlush();
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
      if (statSync(file.path).ino !== file.ino) {
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

  private reject(name: string, field: string, problem: string): void {
    const rejectedDir = join(this.opts.storeDir, 'rejected');
    const target = uniquePath(rejectedDir, name);
    const at = this.now().toISOString();
    try {
      // The reason is written first: a crash before the move leaves the file to be judged again.
      writeFileAtomic(`${target}.error.json`, JSON.stringify({ file: name, field, problem, rejectedAt: at }, null, 2) + '\n');
      renameSync(join(this.opts.dir, name), target);
      fsyncDir(this.opts.dir);
    } catch (err) {
      this.log.error('cannot move rejected SBS file', { file: name, err });
      return;
    }
    this.log.warn('SBS file rejected', { file: name, field, problem, movedTo: target });
    this.opts.onRejected({ name, field, problem });
  }

  private now(): Date {
    return this.opts.now?.() ?? new Date();
  }
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
