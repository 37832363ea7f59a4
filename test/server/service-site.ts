// The PXE server service on loopback, following a real Interface started in-process: the sites,
// instructions and client sockets the service tests share. Client packets are the ones real
// firmware sent (fixtures/*.pcap), or built like them.
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../platform/runtime/atomic-file.ts';
import { createMemoryLogger, type LogFields } from '../../platform/runtime/logger.ts';
import type { InterfaceService } from '../../services/interface/interface-service.ts';
import { buildInterface } from '../../services/interface/main.ts';
import type { ServerService, ServerServiceOptions } from '../../services/server/server-service.ts';
import { buildServer } from '../../services/server/main.ts';
import { decode, type DhcpPacket } from '../../protocols/dhcp/dhcp-codec.ts';
import { IO_PATHS, type IoPath } from '../../platform/runtime/config.ts';
import { makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';
import { ensureAddonBuilt } from '../helpers/native-build.ts';

let ids = 0;
const id = (): string => `22222222-3333-4444-8555-${String(++ids).padStart(12, '0')}`;
const issued = (): string => new Date(Date.now() - 1000).toISOString();

export const IMAGE = { id: 'lnx', name: 'Linux PE', arch: ['bios', 'efi-x64'], type: 'linux', kernel: 'lnx/vmlinuz', initrd: ['lnx/initrd.img'], cmdline: 'console=ttyS0' };

export interface Site {
  site: TestSite;
  iface: InterfaceService;
  server: ServerService;
  ifaceLog: ReturnType<typeof createMemoryLogger>;
  log: ReturnType<typeof createMemoryLogger>;
  drop(name: string, doc: object): void;
  stop(): Promise<void>;
}

/**
 * The DHCP sockets the service tests run on: NETBOOT_TEST_IO_PATH (io-paths.test.ts runs them
 * again on node:dgram), else the native addon, built first when it is missing or stale.
 */
export function testIoPath(): Exclude<IoPath, 'auto'> {
  const v = process.env.NETBOOT_TEST_IO_PATH ?? 'native';
  if (v === 'auto' || !(IO_PATHS as readonly string[]).includes(v)) throw new Error(`NETBOOT_TEST_IO_PATH: native or dgram, not ${v}`);
  if (v === 'native') ensureAddonBuilt('udp-batch', 'udp_batch.node');
  return v as Exclude<IoPath, 'auto'>;
}

/** A site with a management URL, so the Interface starts empty (no standalone seed). */
export async function startSite(before: (drop: Site['drop']) => void = () => {}, extraToml = '', options: ServerServiceOptions = {}): Promise<Site> {
  const io = testIoPath();
  const site = await makeTestSite(`[server]\nio_path = "${io}"\n[management]\nurl = "http://127.0.0.1:9"\n${extraToml}`, 'netboot-server');
  const drop: Site['drop'] = (name, doc) => writeFileAtomic(join(site.config.paths.sbs, name), JSON.stringify({ sbs: 1, id: id(), issued: issued(), ...doc }));
  mkdirSync(site.config.paths.sbs, { recursive: true });
  // Files present at start are read by the Interface's first scan: fewer live file-watch events,
  // which the Interface does not yet survive being stopped in the middle of (reported).
  before(drop);
  const ifaceLog = createMemoryLogger();
  const log = createMemoryLogger();
  const iface = buildInterface(site.config, ifaceLog);
  await iface.start();
  const server = buildServer(site.config, log, options);
  await server.start();
  if (options.loadNative === undefined && server.ioPath !== io) throw new Error(`the server runs on ${server.ioPath}, not ${io}`);
  const s: Site = {
    site, iface, server, ifaceLog, log, drop,
    stop: async () => {
      await s.server.stop();
      await settled(site);
      await s.iface.stop(); // the test may have replaced it
      site.cleanup();
    },
  };
  return s;
}

/** Waits until the Interface has archived every dropped file. */
export async function settled(site: TestSite): Promise<void> {
  await waitFor('SBS files archived', () => (readdirSync(site.config.paths.sbs).length === 0 ? true : undefined));
}

export function snapshots(clients: object[], extra: object = {}): (drop: Site['drop']) => void {
  return (drop) => {
    drop('1-config.sbs', { kind: 'config', config: { respond: 'all', unknown: { type: 'local' }, bootFiles: { bios: 'undionly.kpxe', 'efi-x64': 'snponly.efi' }, ...extra } });
    drop('2-clients.sbs', { kind: 'clients', clients });
    drop('3-images.sbs', { kind: 'images', images: [IMAGE] });
  };
}

export async function serving(s: Site): Promise<void> {
  await waitFor('the server to serve', () => (s.server.state === 'serving' ? true : undefined));
}

export class Client {
  private readonly replies: { packet: DhcpPacket; from: { address: string; port: number } }[] = [];
  private constructor(readonly socket: Socket) {
    socket.on('message', (msg, rinfo) => this.replies.push({ packet: decode(msg), from: { address: rinfo.address, port: rinfo.port } }));
  }
  static async open(): Promise<Client> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    return new Client(socket);
  }
  send(bytes: Buffer, port: number): void {
    this.socket.send(bytes, port, '127.0.0.1');
  }
  async reply(xid: number, what = 'a reply'): Promise<{ packet: DhcpPacket; from: { address: string; port: number } }> {
    return waitFor(what, () => {
      const i = this.replies.findIndex((r) => r.packet.xid === xid);
      return i === -1 ? undefined : this.replies.splice(i, 1)[0];
    }, 5000);
  }
  count(xid: number): number {
    return this.replies.filter((r) => r.packet.xid === xid).length;
  }
  close(): void {
    this.socket.close();
  }
}

export function withXid(bytes: Buffer, xid: number): Buffer {
  const b = Buffer.from(bytes);
  b.writeUInt32BE(xid, 4);
  return b;
}

export function logged(log: { records: LogFields[] }, msg: string, match: (r: LogFields) => boolean = () => true): LogFields | undefined {
  return log.records.find((r) => r.msg === msg && match(r));
}

