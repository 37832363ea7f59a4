// `netboot config check [FILE]`: validates a file and prints the effective config as JSON.
import { loadConfig } from '../platform/runtime/config.ts';
import { configPathFor, type Command } from './context.ts';

export const configCommand: Command = async (ctx) => {
  const [sub, file] = ctx.args.positionals;
  if (sub !== 'check') {
    ctx.err('usage: netboot config check [FILE]');
    return 2;
  }
  const path = file ?? configPathFor(ctx);
  const config = loadConfig(path);
  ctx.out(JSON.stringify(config, null, 2));
  ctx.err(`${path}: valid`);
  return 0;
};
