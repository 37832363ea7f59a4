// How the supervisor starts the real services: each as `netboot run <name>` in its own Node
// process (through tsx's loader, as bin/netboot does), and how it knows one serves: its control
// socket answers GET /status with state 'serving' and the child's own pid (not a stale socket's
// or another instance's).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../platform/runtime/config.ts';
import { controlCall, controlSocketPath, type ServiceName } from '../../platform/local/control.ts';
import { NetbootError } from '../../platform/runtime/errors.ts';
import type { SupervisedService } from './supervisor.ts';
import type { ChildCommand } from './service-child.ts';

/** Start order; the supervisor stops them in reverse. */
export const START_ORDER: readonly ServiceName[] = ['interface', 'signal', 'server', 'mtftp'];

/** MTFTP serves only while the PXE server does (the issue: "it stops whenever the server stops"). */
export const BOUND_TO: Readonly<Partial<Record<ServiceName, ServiceName>>> = { mtftp: 'server' };

export function tsxLoaderPath(): string {
  const path = fileURLToPath(new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url));
  if (!existsSync(path)) throw new NetbootError('TSX_MISSING', `tsx's loader not found at ${path}: run npm ci in the checkout`);
  return path;
}

export function cliMainPath(): string {
  return fileURLToPath(new URL('../../cli/main.ts', import.meta.url));
}

/** Set in a child's environment to the supervisor's pid: the run lock it finds is its supervisor's. */
export const SUPERVISOR_PID_ENV = 'NETBOOT_SUPERVISOR_PID';

export function serviceCommand(name: ServiceName, configPath: string, env: NodeJS.ProcessEnv): ChildCommand {
  const childEnv: NodeJS.ProcessEnv = { ...env, [SUPERVISOR_PID_ENV]: String(process.pid) };
  delete childEnv.NOTIFY_SOCKET; // readiness to systemd is the supervisor's to report, not a child's
  // Children always log JSON lines; the supervisor shows them as text when text is chosen.
  return { command: process.execPath, args: ['--import', tsxLoaderPath(), cliMainPath(), 'run', name, '--config', configPath, '--log-format', 'json'], env: childEnv };
}

/** The supervised set for `names`, in start order whatever order they were given in. */
export function supervisedServices(names: readonly ServiceName[], configPath: string, env: NodeJS.ProcessEnv): SupervisedService[] {
  return START_ORDER.filter((n) => names.includes(n)).map((name) => {
    const boundTo = BOUND_TO[name];
    return { name, command: serviceCommand(name, configPath, env), ...(boundTo !== undefined && names.includes(boundTo) ? { boundTo } : {}) };
  });
}

export function controlProbe(config: Config): (name: string, pid: number) => Promise<boolean> {
  return async (name, pid) => {
    const st = await controlCall<{ state?: unknown; pid?: unknown }>(controlSocketPath(config.paths.data, name as ServiceName), 'GET', '/status', undefined, 1000);
    return st.state === 'serving' && st.pid === pid;
  };
}
