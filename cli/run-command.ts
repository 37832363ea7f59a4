// `netboot run [SERVICE...]`: one service in this process, or several under the supervisor, each
// in its own child process (default: all four). Services: interface, signal, server, mtftp.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configPathFrom, configWarnings, loadConfig, type Config } from '../platform/runtime/config.ts';
import { SERVICES, type ServiceName } from '../platform/local/control.ts';
import { ConfigError, NetbootError } from '../platform/runtime/errors.ts';
import { keyFileProblems } from '../platform/trust/key-check.ts';
import { runUntilSignal } from '../platform/runtime/lifecycle.ts';
import { createLogger, type Logger } from '../platform/runtime/logger.ts';
import { notifyReady } from '../platform/runtime/sd-notify.ts';
import { controlProbe, START_ORDER, supervisedServices } from '../services/supervisor/service-commands.ts';
import { Supervisor } from '../services/supervisor/supervisor.ts';
import { stringFlag } from './args.ts';
import type { CliContext, Command } from './context.ts';

type ServiceMain = (config: Config, log: Logger) => Promise<number>;

export const runCommand: Command = async (ctx) => {
  const asked = ctx.args.positionals;
  const unknown = asked.filter((n) => !(SERVICES as readonly string[]).includes(n));
  if (unknown.length > 0) {
    ctx.err(`unknown service: ${unknown.join(', ')} (services: ${START_ORDER.join(', ')})`);
    return 2;
  }
  const names = asked.length === 0 ? [...START_ORDER] : [...new Set(asked as ServiceName[])];
  const configPath = resolve(configPathFrom(stringFlag(ctx.args, 'config'), ctx.env));
  const config = loadConfig(configPath);
  // The Interface reads the key files; refuse here, before anything starts, rather than in a restart loop.
  const keyProblems = names.includes('interface') ? keyFileProblems(config) : [];
  if (keyProblems.length > 0) throw new ConfigError(configPath, keyProblems);
  if (names.length === 1) return runOne(names[0]!, config);
  return runSupervised(names, configPath, config, ctx);
};

async function runOne(name: ServiceName, config: Config): Promise<number> {
  const log = createLogger({ level: config.log.level, fields: { service: name } });
  const main = await loadService(name);
  // Under the supervisor, it has said these already.
  if (process.channel === undefined) for (const w of configWarnings(config)) log.warn(`config: ${w}`);
  if (process.channel !== undefined) {
    // Started by the supervisor: if it goes away (even by SIGKILL), stop cleanly rather than linger.
    process.channel.unref();
    process.once('disconnect', () => {
      log.warn('supervisor gone; stopping');
      process.kill(process.pid, 'SIGTERM');
    });
  }
  return main(config, log);
}

function serviceMainPath(name: ServiceName): string {
  const path = fileURLToPath(new URL(`../services/${name}/main.ts`, import.meta.url));
  if (!existsSync(path)) throw new NetbootError('SERVICE_MISSING', `service ${name} is not available: ${path} does not exist`);
  return path;
}

async function loadService(name: ServiceName): Promise<ServiceMain> {
  const path = serviceMainPath(name);
  const mod = (await import(path)) as { main?: unknown };
  if (typeof mod.main !== 'function') throw new NetbootError('SERVICE_MISSING', `service ${name}: ${path} does not export main(config, log)`);
  return mod.main as ServiceMain;
}

async function runSupervised(names: readonly ServiceName[], configPath: string, config: Config, ctx: CliContext): Promise<number> {
  const log = createLogger({ level: config.log.level, fields: { service: 'supervisor' } });
  for (const name of names) serviceMainPath(name); // a missing service fails now, not in a restart loop
  for (const w of configWarnings(config)) log.warn(`config: ${w}`);
  const supervisor = new Supervisor({
    services: supervisedServices(names, configPath, ctx.env),
    isServing: controlProbe(config),
    log,
    out: { write: (line) => ctx.out(line.replace(/\n$/, '')) },
    err: { write: (line) => ctx.err(line.replace(/\n$/, '')) },
    onAllServing: () => {
      log.info('all services serving', { services: names });
      void notifyReady(log, `serving: ${names.join(', ')}`, ctx.env);
    },
  });
  return runUntilSignal('supervisor', [supervisor], log);
}
