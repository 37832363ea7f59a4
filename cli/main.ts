// The `netboot` command. Each command lives in its own module with its spec (options, arguments,
// subcommands), loaded only when used; this file finds the command, parses its arguments
// strictly, answers -h/--help, `help CMD` and --version itself (never starting anything), and
// turns errors into messages and exit statuses: 2 for a usage error, 1 for a failure.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { errorMessage, NetbootError } from '../platform/runtime/errors.ts';
import { GLOBAL_OPTIONS, helpText, parseCommandArgs, twoColumns, usageText, UsageError, USAGE_EXIT, wrap, type CommandSpec, type Options } from './args.ts';
import { checkoutRoot, type Command } from './context.ts';
import { suggest } from './suggest.ts';

interface Loaded {
  readonly spec: CommandSpec;
  readonly run: Command;
}

/** Help lists commands by task, in this order. */
const GROUPS = ['Run and operate', 'Inspect', 'Instructions (SBS)', 'Packages', 'Preboot (BootWiz)', 'Imaging', 'Site to site'] as const;
type Group = (typeof GROUPS)[number];

const COMMANDS: Record<string, { group: Group; load: () => Promise<Loaded> }> = {
  run: { group: 'Run and operate', load: async () => { const m = await import('./run-command.ts'); return { spec: m.runSpec, run: m.runCommand }; } },
  status: { group: 'Run and operate', load: async () => { const m = await import('./status-command.ts'); return { spec: m.statusSpec, run: m.statusCommand }; } },
  top: { group: 'Run and operate', load: async () => { const m = await import('./top-command.ts'); return { spec: m.topSpec, run: m.topCommand }; } },
  config: { group: 'Run and operate', load: async () => { const [s, m] = await Promise.all([import('./config-spec.ts'), import('./config-command.ts')]); return { spec: s.configSpec, run: m.configCommand }; } },
  explain: { group: 'Inspect', load: async () => { const m = await import('./explain-command.ts'); return { spec: m.explainSpec, run: m.explainCommand }; } },
  state: { group: 'Inspect', load: async () => { const m = await import('./state-command.ts'); return { spec: m.stateSpec, run: m.stateCommand }; } },
  sbs: { group: 'Instructions (SBS)', load: async () => { const m = await import('./sbs-command.ts'); return { spec: m.sbsSpec, run: m.sbsCommand }; } },
  package: { group: 'Packages', load: async () => { const m = await import('./package-command.ts'); return { spec: m.packageSpec, run: m.packageCommand }; } },
  bootwiz: { group: 'Preboot (BootWiz)', load: async () => { const m = await import('./bootwiz-command.ts'); return { spec: m.bootwizSpec, run: m.bootwizCommand }; } },
  job: { group: 'Imaging', load: async () => { const m = await import('./job-command.ts'); return { spec: m.jobSpec, run: m.jobCommand }; } },
  image: { group: 'Imaging', load: async () => { const m = await import('./image-command.ts'); return { spec: m.imageSpec, run: m.imageCommand }; } },
  peers: { group: 'Site to site', load: async () => { const m = await import('./peers-command.ts'); return { spec: m.peersSpec, run: m.peersCommand }; } },
};

/** Options before any command: `netboot --version`, `netboot --help`. */
const TOP_OPTIONS: Options = {
  ...GLOBAL_OPTIONS,
  version: { type: 'boolean', short: 'V', help: 'print the version (and the git commit when run from a checkout)' },
};

/** Options that take a value, so that their value is not taken for the command's name. */
const VALUE_FLAGS = new Set(['--config', '--log-format']);

const TOP_USAGE = 'usage: netboot [--config FILE] COMMAND [ARGS...] [OPTIONS]';

