// The spec of `netboot config` (its command lives in config-command.ts).
import type { CommandSpec } from './args.ts';

export const configSpec: CommandSpec = {
  name: 'config',
  summary: 'the config file',
  subcommands: {
    check: {
      name: 'config check',
      summary: 'validate a config file; print the effective config',
      args: '[FILE]',
      arity: [0, 1],
      description: ['FILE defaults to the config the other commands use (--config, $NETBOOT_CONFIG, /etc/netboot/netboot.toml, or the checkout\'s config/default.toml). Every problem is listed at once; exit status 1 when there is any.'],
    },
    doc: { name: 'config doc', summary: 'print the table of every config key (Markdown)' },
  },
};
