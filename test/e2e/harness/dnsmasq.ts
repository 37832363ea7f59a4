// Debian's dnsmasq in two roles. The site's ordinary DHCP server: hands out addresses only (no PXE
// options, so every boot decision is the PXE server's), does not ping before offering (its
// default adds about 3 s), and sends IPv6 router advertisements (ra-only) so iPXE does not wait
// for IPv6. And, for the benchmark only, the reference proxyDHCP + TFTP server.
import { join } from 'node:path';
import type { Cleanup } from './cleanup.ts';
import { DHCP_RANGE, IPV6_PREFIX, SUBNET, type Lan } from './network.ts';
import { Running, inNamespace } from './processes.ts';

const COMMON = ['--keep-in-foreground', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--interface=eth0', '--bind-interfaces', '--user=root', '--log-dhcp'];

/** `extraArgs`: e.g. ranges for relayed client subnets, or a second interface. */
export async function startDhcpServer(lan: Lan, dir: string, cleanup: Cleanup, extraArgs: readonly string[] = []): Promise<Running> {
  const args = [
    ...COMMON,
    `--dhcp-range=${DHCP_RANGE[0]},${DHCP_RANGE[1]},255.255.255.0,1h`,
    ...extraArgs,
    '--no-ping',
    '--enable-ra', `--dhcp-range=${IPV6_PREFIX},ra-only`,
    `--dhcp-leasefile=${join(dir, 'dhcp.leases')}`, `--pid-file=${join(dir, 'dhcp.pid')}`,
  ];
  const [command, full] = inNamespace(lan.dhcp, 'dnsmasq', args);
  const p = new Running('dnsmasq (DHCP)', command, full, join(dir, 'dnsmasq-dhcp.log'), cleanup);
  // With one interface dnsmasq says so; with several it lists its ranges once the sockets are bound.
  await p.waitFor(extraArgs.some((a) => a.startsWith('--interface=')) ? /DHCP, IP range 10\.91\.0\./ : /DHCP, sockets bound exclusively to interface eth0/, 10000);
  return p;
}

/**
 * dnsmasq as proxyDHCP and TFTP server on the server side of the LAN: iPXE clients (option 175)
 * are offered `ipxeFile` from `tftpRoot` through a PXE service (dnsmasq's proxy mode answers
 * nothing without one), which iPXE fetches after the 4011 exchange.
 */
export async function startDnsmasqProxy(lan: Lan, tftpRoot: string, ipxeFile: string, dir: string, cleanup: Cleanup): Promise<Running> {
  const args = [
    ...COMMON,
    `--dhcp-range=${SUBNET}.0,proxy`,
    '--dhcp-match=set:ipxe,175',
    `--pxe-service=tag:ipxe,x86PC,netboot bench,${ipxeFile}`,
    '--enable-tftp', `--tftp-root=${tftpRoot}`,
    `--dhcp-leasefile=${join(dir, 'proxy.leases')}`, `--pid-file=${join(dir, 'proxy.pid')}`,
  ];
  const [command, full] = inNamespace(lan.srv, 'dnsmasq', args);
  const p = new Running('dnsmasq (proxy)', command, full, join(dir, 'dnsmasq-proxy.log'), cleanup);
  await p.waitFor(/TFTP root is/, 10000);
  return p;
}