export interface Io {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const STDIO: Io = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
};

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  const root = checkoutRoot();
  if (root === null) return `netboot ${pkg.version}`;
  const git = spawnSync('git', ['-C', root, 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8' });
  const commit = git.status === 0 ? git.stdout.trim() : '';
  return commit === '' ? `netboot ${pkg.version}` : `netboot ${pkg.version} (commit ${commit})`;
}

async function loadAll(): Promise<Array<{ name: string; group: Group; spec: CommandSpec }>> {
  return Promise.all(Object.entries(COMMANDS).map(async ([name, c]) => ({ name, group: c.group, spec: (await c.load()).spec })));
}

/** Every command and subcommand spec, parents before their subcommands (for tests and docs). */
export async function allSpecs(): Promise<CommandSpec[]> {
  const walk = (s: CommandSpec): CommandSpec[] => [s, ...Object.values(s.subcommands ?? {}).flatMap(walk)];
  return (await loadAll()).flatMap((c) => walk(c.spec));
}

/** The list of every command, by task, aligned. */
export async function generalHelp(): Promise<string> {
  const all = await loadAll();
  const out = [
    'netboot: PXE boot services, SBS instructions and package replication',
    '',
    TOP_USAGE,
  ];
  const rows = (spec: CommandSpec): Array<[string, string]> =>
    spec.subcommands === undefined
      ? [[`${spec.name}${spec.args === undefined ? '' : ` ${spec.args}`}`, spec.summary]]
      : Object.values(spec.subcommands).flatMap(rows);
  const lines: Array<{ group: Group; row: [string, string] }> = all.flatMap((c) => rows(c.spec).map((row) => ({ group: c.group, row })));
  const width = Math.max(...lines.map((l) => l.row[0].length));
  for (const group of GROUPS) {
    const mine = lines.filter((l) => l.group === group);
    if (mine.length === 0) continue;
    out.push('', `${group}:`, ...twoColumns(mine.map((l) => [l.row[0].padEnd(width), l.row[1]])));
  }
  out.push(
    '',
    'Options:',
    ...twoColumns([['--config FILE', 'the config file (every command)'], ['-h, --help', 'a command\'s help (also: netboot help COMMAND)'], ['-V, --version', 'the version, and the git commit in a checkout']]),
    '',
    ...wrap('Config: --config FILE, else $NETBOOT_CONFIG, else /etc/netboot/netboot.toml, else (run from a checkout) its config/default.toml, the file `npm start` uses.', 80),
  );
  return out.join('\n');
}

function unknownCommand(name: string): UsageError {
  const hint = suggest(name, [...Object.keys(COMMANDS), 'help']);
  return new UsageError(null, `unknown command ${name}${hint === null ? '' : ` (did you mean ${hint}?)`}`);
}

/** The subcommand spec chosen by the first positional of `argv`, or null when none is given. */
function subcommandOf(spec: CommandSpec, argv: readonly string[]): { spec: CommandSpec; index: number } | null {
  const subs = spec.subcommands!;
  const valued = new Set([...VALUE_FLAGS, ...Object.values(subs).flatMap((s) => Object.entries(s.options ?? {}).filter(([, o]) => o.type === 'string').map(([n]) => `--${n}`))]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return null;
    if (a.startsWith('-') && a !== '-') {
      if (valued.has(a)) i++;
      continue;
    }
    const sub = subs[a];
    if (sub !== undefined) return { spec: sub, index: i };
    const hint = suggest(a, Object.keys(subs));
    throw new UsageError(spec, `unknown subcommand ${a}${hint === null ? '' : ` (did you mean ${hint}?)`}`);
  }
  return null;
}

const wantsHelp = (argv: readonly string[]): boolean => {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '-h' || a === '--help');
};

