// `netboot config check [FILE]`: validates a file as every service would at start (keys, ranges,
// contradictions, port clashes, the key files and [server] interface on this host), prints the effective config as
// JSON in the file's own key names, and any warnings. `netboot config doc`: the key table.
import { networkInterfaces } from 'node:os';
import { configWarnings, keyProblem, loadConfig, type Config } from '../platform/runtime/config.ts';
import { configByFileKeys, keyTableMarkdown } from '../platform/runtime/config-doc.ts';
import { ConfigError } from '../platform/runtime/errors.ts';
import { keyFileProblems } from '../platform/trust/key-check.ts';
import { configPathFor, type Command } from './context.ts';

const USAGE = 'usage: netboot config check [FILE] | netboot config doc';

export const configCommand: Command = async (ctx) => {
  const [sub, file, ...extra] = ctx.args.positionals;
  if (sub === 'doc' && file === undefined) {
    ctx.out(keyTableMarkdown());
    return 0;
  }
  if (sub !== 'check' || extra.length > 0) {
    ctx.err(USAGE);
    return 2;
  }
  const path = file ?? configPathFor(ctx);
  const config = loadConfig(path);
  const hostProblems = [...interfaceProblems(config), ...keyFileProblems(config)];
  if (hostProblems.length > 0) throw new ConfigError(path, hostProblems);
  ctx.out(JSON.stringify(configByFileKeys(config), null, 2));
  const warnings = configWarnings(config);
  for (const w of warnings) ctx.err(`warning: ${w}`);
  ctx.err(`${path}: valid${warnings.length > 0 ? `, ${warnings.length} warning(s)` : ''}`);
  return 0;
};

/** What the PXE server would refuse at start on this host (services/server/server-address.ts). */
export function interfaceProblems(config: Config, interfaces = networkInterfaces()): string[] {
  const name = config.server.interface;
  if (name === null || (interfaces[name] ?? []).some((i) => i.family === 'IPv4')) return [];
  return [keyProblem('[server]', 'interface', interfaces[name] === undefined ? 'no such network interface on this host' : 'has no IPv4 address on this host', name)];
}
