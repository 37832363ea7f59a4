// What every CLI command receives: its arguments, output streams and environment, so commands
// can be run in-process by tests.
import { configPathFrom, loadConfig, type Config } from '../platform/runtime/config.ts';
import { stringFlag, type ParsedArgs } from './args.ts';

export interface CliContext {
  readonly args: ParsedArgs;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

export type Command = (ctx: CliContext) => Promise<number>;

export function configFor(ctx: CliContext): Config {
  return loadConfig(configPathFrom(stringFlag(ctx.args, 'config'), ctx.env));
}