async function dispatch(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io, chosen: { name: string }): Promise<number> {
  // Global options may come before the command: `netboot --config F status`.
  const pre: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-') || a === '-' || a === '--') break;
    pre.push(a);
    if (VALUE_FLAGS.has(a) && i + 1 < argv.length) pre.push(argv[++i]!);
  }
  const name = argv[i];
  const rest = argv.slice(i + 1);
  if (name === undefined || name === '--') {
    const top = parseCommandArgs({ name: '', summary: '', options: TOP_OPTIONS, arity: [0, 0] }, pre);
    if (top.flags.has('version')) {
      io.out(version());
      return 0;
    }
    if (top.flags.has('help')) {
      io.out(await generalHelp());
      return 0;
    }
    io.err(await generalHelp());
    return USAGE_EXIT;
  }
  if (name === 'help') {
    if (pre.length > 0 || rest.some((a) => a.startsWith('-'))) throw new UsageError(null, 'usage: netboot help [COMMAND [SUBCOMMAND]]');
    if (rest.length === 0) {
      io.out(await generalHelp());
      return 0;
    }
    const entry = COMMANDS[rest[0]!];
    if (entry === undefined) throw unknownCommand(rest[0]!);
    const spec = (await entry.load()).spec;
    const sub = spec.subcommands === undefined ? null : subcommandOf(spec, rest.slice(1));
    if (sub === null && rest.length > 1) throw new UsageError(null, `${rest[0]} has no subcommand ${rest[1]}`);
    io.out(helpText(sub?.spec ?? spec));
    return 0;
  }
  const entry = COMMANDS[name];
  if (entry === undefined) throw unknownCommand(name);
  const loaded = await entry.load();
  let spec = loaded.spec;
  const args = [...pre, ...rest];
  if (spec.subcommands !== undefined) {
    let sub: ReturnType<typeof subcommandOf>;
    try {
      sub = subcommandOf(spec, rest);
    } catch (err) {
      if (err instanceof UsageError && wantsHelp(args)) sub = null;
      else throw err;
    }
    if (sub === null) {
      if (wantsHelp(args)) {
        io.out(helpText(spec));
        return 0;
      }
      throw new UsageError(spec, 'missing subcommand');
    }
    spec = sub.spec;
  }
  if (wantsHelp(args)) {
    io.out(helpText(spec));
    return 0;
  }
  chosen.name = spec.name;
  const parsed = parseCommandArgs(spec, args);
  return loaded.run({ args: parsed, out: io.out, err: io.err, env });
}

/** A control socket nobody answers on: which service is not running, said plainly. */
function notRunning(err: NetbootError): string | null {
  if (err.code !== 'CONTROL_UNREACHABLE') return null;
  const m = /\/run\/([a-z]+)\.sock: .*\b(ENOENT|ECONNREFUSED)\b/.exec(err.message);
  if (m === null) return null;
  return `the ${m[1]} service is not running (start it with \`netboot run\` or \`systemctl start netboot.target\`)`;
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, io: Io = STDIO): Promise<number> {
  const chosen = { name: argv.find((a, i) => !a.startsWith('-') && !VALUE_FLAGS.has(argv[i - 1] ?? '')) ?? '' };
  try {
    return await dispatch(argv, env, io, chosen);
  } catch (err) {
    const name = chosen.name;
    if (err instanceof UsageError) {
      const who = err.spec === null || err.spec.name === '' ? 'netboot' : `netboot ${err.spec.name}`;
      io.err(`${who}: ${err.message}`);
      io.err(err.spec === null || err.spec.name === '' ? TOP_USAGE : usageText(err.spec));
      io.err(`Run \`${who} --help\` for more.`);
      return USAGE_EXIT;
    }
    if (err instanceof NetbootError) {
      const plain = notRunning(err);
      const message = plain ?? err.message;
      io.err(message.startsWith('netboot') ? message : `netboot ${name}: ${message}`);
      return 1;
    }
    io.err(`netboot ${name}: ${errorMessage(err)}`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // `netboot state | head`: a reader that goes away is not an error. A running service whose
  // supervisor died loses its log output but stops in order (the supervisor's channel closes).
  const argv = process.argv.slice(2);
  const isService = argv.find((a, i) => !a.startsWith('-') && !VALUE_FLAGS.has(argv[i - 1] ?? '')) === 'run';
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (!isService) process.exit(0);
  });
  process.exitCode = await main(argv);
}
