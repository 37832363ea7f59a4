// The command line as a table: every command and subcommand answers --help (stdout, exit 0,
// nothing started, nothing written), refuses an unknown flag (exit 2, the usage line, a
// suggestion for a near miss), and takes the global flags before or after the command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allSpecs } from '../../cli/main.ts';
import { makeTestSite } from '../helpers/env.ts';
import { inProcess, netboot, pooled } from './cli-run.ts';

const specs = await allSpecs();
const leaves = specs.filter((s) => s.subcommands === undefined);
const words = (name: string): string[] => name.split(' ');

/** A valid config whose data, SBS and TFTP folders do not exist: anything started would create them. */
function untouchedSite(): { dir: string; config: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-cli-help-'));
  const config = join(dir, 'netboot.toml');
  writeFileSync(config, `[paths]\ndata = "${dir}/data"\nsbs = "${dir}/sbs"\nsbs_store = "${dir}/store"\ntftp_root = "${dir}/tftp"\n[server]\nbind = "127.0.0.1"\naddress = "127.0.0.1"\n[site]\nid = "help"\n`);
  return { dir, config, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function assertFits(text: string, what: string): void {
  for (const line of text.split('\n')) assert.ok(line.length <= 80, `${what}: a line of ${line.length} columns: ${line}`);
}

test('the table covers every command the help lists', () => {
  assert.deepEqual(specs.filter((s) => !s.name.includes(' ')).map((s) => s.name).sort(), ['bootwiz', 'config', 'explain', 'image', 'job', 'package', 'peers', 'run', 'sbs', 'state', 'status', 'top']);
  assert.ok(leaves.length >= 13, leaves.map((s) => s.name).join(', '));
});

test('--help on every command and subcommand: help on stdout, exit 0, nothing started or written', async () => {
  const site = untouchedSite();
  try {
    const cases = [[] as string[], ...specs.map((s) => words(s.name))];
    const results = await pooled(cases.map((w) => () => netboot([...w, '--help', '--config', site.config])));
    cases.forEach((w, i) => {
      const r = results[i]!;
      const what = `netboot ${[...w, '--help'].join(' ')}`;
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      assert.equal(r.stderr, '', what);
      assert.match(r.stdout, w.length === 0 ? /^netboot: .*\n\nusage: netboot / : /^usage:/, what);
      assertFits(r.stdout, what);
    });
    // -h, `help CMD` and the global flag before the command say the same, in this process.
    for (const s of specs) {
      const full = results[cases.findIndex((w) => w.join(' ') === s.name)]!.stdout;
      for (const argv of [[...words(s.name), '-h'], ['help', ...words(s.name)], ['--config', site.config, ...words(s.name), '--help']]) {
        const r = await inProcess(argv);
        assert.deepEqual([r.code, r.stdout, r.stderr], [0, full, ''], argv.join(' '));
      }
    }
    // Nothing was created beside the config: no data folder (so no socket, no lock), no SBS folder.
    assert.deepEqual(readdirSync(site.dir), ['netboot.toml']);
  } finally {
    site.cleanup();
  }
});

test('help, --help and --version at the top: stdout, exit 0; no command: the help on stderr, exit 2', async () => {
  const [help, long, short, bare] = await Promise.all([inProcess(['help']), inProcess(['--help']), inProcess(['-h']), inProcess([])]);
  for (const r of [help, long, short]) assert.deepEqual([r.code, r.stderr], [0, '']);
  assert.equal(long.stdout, help.stdout);
  assert.equal(short.stdout, help.stdout);
  assert.deepEqual([bare.code, bare.stdout, bare.stderr], [2, '', help.stdout]);
  // By task, in this order, and aligned: every summary starts in the same column.
  const headings = help.stdout.split('\n').filter((l) => /^[A-Z].*:$/.test(l));
  assert.deepEqual(headings.slice(0, 7), ['Run and operate:', 'Inspect:', 'Instructions (SBS):', 'Packages:', 'Preboot (BootWiz):', 'Imaging:', 'Site to site:']);
  const rows = help.stdout.split('\n').filter((l) => /^ {2}[a-z]/.test(l) && !l.startsWith('  -'));
  const columns = new Set(rows.map((l) => /^ {2}\S.*? {2,}(?=\S)/.exec(l)![0].length));
  assert.equal(columns.size, 1, rows.join('\n'));
  assert.match(help.stdout, /package status \[ID\] +each package's replication state/);
  const version = await netboot(['--version']);
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, /^netboot \d+\.\d+\.\d+( \(commit [0-9a-f]{7,}\))?\n$/);
});

test('an unknown flag on every command and subcommand: exit 2, the message, the usage line', async () => {
  for (const s of leaves) {
    const r = await inProcess([...words(s.name), '--no-such-flag']);
    assert.equal(r.code, 2, s.name);
    assert.equal(r.stdout, '', s.name);
    assert.match(r.stderr, new RegExp(`^netboot ${s.name}: unknown option --no-such-flag\nusage:`), s.name);
  }
  for (const s of specs.filter((x) => x.subcommands !== undefined)) {
    const r = await inProcess([s.name, 'no-such-subcommand']);
    assert.equal(r.code, 2, s.name);
    assert.match(r.stderr, new RegExp(`^netboot ${s.name}: unknown subcommand no-such-subcommand\nusage:`));
  }
});

test('near misses get a suggestion; missing and stray values are usage errors too', async () => {
  const table: Array<[string[], RegExp]> = [
    [['stauts'], /^netboot: unknown command stauts \(did you mean status\?\)\nusage: netboot /],
    [['status', '--jsno'], /^netboot status: unknown option --jsno \(did you mean --json\?\)\nusage: netboot status \[--json\] \[--wide\]\n/],
    [['status', '-j'], /unknown option -j \(did you mean --json\?\)/],
    [['status', '--confg', 'x'], /unknown option --confg \(did you mean --config\?\)/],
    [['package', 'status', '--wacth'], /^netboot package status: unknown option --wacth \(did you mean --watch\?\)\nusage: netboot package status /],
    [['package', 'stauts'], /unknown subcommand stauts \(did you mean status\?\)/],
    [['sbs', 'sned', 'client'], /unknown subcommand sned \(did you mean send\?\)/],
    [['run', '--log-fromat', 'text'], /unknown option --log-fromat \(did you mean --log-format\?\)/],
    [['run', '--log-format', 'xml'], /--log-format is text or json, not xml/],
    [['run', 'dhcp'], /unknown service: dhcp \(services: interface, signal, server, mtftp\)/],
    [['explain', '52:54:00:00:00:01', '--ipx'], /did you mean --ipxe\?/],
    [['explain', '52:54:00:00:00:01', '--relay'], /option --relay needs a value \(--relay GIADDR\)/],
    [['status', '--config'], /option --config needs a value \(--config FILE\)/],
    [['status', '--json=yes'], /option --json takes no value/],
    [['status', 'extra'], /unexpected argument: extra/],
    [['explain'], /^netboot explain: missing argument \(MAC\)/],
    [['package'], /^netboot package: missing subcommand\nusage:\n {2}netboot package publish DIR --id ID --kind image\|driver\|preboot\n/],
    [['help', 'stauts'], /unknown command stauts \(did you mean status\?\)/],
    [['--jsno', 'status'], /^netboot status: unknown option --jsno/],
  ];
  for (const [argv, want] of table) {
    const r = await inProcess(argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', argv.join(' '));
    assert.match(r.stderr, want, argv.join(' '));
  }
  // The same through the real process: the exit status is 2 and nothing goes to stdout.
  const [typo, flag] = await Promise.all([netboot(['stauts']), netboot(['status', '--jsno'])]);
  assert.deepEqual([typo.code, typo.stdout], [2, '']);
  assert.deepEqual([flag.code, flag.stdout], [2, '']);
  assert.match(flag.stderr, /did you mean --json\?/);
});

test('global flags before or after the command: netboot --config F status', async () => {
  const site = await makeTestSite('', 'netboot-cli-global');
  try {
    const [before, after, json] = await Promise.all([
      netboot(['--config', site.configPath, 'status']),
      netboot(['status', '--config', site.configPath]),
      netboot(['--json', '--config', site.configPath, 'status']),
    ]);
    assert.equal(before.code, 3, before.stderr); // nothing runs: 3, as systemctl status
    assert.match(before.stdout, /^SERVICE +STATE +PID +PORTS\ninterface +not running +- +-\n/);
    assert.match(before.stdout, /Start the services with `netboot run`/);
    assert.equal(after.stdout, before.stdout);
    assert.deepEqual((JSON.parse(json.stdout) as Array<{ service: string; running: boolean }>).map((r) => [r.service, r.running]), [['interface', false], ['signal', false], ['server', false], ['mtftp', false]]);
    // Commands that need a service say which one is not running, and how to start it.
    for (const argv of [['state'], ['peers'], ['package', 'status'], ['explain', '52:54:00:00:00:01']]) {
      const r = await inProcess(['--config', site.configPath, ...argv]);
      assert.equal(r.code, 1, argv.join(' '));
      assert.match(r.stderr, new RegExp(`^netboot ${argv.slice(0, argv[0] === 'package' ? 2 : 1).join(' ')}: the (interface service|PXE server) is not running \\(start it with \`netboot run\` or \`systemctl start netboot.target\`\\)\n$`), r.stderr);
    }
  } finally {
    site.cleanup();
  }
});
