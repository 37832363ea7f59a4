// Several site servers for replication tests: temp sites (makeTestSite) whose configs name each
// other as peers with a shared key file, run in-process (PortServer + PackageService, as the
// Interface composes them) or as real `netboot run interface` processes.
import type { SegmentRule } from '../../packages/segments.ts';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../platform/runtime/config.ts';
import { createMemoryLogger, type LogFields, type Logger } from '../../platform/runtime/logger.ts';
import { PortServer } from '../../services/interface/port-server.ts';
import type { PackageService } from '../../packages/package-service.ts';
import { buildPackages } from '../../packages/package-parts.ts';
import type { PackageStatus } from '../../packages/model.ts';
import { decodeManifestTop, partDigests, resolveManifest, type Manifest } from '../../packages/manifest.ts';
import { freeTcpPort, makeTestSite, waitFor, type TestSite } from '../helpers/env.ts';
import { httpAuthHeader, readKeyFile } from '../../platform/trust/peer-auth.ts';

export interface Site extends TestSite {
  readonly id: string;
  config: Config;
}

export interface SiteOptions {
  /** More TOML for every site (e.g. a [packages] section). */
  readonly extra?: string;
  /** More TOML for one site. */
  readonly extraFor?: (id: string) => string;
  /** Whom a site peers with (default: all the others). */
  readonly peersOf?: (id: string) => string[];
  /** The address a site uses for a peer (default: the peer's own port on loopback). */
  readonly address?: (from: string, to: string, port: number) => string;
}

/** Makes sites named `ids`, peering with each other, sharing one key file. */
export async function makeSites(ids: readonly string[], o: SiteOptions = {}): Promise<{ sites: Site[]; keyFile: string; cleanup(): void }> {
  const sites: Site[] = [];
  for (const id of ids) {
    // Picked ports, not 0: each site's config names the others' ports as peer addresses, written
    // before any of them starts (racy only if another process takes one meanwhile).
    const port = await freeTcpPort();
    const s = await makeTestSite(`[interface]\nport = ${port}\n${o.extra ?? ''}\n${o.extraFor?.(id) ?? ''}`, `netboot-pkg-${id}`);
    sites.push({ ...s, id, config: s.config });
  }
  const keyFile = join(sites[0]!.dir, 'site.key');
  writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  for (const s of sites) {
    const peers = (o.peersOf?.(s.id) ?? ids.filter((x) => x !== s.id))
      .map((pid) => {
        const port = sites.find((x) => x.id === pid)!.config.interface.port;
        return `[[peers]]\nid = "${pid}"\naddress = "${o.address?.(s.id, pid, port) ?? `127.0.0.1:${port}`}"\n`;
      })
      .join('');
    const text = readFileSync(s.configPath, 'utf8').replace('id = "test-site"', `id = "${s.id}"\nkey_file = "${keyFile}"`) + peers;
    writeFileSync(s.configPath, text);
    s.config = loadConfig(s.configPath);
  }
  return { sites, keyFile, cleanup: () => sites.forEach((s) => s.cleanup()) };
}

/** A package component running in this process the way the Interface runs it. */
export class InProcessNode {
  readonly log: Logger & { records: LogFields[] };
  private port: PortServer | null = null;
  svc: PackageService | null = null;

  constructor(readonly site: Site, private readonly storage: { segments?: SegmentRule } = {}) {
    this.log = createMemoryLogger('debug');
  }

  get id(): string {
    return this.site.id;
  }

  async start(): Promise<this> {
    this.port = new PortServer('127.0.0.1', this.site.config.interface.port, this.log);
    this.svc = buildPackages(this.site.config, this.log.child({ server: this.site.id }), this.port, {}, undefined, this.storage);
    await this.svc.start();
    await this.port.start();
    return this;
  }

  async stop(): Promise<void> {
    await this.svc?.stop();
    await this.port?.stop();
    this.svc = null;
    this.port = null;
  }

  get service(): PackageService {
    if (this.svc === null) throw new Error(`${this.id} not running`);
    return this.svc;
  }

  describe(id: string | null = null): Described {
    return this.service.describe(id) as Described;
  }

  status(pkg: string): PackageStatus | null {
    return this.describe().packages.find((p) => p.ref.package === pkg)?.statuses.find((s) => s.server === this.id) ?? null;
  }

  logged(msg: string): LogFields[] {
    return this.log.records.filter((r) => r.msg === msg);
  }
}

export interface Described {
  server: string;
  links: Array<{ peer: string; connected: boolean; rttMs: number | null }>;
  served: Record<string, { requests: number; chunks: number; bytes: number; rawBytes: number; manifests: number; manifestBytes: number }>;
  packages: Array<{ ref: { package: string; seq: number; digest: string | null; owner: string }; statuses: PackageStatus[]; path: string | null }>;
}

export async function waitReady(node: { status(pkg: string): PackageStatus | null; id: string }, pkg: string, digest: string, timeoutMs = 20_000): Promise<PackageStatus> {
  return waitFor(`${pkg} Ready at ${digest.slice(0, 12)} on ${node.id}`, () => {
    const s = node.status(pkg);
    return s !== null && s.state === 'ready' && s.digest === digest ? s : undefined;
  }, timeoutMs);
}

export function totalServed(nodes: readonly InProcessNode[]): { chunks: number; bytes: number } {
  let chunks = 0;
  let bytes = 0;
  for (const n of nodes) {
    for (const c of Object.values(n.describe().served)) {
      chunks += c.chunks;
      bytes += c.bytes;
    }
  }
  return { chunks, bytes };
}

/** A signed request to a server's package routes, as peer `as` holding `keyFile`'s key. */
export async function signedFetch(port: number, path: string, as: string, keyFile: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  const method = init.method ?? 'GET';
  const authorization = httpAuthHeader(readKeyFile(keyFile), as, method, path);
  return fetch(`http://127.0.0.1:${port}${path}`, { method, body: init.body, headers: { ...init.headers, authorization } });
}

/** A package's manifest as a peer gets it: the manifest, then its parts, each checked by digest. */
export async function fetchManifest(port: number, digest: string, as: string, keyFile: string): Promise<Manifest> {
  const get = async (d: string): Promise<Buffer> => Buffer.from(await (await signedFetch(port, `/pkg/manifests/${d}`, as, keyFile)).arrayBuffer());
  const top = decodeManifestTop(await get(digest));
  const parts = new Map<string, Buffer>();
  for (const d of partDigests(top)) parts.set(d, await get(d));
  return resolveManifest(top, (d) => parts.get(d) ?? null);
}
