// netboot as a site runs it: `bin/netboot run` (all four services, supervised) inside the server
// namespace with a config of its own; standard ports there (67, 4011, 69; 490 and 806 on that
// namespace's loopback), since the namespace is ours alone. The test talks to it as an
// administrator would: the `netboot` command, and the control sockets (files, so reachable from
// outside the namespace).
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlCall, controlSocketPath, type ServiceName } from '../../../platform/local/control.ts';
import type { Cleanup } from './cleanup.ts';
import { SERVER_ADDRESS, type Lan } from './network.ts';
import { Running, inNamespace, runCommand, sleep } from './processes.ts';

export const NETBOOT_BIN = fileURLToPath(new URL('../../../bin/netboot', import.meta.url));
const SERVICES: readonly ServiceName[] = ['interface', 'signal', 'server', 'mtftp'];

export interface SiteOptions {
  /** Management server base URL (reachable from the server namespace); none = standalone. */
  readonly managementUrl?: string;
  readonly siteId?: string;
  /** Default "debug": every decision is in the log for a post-mortem. */
  readonly logLevel?: 'debug' | 'info' | 'warn';
  /** The [server] section and what follows it (e.g. [[server.subnets]]); default: address 10.91.0.1. */
  readonly serverToml?: string;
  /** [interface] bind (default 127.0.0.1); the imaging agent in a guest needs the server's address or 0.0.0.0. */
  readonly interfaceBind?: string;
}

export interface ServiceStatus {
  readonly state: string;
  readonly pid: number;
  readonly [k: string]: unknown;
}

export interface Decision {
  readonly offer?: { readonly file: string; readonly stage: string; readonly reason: string };
  readonly none?: string;
}

export class NetbootSite {
  readonly configPath: string;
  readonly data: string;
  readonly sbs: string;
  readonly tftpRoot: string;
  private proc: Running | null = null;

  constructor(readonly lan: Lan, readonly dir: string, private readonly cleanup: Cleanup, options: SiteOptions = {}) {
    this.data = join(dir, 'data');
    this.sbs = join(dir, 'sbs');
    this.tftpRoot = join(dir, 'tftp');
    mkdirSync(this.tftpRoot, { recursive: true });
    this.configPath = join(dir, 'netboot.toml');
    const management = options.managementUrl === undefined ? '' : `\n[management]\nurl = "${options.managementUrl}"\ntimeout_ms = 3000\n`;
    writeFileSync(this.configPath, `# end-to-end test site
[paths]
data = "${this.data}"
sbs = "${this.sbs}"
sbs_store = "${join(dir, 'sbsstore')}"
tftp_root = "${this.tftpRoot}"

[log]
level = "${options.logLevel ?? 'debug'}"

${options.serverToml ?? `[server]\naddress = "${SERVER_ADDRESS}"\n`}
[interface]
bind = "${options.interfaceBind ?? '127.0.0.1'}"

[site]
id = "${options.siteId ?? 'e2e-site'}"
${management}`);
  }

  get supervisor(): Running {
    if (this.proc === null) throw new Error('netboot is not running');
    return this.proc;
  }

  /** `netboot run` (supervised) in the server namespace. */
  start(): Running {
    const [command, args] = inNamespace(this.lan.srv, NETBOOT_BIN, ['run', '--config', this.configPath]);
    this.proc = new Running('netboot run', command, args, join(this.dir, `netboot-run-${Date.now()}.log`), this.cleanup);
    return this.proc;
  }

  async stop(): Promise<void> {
    await this.proc?.stop(15000);
  }

  /** The `netboot` command against this site (run in the server namespace, as on the server). */
  cli(args: readonly string[], timeoutMs = 20000): Promise<{ code: number; stdout: string; stderr: string }> {
    const [command, full] = inNamespace(this.lan.srv, NETBOOT_BIN, [...args, '--config', this.configPath]);
    return runCommand(command, full, timeoutMs, true);
  }

  async status(service: ServiceName): Promise<ServiceStatus | null> {
    try {
      return await controlCall<ServiceStatus>(controlSocketPath(this.data, service), 'GET', '/status', undefined, 2000);
    } catch {
      return null;
    }
  }

  /** Waits until all four services answer `serving`; returns their statuses. */
  async waitServing(timeoutMs: number): Promise<Record<ServiceName, ServiceStatus>> {
    return poll('all four services serving', timeoutMs, async () => {
      const rows = await Promise.all(SERVICES.map((s) => this.status(s)));
      if (!rows.every((r) => r !== null && r.state === 'serving')) return undefined;
      return Object.fromEntries(SERVICES.map((s, i) => [s, rows[i]!])) as Record<ServiceName, ServiceStatus>;
    });
  }

  /** What the running server would offer this machine now (`netboot explain`'s question). */
  async explain(mac: string, arch: 'bios' | 'efi-x64', ipxe: boolean): Promise<Decision | null> {
    const q = new URLSearchParams({ mac, arch, ...(ipxe ? { ipxe: '1' } : {}) });
    try {
      return (await controlCall<{ decision: Decision }>(controlSocketPath(this.data, 'server'), 'GET', `/explain?${q}`, undefined, 2000)).decision;
    } catch {
      return null;
    }
  }

  /** Waits until the server's decision for this machine satisfies `ok` (state has propagated). */
  waitDecision(mac: string, arch: 'bios' | 'efi-x64', ipxe: boolean, ok: (d: Decision) => boolean, timeoutMs = 15000): Promise<Decision> {
    return poll(`the server's decision for ${mac} to change`, timeoutMs, async () => {
      const d = await this.explain(mac, arch, ipxe);
      return d !== null && ok(d) ? d : undefined;
    });
  }

  /** Instruction files still waiting in the SBS folder. */
  pendingSbs(): string[] {
    try {
      return readdirSync(this.sbs).filter((n) => n.toLowerCase().endsWith('.sbs'));
    } catch {
      return [];
    }
  }

  /** Log lines of the supervisor and its children (JSON), for diagnosis on failure. */
  logTail(lines = 60): string {
    return this.proc === null ? '' : this.proc.output.split('\n').slice(-lines).join('\n');
  }
}

/** Polls `check` every 100 ms until it returns a value, or throws after `timeoutMs`. */
export async function poll<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}
