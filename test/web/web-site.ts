// A whole site server for the web tests: `netboot run` (all four services, supervised, each in its
// own process) on a port-0 config, with a config and one known machine applied; PXE requests are
// the DISCOVER EDK2 sent (test/server/fixtures), with the MAC changed where asked; TFTP transfers
// are curl's (tftp://). The web address is read from <data>/run/web.json.
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../platform/runtime/atomic-file.ts';
import { controlCall, controlSocketPath } from '../../platform/local/control.ts';
import { makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';
import { spawnService, type ServiceProcess } from '../helpers/process.ts';
import { readPcapUdp } from '../server/pcap.ts';
import { webInfoPath, type WebInfo } from '../../web/web-server.ts';

const efi = readPcapUdp(join(import.meta.dirname, '../server/fixtures/efi-native-dnsmasq.pcap'));
/** EDK2's own PXE (efi-x64), 52:54:00:12:34:58. */
export const EDK2_DISCOVER = efi[0]!.payload;
export const KNOWN_MAC = '52:54:00:12:34:58';
export const BOOT_FILE = 'snponly.efi';

export interface WebSite {
  readonly site: TestSite;
  readonly run: ServiceProcess;
  readonly url: string;
  /** A DISCOVER on port 67 from `mac` (default: the known machine), with `xid`. */
  discover(xid: number, mac?: string): void;
  /** Fetches a file over TFTP with curl; resolves with its size. */
  tftpGet(file?: string): Promise<number>;
  stop(): Promise<void>;
}

let ids = 0;
const id = (): string => `33333333-3333-4444-8555-${String(++ids).padStart(12, '0')}`;

export async function startWebSite(extraToml = ''): Promise<WebSite> {
  const site = await makeTestSite(extraToml, 'netboot-web');
  mkdirSync(site.config.paths.sbs, { recursive: true });
  const drop = (name: string, doc: object): void => writeFileAtomic(join(site.config.paths.sbs, name), JSON.stringify({ sbs: 1, id: id(), issued: new Date(Date.now() - 1000).toISOString(), ...doc }));
  drop('1-config.sbs', { kind: 'config', config: { respond: 'all', unknown: { type: 'local' }, bootFiles: { bios: 'undionly.kpxe', 'efi-x64': BOOT_FILE } } });
  drop('2-clients.sbs', { kind: 'clients', clients: [{ mac: KNOWN_MAC, action: { type: 'wait' } }] });
  drop('3-images.sbs', { kind: 'images', images: [] });
  writeFileSync(join(site.config.paths.tftpRoot, BOOT_FILE), Buffer.alloc(256 * 1024, 0xa5));
  const run = spawnService([], site.configPath);
  const socket: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const stop = async (): Promise<void> => {
    socket.close();
    await run.kill();
    site.cleanup();
  };
  try {
    await waitFor('all services serving', () => (run.logs.some((l) => l.msg === 'all services serving') ? true : undefined), 120_000, 200);
    const info = await waitFor('run/web.json', () => {
      try {
        return JSON.parse(readFileSync(webInfoPath(site.config.paths.data), 'utf8')) as WebInfo;
      } catch {
        return undefined;
      }
    }, 30_000, 100);
    // Port 0 in the config: the ports the services got come from their status.
    const dhcpPort = (await controlCall<{ ports: { dhcp: number } }>(controlSocketPath(site.config.paths.data, 'server'), 'GET', '/status')).ports.dhcp;
    const tftpPort = (await controlCall<{ ports: { tftp: number } }>(controlSocketPath(site.config.paths.data, 'mtftp'), 'GET', '/status')).ports.tftp;
    return {
      site, run, url: info.url, stop,
      discover: (xid, mac = KNOWN_MAC) => {
        const b = Buffer.from(EDK2_DISCOVER);
        b.writeUInt32BE(xid, 4);
        Buffer.from(mac.split(':').map((h) => Number.parseInt(h, 16))).copy(b, 28);
        socket.send(b, dhcpPort, '127.0.0.1');
      },
      tftpGet: (file = BOOT_FILE) => new Promise((resolve, reject) => {
        execFile('curl', ['-sS', '--max-time', '60', '-o', '-', `tftp://127.0.0.1:${tftpPort}/${file}`], { encoding: 'buffer', maxBuffer: 64 << 20 }, (err, out) => (err ? reject(err) : resolve(out.length)));
      }),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The sum of the samples of `name` whose labels include `labels`, or 0. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
