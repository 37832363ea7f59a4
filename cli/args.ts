// Arguments for every `netboot` command, on node:util's parseArgs in strict mode. Each command
// declares a spec (its options with their help lines, its positional arguments, its
// subcommands); from that spec come the parse, the usage line and the help text, so adding a flag
// to a command is one line in its spec. An unknown flag, a missing value or a stray argument is a
// UsageError: the caller prints it with the usage line and exits 2.
import { parseArgs as nodeParseArgs } from 'node:util';
import { NetbootError } from '../platform/runtime/errors.ts';
import { suggest } from './suggest.ts';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** The value's name in help and usage: `--id ID`. */
  readonly value?: string;
  /** Shown without brackets in the usage line (the command checks it). */
  readonly required?: boolean;
  readonly help: string;
}

export type Options = Readonly<Record<string, OptionSpec>>;

export interface CommandSpec {
  /** The words that name it: `status`, `package status`. */
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Positional arguments as shown: `MAC`, `[ID]`, `FILE...`. */
  readonly args?: string;
  /** How many positional arguments it takes (after its own name), [min, max]. Default [0, 0]. */
  readonly arity?: readonly [number, number];
  readonly options?: Options;
  /** Usage lines (after `netboot `) instead of the generated one, for commands with many forms. */
  readonly synopsis?: readonly string[];
  /** Paragraphs printed in its help after the summary. */
  readonly description?: readonly string[];
  /** Subcommands by name: the first positional argument chooses one. */
  readonly subcommands?: Readonly<Record<string, CommandSpec>>;
}

/** Every command takes these. */
export const GLOBAL_OPTIONS: Options = {
  config: { type: 'string', value: 'FILE', help: 'config file (else $NETBOOT_CONFIG, /etc/netboot/netboot.toml, or the checkout\'s config/default.toml)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export interface ParsedArgs {
  /** Positional arguments, including the subcommand's name (`package status ID` → ['status', 'ID']). */
  readonly positionals: string[];
  /** Options given: a string option's value, or true for a boolean one. */
  readonly flags: Map<string, string | true>;
}

export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

/**
 * A loose parse for bench scripts and in-process tests: any `--flag value`, `--flag=value`, boolean
 * `--flag` and positionals, without a spec (flags named in `booleans` never take the next
 * argument). The `netboot` command itself parses strictly with parseCommandArgs.
 */
export function parseArgs(argv: readonly string[], booleans: readonly string[] = []): ParsedArgs {
  const { tokens } = nodeParseArgs({ args: [...argv], strict: false, allowPositionals: true, tokens: true });
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === 'positional') positionals.push(t.value);
    else if (t.kind === 'option') {
      const next = tokens[i + 1];
      if (t.value !== undefined) flags.set(t.name, t.value);
      else if (!booleans.includes(t.name) && t.rawName.startsWith('--') && next?.kind === 'positional' && next.index === t.index + 1) {
        flags.set(t.name, next.value);
        i++;
      } else flags.set(t.name, true);
    }
  }
  return { positionals, flags };
}

/** A command line the command cannot run: printed with its usage line, exit status 2. */
export class UsageError extends NetbootError {
  constructor(readonly spec: CommandSpec | null, message: string) {
    super('USAGE', message);
  }
}

export const USAGE_EXIT = 2;

export function optionsOf(spec: CommandSpec): Options {
  return { ...spec.options, ...GLOBAL_OPTIONS };
}

/** Parses `argv` (everything after `netboot`, without the command's own words) for a leaf command. */
export function parseCommandArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const options = optionsOf(spec);
  let parsed: ReturnType<typeof nodeParseArgs>;
  try {
    parsed = nodeParseArgs({
      args: [...argv],
      options: Object.fromEntries(Object.entries(options).map(([name, o]) => [name, { type: o.type, ...(o.short === undefined ? {} : { short: o.short }) }])),
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new UsageError(spec, parseProblem(err, options));
  }
  const flags = new Map<string, string | true>();
  for (const [name, v] of Object.entries(parsed.values)) {
    if (typeof v === 'string') flags.set(name, v);
    else if (v === true) flags.set(name, true);
  }
  const words = spec.name.split(' ').length - 1; // the subcommand's own name is positional 0
  const positionals = parsed.positionals;
  if (!flags.has('help')) {
    const [min, max] = spec.arity ?? [0, 0];
    const given = positionals.length - words;
    if (given > max) throw new UsageError(spec, `unexpected argument: ${positionals[words + max]}`);
    if (given < min) throw new UsageError(spec, `missing argument${spec.args === undefined ? '' : ` (${spec.args})`}`);
  }
  return { positionals, flags };
}

/** parseArgs's error, said shortly, with a suggestion for a near miss. */
function parseProblem(err: unknown, options: Options): string {
  const e = err as { code?: string; message?: string };
  const quoted = /'([^']*)'/.exec(e.message ?? '')?.[1] ?? '';
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const hint = suggestOption(quoted, options);
    return `unknown option ${quoted}${hint === null ? '' : ` (did you mean ${hint}?)`}`;
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const flag = quoted.split(' ')[0]!;
    const name = flag.replace(/^-+/, '');
    const o = options[name] ?? Object.entries(options).find(([, x]) => x.short === name)?.[1];
    if (o?.type === 'boolean') return `option ${flag} takes no value`;
    return `option ${flag} needs a value${o?.value === undefined ? '' : ` (${flag} ${o.value})`}`;
  }
  return e.message ?? String(err);
}

