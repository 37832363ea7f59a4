// The shared table renderer and the readable log line: aligned, within 80 columns, cut with `…`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, defaultLogFormat, formatLogRecord, textSink } from '../../platform/runtime/logger.ts';
import { renderTable, truncate } from '../../cli/table.ts';
import { formatTable } from '../../cli/status-command.ts';

test('truncate cuts with an ellipsis only when needed', () => {
  assert.equal(truncate('abcdef', 6), 'abcdef');
  assert.equal(truncate('abcdefg', 6), 'abcde…');
});

test('tables align, fit 80 columns by cutting the widest shrinkable column, and --wide shows all', () => {
  const columns = [{ header: 'ID' }, { header: 'STATE', keep: true }, { header: 'N', right: true }, { header: 'NOTE' }];
  const rows = [['short', 'ready', '7', '-'], ['a-very-long-identifier-'.repeat(3), 'syncing', '1234', 'x'.repeat(70)]];
  const lines = renderTable(columns, rows);
  for (const l of lines) assert.ok(l.length <= 80, l);
  assert.match(lines[0]!, /^ID +STATE +N {2}NOTE$/);
  assert.match(lines[1]!, /^short +ready +7 {2}-$/);
  assert.match(lines[2]!, /^a-very-long-\S*… +syncing +1234 {2}x+…$/);
  // The STATE column starts at the same place on every line.
  assert.equal(lines[1]!.indexOf('ready'), lines[0]!.indexOf('STATE'));
  assert.equal(lines[2]!.indexOf('syncing'), lines[0]!.indexOf('STATE'));
  const wide = renderTable(columns, rows, { wide: true });
  assert.ok(wide[2]!.includes('a-very-long-identifier-'.repeat(3)) && wide[2]!.endsWith('x'.repeat(70)));
  const indented = renderTable(columns, rows, { indent: 2 });
  for (const l of indented) assert.ok(l.startsWith('  ') && l.length <= 80, l);
});

test('a log record as one readable line: time, service, part, message, fields; null left out', () => {
  const [line, ...more] = formatLogRecord({ ts: '2026-01-02T03:04:05.000Z', level: 'info', service: 'server', part: 'feed', msg: 'offer sent', mac: '52:54:00:ab:cd:ef', file: 'undionly.kpxe', relay: null });
  assert.deepEqual(more, []);
  assert.match(line!, /^\d\d:\d\d:\d\d server {5}feed: offer sent {2}mac=52:54:00:ab:cd:ef file=undionly\.kpxe$/);
});

test('long lines fit the width: info is cut, a warning or error continues on indented lines', () => {
  const long = { ts: new Date().toISOString(), service: 'interface', msg: 'SBS file applied', file: 'x'.repeat(100), effect: 'y'.repeat(100) };
  const info = formatLogRecord({ ...long, level: 'info' });
  assert.equal(info.length, 1);
  assert.ok(info[0]!.length <= 80 && info[0]!.endsWith('…'), info[0]);
  const err = formatLogRecord({ ...long, level: 'error', msg: 'cannot move applied SBS file to the store', err: { name: 'Error', message: 'EACCES: permission denied, rename /srv/sbs/a.sbs -> /srv/store/a.sbs', code: 'EACCES' } });
  assert.ok(err.length > 1);
  for (const l of err) assert.ok(l.length <= 80, l);
  assert.match(err[0]!, /^\d\d:\d\d:\d\d interface {2}error: cannot move/);
  assert.ok(err.slice(1).every((l) => l.startsWith(' '.repeat(20))));
  assert.ok(err.join(' ').includes('EACCES: permission denied'));
  const narrow = formatLogRecord({ ...long, level: 'info' }, { width: 120 });
  assert.ok(narrow[0]!.length <= 120 && narrow[0]!.length > 80);
});

test('colour only when asked: warnings yellow, errors red', () => {
  assert.match(formatLogRecord({ level: 'warn', service: 's', msg: 'm' }, { color: true })[0]!, /^\x1b\[33m.*warning: m\x1b\[0m$/);
  assert.match(formatLogRecord({ level: 'error', service: 's', msg: 'm' }, { color: true })[0]!, /^\x1b\[31m/);
  assert.doesNotMatch(formatLogRecord({ level: 'error', service: 's', msg: 'm' })[0]!, /\x1b/);
});

test('the text logger and the relay sink write the readable form; other lines pass through', () => {
  const lines: string[] = [];
  const sink = { write: (l: string) => lines.push(l) };
  createLogger({ format: 'text', sink, fields: { service: 'supervisor' } }).info('service started', { child: 'server', pid: 42 });
  const relay = textSink(sink);
  relay.write(`${JSON.stringify({ ts: new Date().toISOString(), level: 'warn', service: 'mtftp', msg: 'slow client', peer: '10.0.0.9:2000' })}\n`);
  relay.write('a stack trace line\n');
  assert.match(lines[0]!, /^\d\d:\d\d:\d\d supervisor service started {2}child=server pid=42\n$/);
  assert.match(lines[1]!, /^\d\d:\d\d:\d\d mtftp {6}warning: slow client {2}peer=10\.0\.0\.9:2000\n$/);
  assert.equal(lines[2], 'a stack trace line\n');
});

test('the default format: text on a terminal, JSON when piped or on journald\'s stream', () => {
  const stat = (): { dev: number; ino: number } => ({ dev: 8, ino: 1234 });
  assert.equal(defaultLogFormat({ isTTY: true, fd: 1 }, {}, stat), 'text');
  assert.equal(defaultLogFormat({ isTTY: false, fd: 1 }, {}, stat), 'json');
  assert.equal(defaultLogFormat({ fd: 1 }, { JOURNAL_STREAM: '8:1234' }, stat), 'json');
  assert.equal(defaultLogFormat({ isTTY: true, fd: 1 }, { JOURNAL_STREAM: '8:1234' }, stat), 'json');
  assert.equal(defaultLogFormat({ isTTY: true, fd: 1 }, { JOURNAL_STREAM: '9:99' }, stat), 'text'); // inherited, not ours
});

test('status: one row per service, then each service\'s warnings, wrapped to 80 columns', () => {
  const lines = formatTable([
    { service: 'interface', running: true, state: 'serving', pid: 10, ports: { interface: 490 }, warnings: [], status: {} },
    { service: 'server', running: true, state: 'serving', pid: 11, ports: { dhcp: 67, proxy: 4011 }, warnings: ['[paths] tftp_root /srv/tftp does not exist: every TFTP request for a boot file will fail until it is created'], status: {} },
    { service: 'mtftp', running: false, error: 'connect ENOENT' },
  ]);
  for (const l of lines) assert.ok(l.length <= 80, l);
  assert.deepEqual(lines.slice(0, 4), [
    'SERVICE    STATE        PID  PORTS',
    'interface  serving      10   interface=490',
    'server     serving      11   dhcp=67 proxy=4011',
    'mtftp      not running  -    -',
  ]);
  const rest = lines.slice(4).join('\n');
  assert.match(rest, /Start the services with `netboot run`/);
  assert.match(rest, /\nwarnings:\n {2}server: \[paths\] tftp_root \/srv\/tftp does not exist: every TFTP request for a\n {4}boot file will fail until it is created$/);
});
