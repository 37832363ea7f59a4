// The `netboot` command. Each subcommand lives in its own module, loaded only when used.
import { errorMessage, NetbootError } from '../platform/runtime/errors.ts';
import { parseArgs } from './args.ts';
import type { Command, CliContext } from './context.ts';

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  explain: { summary: 'explain MAC [--arch A] [--ipxe] [--relay GIADDR]  what the PXE server offers this machine, and why', load: async () => (await import('./explain-command.ts')).explainCommand },
  package: { summary: 'package publish DIR --id ID --kind K | rm ID | verify ID | status [ID] [--watch]  hashed packages replicated between servers', load: async () => (await import('./package-command.ts')).packageCommand },
  peers: { summary: 'peers [--json]            each peer: connected, authenticated, queued jobs, last latency', load: async () => (await import('./peers-command.ts')).peersCommand },
  state: { summary: 'state [--json]            print the state the Interface holds', load: async () => (await import('./state-command.ts')).stateCommand },
  sbs: { summary: 'sbs validate FILE... | sbs send KIND ...  check SBS instruction files; write one into the SBS folder', load: async () => (await import('./sbs-command.ts')).sbsCommand },
  run: { summary: 'run [SERVICE...]          run services: one in this process, several (default all four) supervised', load: async () => (await import('./run-command.ts')).runCommand },
  status: { summary: 'status [--json]           each service\'s state, pid and ports', load: async () => (await import('./status-command.ts')).statusCommand },
  bootwiz: { summary: 'bootwiz build [ID] [--update] [--lock FILE]  build the LinuxPE preboot environment from Debian packages, publish and offer it', load: async () => (await import('./bootwiz-command.ts')).bootwizCommand },
  config: { summary: 'config check [FILE]       validate a config file and print the effective config', load: async () => (await import('./config-command.ts')).configCommand },
};

export function usage(): string {
  const lines = Object.values(COMMANDS).map((c) => `  netboot ${c.summary}`);
  return ['usage:', ...lines, '', 'Every command takes --config FILE (or NETBOOT_CONFIG); default /etc/netboot/netboot.toml.'].join('\n');
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [name, ...rest] = argv;
  const entry = name === undefined ? undefined : COMMANDS[name];
  if (entry === undefined) {
    process.stderr.write(`${name === undefined || name === 'help' || name === '--help' ? '' : `unknown command: ${name}\n`}${usage()}\n`);
    return name === undefined || name === 'help' || name === '--help' ? 0 : 2;
  }
  const ctx: CliContext = {
    args: parseArgs(rest, ['json', 'ipxe', 'help', 'watch', 'strict', 'force', 'update']),
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
    env,
  };
  try {
    return await (await entry.load())(ctx);
  } catch (err) {
    ctx.err(err instanceof NetbootError ? err.message : `netboot ${name}: ${errorMessage(err)}`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // `netboot state | head`: a reader that goes away is not an error. A running service whose
  // supervisor died loses its log output but stops in order (the supervisor's channel closes).
  const isService = process.argv[2] === 'run';
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (!isService) process.exit(0);
  });
  process.exitCode = await main(process.argv.slice(2));
}
