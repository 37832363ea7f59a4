// A private Ethernet segment made of network namespaces, created for one test file and always
// deleted: `lan` holds a bridge and the guests' taps; `srv` holds the PXE server side (netboot,
// or dnsmasq in proxy mode for the benchmark) on a veth; `dhcp` holds the site's ordinary DHCP
// server (dnsmasq handing out addresses) on another veth. Nothing is created in the caller's
// namespace. IPv4 only, except the DHCP side's address that lets dnsmasq send IPv6 router
// advertisements: without one on the link, iPXE waits about 13 s for IPv6 before it boots.
import { readdirSync } from 'node:fs';
import type { Cleanup } from './cleanup.ts';
import { deleteNamespaceSync, signalPid } from './cleanup.ts';
import { runCommand } from './processes.ts';

export const SUBNET = '10.91.0';
export const SERVER_ADDRESS = `${SUBNET}.1`;
export const DHCP_ADDRESS = `${SUBNET}.2`;
export const DHCP_RANGE = [`${SUBNET}.100`, `${SUBNET}.199`] as const;
export const IPV6_PREFIX = 'fd00:91::';
export const DHCP_ADDRESS6 = `${IPV6_PREFIX}2`;

const PREFIX = 'nbe2e';
let counter = 0;

export async function ip(...args: string[]): Promise<void> {
  await runCommand('ip', args, 10000);
}

/** Writes net sysctls of a namespace (`name=value`), through /proc as seen from inside it. */
export async function sysctl(ns: string, ...settings: string[]): Promise<void> {
  const script = settings.map((s) => {
    const [name, value] = s.split('=');
    return `echo ${value} > /proc/sys/${name!.replace(/\./g, '/')}`;
  }).join(' && ');
  await runCommand('ip', ['netns', 'exec', ns, 'sh', '-c', script], 10000);
}

export class Lan {
  private taps = 0;

  private constructor(readonly lan: string, readonly srv: string, readonly dhcp: string) {}

  /** Creates the three namespaces and their links; registers their deletion first. */
  static async create(cleanup: Cleanup): Promise<Lan> {
    if (process.getuid?.() !== 0) throw new Error('the end-to-end tests need root: they create network namespaces, veths, a bridge and taps');
    await removeStale();
    const base = `${PREFIX}${process.pid}x${counter++}`;
    const l = new Lan(`${base}-lan`, `${base}-srv`, `${base}-dhcp`);
    for (const ns of [l.lan, l.srv, l.dhcp]) {
      cleanup.add(`delete namespace ${ns}`, () => runCommand('ip', ['netns', 'del', ns], 10000, true).then(() => undefined), () => deleteNamespaceSync(ns));
      await ip('netns', 'add', ns);
      await sysctl(ns, 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    await ip('-n', l.lan, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', l.lan, 'link', 'set', 'br0', 'up');
    await ip('-n', l.lan, 'link', 'add', 'to-srv', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', l.srv);
    await ip('-n', l.lan, 'link', 'add', 'to-dhcp', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', l.dhcp);
    for (const port of ['to-srv', 'to-dhcp']) await ip('-n', l.lan, 'link', 'set', port, 'master', 'br0', 'up');
    await ip('-n', l.srv, 'addr', 'add', `${SERVER_ADDRESS}/24`, 'dev', 'eth0');
    await ip('-n', l.srv, 'link', 'set', 'eth0', 'up');
    // Broadcasts to 255.255.255.255 need a route (ENETUNREACH otherwise); a site server has one.
    await ip('-n', l.srv, 'route', 'add', 'default', 'dev', 'eth0');
    await ip('-n', l.dhcp, 'addr', 'add', `${DHCP_ADDRESS}/24`, 'dev', 'eth0');
    await sysctl(l.dhcp, 'net.ipv6.conf.eth0.disable_ipv6=0');
    await ip('-n', l.dhcp, 'addr', 'add', `${DHCP_ADDRESS6}/64`, 'dev', 'eth0', 'nodad');
    await ip('-n', l.dhcp, 'link', 'set', 'eth0', 'up');
    return l;
  }

  /** A new tap on the bridge for one guest. */
  async addTap(): Promise<string> {
    const tap = `tap${this.taps++}`;
    await ip('-n', this.lan, 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
    await ip('-n', this.lan, 'link', 'set', tap, 'master', 'br0', 'up');
    return tap;
  }
}

/**
 * Namespaces a crashed earlier run left behind (their owner pid is gone): the processes that run
 * inside them were started by that run (QEMU, dnsmasq, netboot), so they are killed too.
 */
async function removeStale(): Promise<void> {
  let names: string[];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return;
  }
  for (const name of names) {
    const m = new RegExp(`^${PREFIX}(\\d+)x\\d+-`).exec(name);
    if (m === null || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    const pids = await runCommand('ip', ['netns', 'pids', name], 10000, true);
    for (const pid of pids.stdout.split(/\s+/).filter((p) => /^\d+$/.test(p))) signalPid(Number(pid), 'SIGKILL');
    await runCommand('ip', ['netns', 'del', name], 10000, true);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
