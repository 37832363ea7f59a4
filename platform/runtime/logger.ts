// One structured logger: JSON lines on a writable stream (stdout by default, which journald
// captures as-is), or, for a person at a terminal, one short readable line per event (time,
// service, message, the key fields; warnings and errors coloured). Made once per process in
// `main` and passed in; child loggers add context fields such as service, mac, xid or peer.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;
export type LogFormat = 'json' | 'text';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'text'];

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogSink {
  write(line: string): unknown;
}

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
  enabled(level: LogLevel): boolean;
}

export interface TextOptions {
  /** Columns a line should fit in (default 80); a function is asked per line (a resized terminal). */
  readonly width?: number | (() => number);
  /** ANSI colours: warnings yellow, errors red, debug dim. */
  readonly color?: boolean;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  readonly sink?: LogSink;
  readonly fields?: LogFields;
  /** json (default) or text, the readable form for a terminal. */
  readonly format?: LogFormat;
  readonly text?: TextOptions;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? 'info'];
  const sink = options.sink ?? process.stdout;
  const base = options.fields ?? {};
  const text = options.format === 'text';
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (RANK[level] < min) return;
    const record: LogFields = { ts: new Date().toISOString(), level, ...base, msg, ...fields };
    const json = JSON.stringify(record, replacer);
    sink.write((text ? formatLogRecord(JSON.parse(json) as LogFields, options.text).join('\n') : json) + '\n');
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger({ ...options, sink, fields: { ...base, ...fields } }),
    enabled: (level) => RANK[level] >= min,
  };
}

/** A logger that keeps records in memory: for tests that assert on a logged reason. */
export function createMemoryLogger(level: LogLevel = 'debug'): Logger & { records: LogFields[] } {
  const records: LogFields[] = [];
  const logger = createLogger({ level, sink: { write: (line: string) => records.push(JSON.parse(line)) } });
  return Object.assign(logger, { records });
}

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, ...('code' in value ? { code: (value as { code: unknown }).code } : {}) };
  }
  if (typeof value === 'bigint') return value.toString();
  if (Buffer.isBuffer(value)) return value.toString('hex');
  return value;
}

// ---- the readable form -------------------------------------------------------------------------

/**
 * Which format `netboot run` logs in when not told: JSON when stdout is not a terminal (piped, a
 * file) or is journald's stream (JOURNAL_STREAM names stdout's device:inode), text otherwise.
 */
export function defaultLogFormat(stream: { isTTY?: boolean; fd?: number }, env: NodeJS.ProcessEnv, statFd?: (fd: number) => { dev: number; ino: number }): LogFormat {
  if (stream.isTTY !== true) return 'json';
  const journal = env.JOURNAL_STREAM;
  if (journal !== undefined && journal !== '' && statFd !== undefined && stream.fd !== undefined) {
    try {
      const st = statFd(stream.fd);
      if (journal === `${st.dev}:${st.ino}`) return 'json';
    } catch {
      // not a stream we can stat: keep the terminal's choice
    }
  }
  return 'text';
}

const SKIP = new Set(['ts', 'level', 'service', 'part', 'msg']);
const FIELD_MAX = 32;
const HEAD = 20; // "HH:MM:SS " + service column (10) + " "

const COLOR: Partial<Record<string, string>> = { warn: '\x1b[33m', error: '\x1b[31m', debug: '\x1b[2m' };
const RESET = '\x1b[0m';

function cut(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function fieldValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object' || x === null)) return v.map(String).join(',');
  if (typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string') {
    const e = v as { message: string; code?: unknown };
    return JSON.stringify(e.code === undefined ? e.message : `${String(e.code)}: ${e.message}`);
  }
  return JSON.stringify(v);
}

function clock(ts: unknown): string {
  const d = typeof ts === 'string' ? new Date(ts) : new Date();
  if (Number.isNaN(d.getTime())) return '--:--:--';
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** Splits `text` into pieces of at most `width`, at spaces where it can. */
function hardWrap(text: string, width: number): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > width) {
    let at = rest.lastIndexOf(' ', width);
    if (at <= 0) at = width;
    out.push(rest.slice(0, at));
    rest = rest.slice(at).trimStart();
  }
  out.push(rest);
  return out;
}

/**
 * One record as readable text: `HH:MM:SS service    part: message  key=value …`, fitting `width`
 * columns; null fields are left out. On an info or debug line field values are cut at 32
 * characters and the fields at the width; a warning or an error, or a message too long for one
 * line, continues on indented lines so that little of it is lost.
 */
export function formatLogRecord(record: LogFields, options: TextOptions = {}): string[] {
  const width = Math.max(40, (typeof options.width === 'function' ? options.width() : options.width) ?? 80);
  const level = typeof record.level === 'string' ? record.level : 'info';
  const service = typeof record.service === 'string' && record.service !== '' ? record.service : '-';
  const tag = level === 'warn' ? 'warning: ' : level === 'error' ? 'error: ' : '';
  const part = typeof record.part === 'string' && record.part !== '' ? `${record.part}: ` : '';
  const loud = level === 'warn' || level === 'error';
  const fields = Object.entries(record)
    .filter(([k, v]) => !SKIP.has(k) && v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${cut(fieldValue(v), loud ? FIELD_MAX * 4 : FIELD_MAX)}`);
  const message = `${tag}${part}${String(record.msg ?? '')}`;
  const body = `${message}${fields.length === 0 ? '' : `  ${fields.join(' ')}`}`;
  const head = `${clock(record.ts)} ${cut(service, 10).padEnd(10)} `;
  let lines: string[];
  if (head.length + body.length <= width) lines = [head + body];
  else if (loud || head.length + message.length > width) {
    const pieces = hardWrap(body, width - HEAD);
    lines = [head + pieces[0], ...pieces.slice(1).map((p) => ' '.repeat(HEAD) + p)];
  } else lines = [head + cut(body, width - head.length)];
  const color = options.color === true ? COLOR[level] : undefined;
  return color === undefined ? lines : lines.map((l) => `${color}${l}${RESET}`);
}

/**
 * A sink that takes JSON log lines (a child service's output, relayed by the supervisor) and
 * writes them in the readable form; any other line passes through as it is.
 */
export function textSink(target: LogSink, options: TextOptions = {}): LogSink {
  return {
    write(line: string): unknown {
      const trimmed = line.replace(/\n$/, '');
      let record: unknown;
      try {
        record = trimmed.startsWith('{') ? JSON.parse(trimmed) : undefined;
      } catch {
        record = undefined;
      }
      if (record === null || typeof record !== 'object' || !('msg' in record)) return target.write(line.endsWith('\n') ? line : `${line}\n`);
      return target.write(formatLogRecord(record as LogFields, options).join('\n') + '\n');
    },
  };
}
