// What every CLI command receives: its arguments, output streams and environment, so commands
// can be run in-process by tests; and where its config comes from.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG_PATH, loadConfig, type Config } from '../platform/runtime/config.ts';
import { NetbootError } from '../platform/runtime/errors.ts';
import { stringFlag, type ParsedArgs } from './args.ts';

export interface CliContext {
  readonly args: ParsedArgs;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

export type Command = (ctx: CliContext) => Promise<number>;

/** The checkout this command runs from (the folder holding cli/), if it is one (has .git). */
export function checkoutRoot(): string | null {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  return existsSync(join(root, '.git')) ? root : null;
}

export interface ConfigSearch {
  /** `--config`, then NETBOOT_CONFIG, then the system file, then the checkout's default. */
  readonly flag?: string | undefined;
  readonly env: NodeJS.ProcessEnv;
  /** For tests: the system path and the checkout (null: not run from one). */
  readonly systemPath?: string;
  readonly checkout?: string | null;
}

/**
 * Which config file to use: `--config FILE`, else $NETBOOT_CONFIG, else /etc/netboot/netboot.toml
 * if it exists, else (run from a checkout) the checkout's config/default.toml, the one `npm start`
 * runs with. When none is found, says what was tried and what to pass.
 */
export function findConfigPath(search: ConfigSearch): string {
  if (search.flag !== undefined) return search.flag;
  const fromEnv = search.env.NETBOOT_CONFIG;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const system = search.systemPath ?? DEFAULT_CONFIG_PATH;
  if (existsSync(system)) return system;
  const checkout = search.checkout === undefined ? checkoutRoot() : search.checkout;
  const fallback = checkout === null ? null : join(checkout, 'config', 'default.toml');
  if (fallback !== null && existsSync(fallback)) return fallback;
  throw new NetbootError('CONFIG_NOT_FOUND', [
    'no config file found; tried:',
    '  --config FILE              (not given)',
    '  $NETBOOT_CONFIG            (not set)',
    `  ${system.padEnd(26)} (does not exist)`,
    fallback === null ? '  a checkout\'s config/default.toml (not run from a checkout)' : `  ${fallback} (does not exist)`,
    'pass --config FILE or set NETBOOT_CONFIG=FILE',
  ].join('\n'));
}

export function configPathFor(ctx: CliContext): string {
  return findConfigPath({ flag: stringFlag(ctx.args, 'config'), env: ctx.env });
}

export function configFor(ctx: CliContext): Config {
  return loadConfig(configPathFor(ctx));
}