/** `--jsno` → `--json`; `-j` → `--json` (the one long option that starts with that letter). */
export function suggestOption(given: string, options: Options): string | null {
  const names = Object.keys(options);
  if (/^-[^-]$/.test(given)) {
    const starts = names.filter((n) => n.startsWith(given[1]!));
    return starts.length === 1 ? `--${starts[0]}` : null;
  }
  const name = given.replace(/^-+/, '').split('=')[0]!;
  const hit = suggest(name, names);
  return hit === null ? null : `--${hit}`;
}

// ---- usage and help -----------------------------------------------------------------------------

const WIDTH = 80;

function optionUsage(name: string, o: OptionSpec): string {
  const flag = `--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
  return o.required === true ? flag : `[${flag}]`;
}

/**
 * Its usage lines, each starting `netboot …` (a synopsis line that starts with a space continues
 * the one before), wrapped to fit 80 columns after a 2-space indent.
 */
export function usageLines(spec: CommandSpec): string[] {
  if (spec.synopsis !== undefined) return spec.synopsis.map((s) => (s.startsWith(' ') ? s : `netboot ${s}`));
  if (spec.subcommands !== undefined) {
    return Object.values(spec.subcommands).flatMap((s) => usageLines(s));
  }
  const opts = Object.entries(spec.options ?? {}).map(([n, o]) => optionUsage(n, o));
  const head = ['netboot', spec.name, spec.args].filter((x) => x !== undefined && x !== '').join(' ');
  // Options wrap as whole `[--flag VALUE]` units under the command's first option.
  const lines = [head];
  for (const o of opts) {
    const last = lines[lines.length - 1]!;
    if (last.length + 1 + o.length > WIDTH - 2 && last.trim() !== '') lines.push(' '.repeat(Math.min(head.length + 1, 24)) + o);
    else lines[lines.length - 1] = `${last} ${o}`;
  }
  return lines;
}

/** `usage: …` as printed under a usage error. */
export function usageText(spec: CommandSpec): string {
  const lines = usageLines(spec);
  return lines.length === 1 ? `usage: ${lines[0]}` : ['usage:', ...lines.map((l) => `  ${l}`)].join('\n');
}

/** Word-wraps `text` to `width`, continuation lines indented by `indent` spaces. */
export function wrap(text: string, width: number, indent = 0): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      out.push(line);
      line = ' '.repeat(indent) + word;
    } else {
      line = line === '' ? (out.length === 0 ? word : ' '.repeat(indent) + word) : `${line} ${word}`;
    }
  }
  if (line !== '') out.push(line);
  return out.length === 0 ? [''] : out;
}

/** Rows of [left, right] as an aligned two-column list, the right column wrapped to 80 columns. */
export function twoColumns(rows: ReadonlyArray<readonly [string, string]>, indent = 2, maxLeft = 28): string[] {
  const left = Math.min(maxLeft, Math.max(...rows.map(([l]) => l.length)));
  const out: string[] = [];
  for (const [l, r] of rows) {
    const pad = ' '.repeat(indent);
    const col = indent + left + 2;
    if (l.length > left) {
      out.push(pad + l);
      out.push(...wrap(r, WIDTH - col).map((x) => ' '.repeat(col) + x.trimStart()));
      continue;
    }
    const wrapped = wrap(r, WIDTH - col);
    out.push(`${pad}${l.padEnd(left)}  ${wrapped[0]}`);
    for (const x of wrapped.slice(1)) out.push(' '.repeat(col) + x.trimStart());
  }
  return out;
}

function optionRows(options: Options): Array<[string, string]> {
  return Object.entries(options).map(([name, o]) => [
    `${o.short === undefined ? '' : `-${o.short}, `}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`,
    o.help,
  ]);
}

/** The full help of one command or subcommand (printed on stdout for -h/--help). */
export function helpText(spec: CommandSpec): string {
  const out: string[] = [];
  out.push(usageText(spec));
  out.push('', ...wrap(`${spec.summary[0]!.toUpperCase()}${spec.summary.slice(1)}.`, WIDTH));
  for (const p of spec.description ?? []) out.push('', ...wrap(p, WIDTH));
  if (spec.subcommands !== undefined) {
    out.push('', 'subcommands:');
    out.push(...twoColumns(Object.values(spec.subcommands).map((s) => [`${s.name.split(' ').slice(1).join(' ')}${s.args === undefined ? '' : ` ${s.args}`}`, s.summary])));
    out.push('', `Run \`netboot ${spec.name} SUBCOMMAND --help\` for its options.`);
    out.push('', 'options:', ...twoColumns(optionRows(GLOBAL_OPTIONS)));
  } else {
    out.push('', 'options:', ...twoColumns(optionRows(optionsOf(spec))));
  }
  return out.join('\n');
}
