// `netboot run [SERVICE...]`: one service in this process, or several under the supervisor, each
// in its own child process (default: all four). Services: interface, signal, server, mtftp.
// Logs are readable lines on a terminal and JSON lines otherwise (--log-format to choose); a
// second run on the same data folder refuses at once, naming the pid that runs it.
import { existsSync, fstatSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configWarnings, loadConfig, type Config } from '../platform/runtime/config.ts';
import { SERVICES, type ServiceName } from '../platform/local/control.ts';
import { ConfigError, NetbootError } from '../platform/runtime/errors.ts';
import { keyFileProblems } from '../platform/trust/key-check.ts';
import { runUntilSignal } from '../platform/runtime/lifecycle.ts';
import { createLogger, defaultLogFormat, LOG_FORMATS, textSink, type LogFormat, type Logger, type LogSink, type TextOptions } from '../platform/runtime/logger.ts';
import { notifyReady } from '../platform/runtime/sd-notify.ts';
import { acquireAll, RunLock } from '../services/supervisor/run-lock.ts';
import { controlProbe, START_ORDER, SUPERVISOR_PID_ENV, supervisedServices } from '../services/supervisor/service-commands.ts';
import { Supervisor } from '../services/supervisor/supervisor.ts';
import { stringFlag, UsageError, type CommandSpec } from './args.ts';
import { configPathFor, type CliContext, type Command } from './context.ts';

export const runSpec: CommandSpec = {
  name: 'run',
  summary: 'run the services (default all four, supervised)',
  args: '[SERVICE...]',
  arity: [0, 4],
  options: {
    'log-format': { type: 'string', value: 'text|json', help: 'log lines: text (readable; the default on a terminal) or json (the default when piped or under journald)' },
  },
  description: [
    'SERVICE is interface, signal, server or mtftp. One service runs in this process; several run as supervised child processes, started in order and restarted when they exit. SIGTERM or Ctrl-C stops them in reverse order.',
    'Only one instance of a service runs per data folder: a second `netboot run` refuses at once with the pid of the one running.',
  ],
};

type ServiceMain = (config: Config, log: Logger) => Promise<number>;

export const runCommand: Command = async (ctx) => {
  const asked = ctx.args.positionals;
  const unknown = asked.filter((n) => !(SERVICES as readonly string[]).includes(n));
  if (unknown.length > 0) throw new UsageError(runSpec, `unknown service: ${unknown.join(', ')} (services: ${START_ORDER.join(', ')})`);
  const format = logFormat(ctx);
  const names = asked.length === 0 ? [...START_ORDER] : [...new Set(asked as ServiceName[])];
  const configPath = resolve(configPathFor(ctx));
  const config = loadConfig(configPath);
  // The Interface reads the key files; refuse here, before anything starts, rather than in a restart loop.
  const keyProblems = names.includes('interface') ? keyFileProblems(config) : [];
  if (keyProblems.length > 0) throw new ConfigError(configPath, keyProblems);
  const tty = process.stdout.isTTY === true;
  const text: TextOptions = { width: () => (tty ? process.stdout.columns || 80 : 80), color: tty && (ctx.env.NO_COLOR ?? '') === '' };
  if (names.length === 1) return runOne(names[0]!, config, format, text, ctx.env);
  return runSupervised(names, configPath, config, ctx, format, text);
};

function logFormat(ctx: CliContext): LogFormat {
  const given = stringFlag(ctx.args, 'log-format');
  if (given === undefined) return defaultLogFormat(process.stdout, ctx.env, (fd) => fstatSync(fd));
  if (!(LOG_FORMATS as readonly string[]).includes(given)) throw new UsageError(runSpec, `--log-format is text or json, not ${given}`);
  return given as LogFormat;
}

/** Holds `locks` until this process exits, however it exits. */
function holdUntilExit(locks: readonly RunLock[]): void {
  process.once('exit', () => {
    for (const l of locks) l.release();
  });
}

async function runOne(name: ServiceName, config: Config, format: LogFormat, text: TextOptions, env: NodeJS.ProcessEnv): Promise<number> {
  // Under our supervisor, the lock is the supervisor's (taken for us); otherwise it is ours.
  const parent = env[SUPERVISOR_PID_ENV] === String(process.ppid) ? process.ppid : undefined;
  const lock = RunLock.acquire(config.paths.data, name, process.pid, parent);
  if (lock !== null) holdUntilExit([lock]);
  const log = createLogger({ level: config.log.level, fields: { service: name }, format, text });
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
  try {
    return await main(config, log);
  } finally {
    lock?.release();
  }
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

async function runSupervised(names: readonly ServiceName[], configPath: string, config: Config, ctx: CliContext, format: LogFormat, text: TextOptions): Promise<number> {
  for (const name of names) serviceMainPath(name); // a missing service fails now, not in a restart loop
  const locks = acquireAll(config.paths.data, names);
  holdUntilExit(locks);
  const stdout: LogSink = { write: (line) => ctx.out(line.replace(/\n$/, '')) };
  const out = format === 'text' ? textSink(stdout, text) : stdout;
  const log = createLogger({ level: config.log.level, fields: { service: 'supervisor' }, sink: out });
  for (const w of configWarnings(config)) log.warn(`config: ${w}`);
  const supervisor = new Supervisor({
    services: supervisedServices(names, configPath, ctx.env),
    isServing: controlProbe(config),
    log,
    out,
    err: { write: (line) => ctx.err(line.replace(/\n$/, '')) },
    onAllServing: () => {
      log.info('all services serving', { services: names });
      void notifyReady(log, `serving: ${names.join(', ')}`, ctx.env);
    },
  });
  try {
    return await runUntilSignal('supervisor', [supervisor], log);
  } finally {
    for (const l of locks) l.release();
  }
}
