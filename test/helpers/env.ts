// Test helpers shared by every test: a private data folder with a real config file whose services
// bind port 0 (the kernel picks a free port at bind: no race with other tests for a port picked
// earlier). Tests ask a service for the port it got (`boundPort`, `ports`, its control status);
// our processes find each other's through <data>/run/<name>.port (platform/local/bound-port.ts).
// Nothing here stands in for product behaviour.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../platform/runtime/config.ts';

export interface TestSite {
  readonly dir: string;
  readonly configPath: string;
  readonly config: Config;
  cleanup(): void;
}

/**
 * Writes a config into a fresh temp folder (data, sbs, store and tftp root inside it) with every
 * port 0 on loopback. `extra` is more TOML: keys under a section the base already has (e.g.
 * `[interface]\nsettle_ms = 10`) are merged into it, other sections are appended; a test that
 * must write a port into a config before the service starts (a peer's address) gives it there.
 */
export async function makeTestSite(extra = '', name = 'netboot-test'): Promise<TestSite> {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const p = { dhcp: 0, proxy: 0, tftp: 0, iface: 0, signal: 0 };
  mkdirSync(join(dir, 'tftp'), { recursive: true });
  const toml = `
[paths]
data = "${dir}/data"
sbs = "${dir}/sbs"
sbs_store = "${dir}/sbsstore"
tftp_root = "${dir}/tftp"
[log]
level = "debug"
[server]
address = "127.0.0.1"
bind = "127.0.0.1"
dhcp_port = ${p.dhcp}
proxy_port = ${p.proxy}
[mtftp]
port = ${p.tftp}
bind = "127.0.0.1"
[http]
port = ${await freeTcpPort()}
bind = "127.0.0.1"
[interface]
port = ${p.iface}
bind = "127.0.0.1"
[signal]
port = ${p.signal}
[site]
id = "test-site"
[web]
port = 0
`;
  const configPath = join(dir, 'netboot.toml');
  writeFileSync(configPath, mergeToml(toml, extra));
  return { dir, configPath, config: loadConfig(configPath), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A TCP port free at the time of the call, closed again: racy (another process may take it before
 * it is bound). Only for a port that must be written into a config before its service starts
 * (a peer's address in another site's config); everything else binds port 0.
 */
export async function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** As freeTcpPort, for UDP: racy; prefer port 0. */
export async function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

/** Polls `check` every `intervalMs` until it returns a value other than undefined, or times out. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Merges `extra` into `base` section by section (tables only; arrays of tables are appended). */
function mergeToml(base: string, extra: string): string {
  let out = base;
  let appended = '';
  let section: string | null = null;
  let lines: string[] = [];
  const flush = (): void => {
    if (section === null) {
      appended += lines.join('\n') + '\n';
    } else if (!section.startsWith('[[') && out.includes(`\n${section}\n`)) {
      // Keys given in `extra` replace the base's keys of the same name in that section.
      const start = out.indexOf(`\n${section}\n`) + section.length + 2;
      const end = out.indexOf('\n[', start) < 0 ? out.length : out.indexOf('\n[', start) + 1;
      const keys = new Set(lines.map((l) => l.split('=')[0]!.trim()));
      const kept = out.slice(start, end).split('\n').filter((l) => !keys.has(l.split('=')[0]!.trim()));
      out = out.slice(0, start) + [...lines, ...kept].join('\n') + out.slice(end);
    } else {
      appended += `${section}\n${lines.join('\n')}\n`;
    }
    lines = [];
  };
  for (const line of extra.split('\n')) {
    if (/^\s*\[/.test(line)) {
      flush();
      section = line.trim();
    } else if (line.trim() !== '') {
      lines.push(line);
    }
  }
  flush();
  return out + appended;
}
