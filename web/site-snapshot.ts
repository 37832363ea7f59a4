// One view of the whole site server, gathered from every service's control socket (and the SBS
// store's rejected/ folder): what the status page and `netboot top` show. It only reads; a
// service that does not answer shows as not running, and the rest of the view is still there.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { PeerLinkStatus } from '../state/peer-outbox.ts';
import { request } from 'node:http';
import { join } from 'node:path';
import { controlCall, controlSocketPath, SERVICES, type ServiceName } from '../platform/local/control.ts';
import type { Config } from '../platform/runtime/config.ts';
import { errorMessage } from '../platform/runtime/errors.ts';

export interface ServiceView {
  readonly service: ServiceName;
  readonly running: boolean;
  readonly state: string;
  readonly pid: number | null;
  readonly ports: Record<string, unknown>;
  readonly warnings: readonly string[];
  readonly error?: string;
}

export interface MachineView {
  readonly mac: string;
  readonly atMs: number;
  readonly arch: string;
  readonly type: string;
  readonly answered: boolean;
  /** `answered: <file>` or the reason there was no offer (what `netboot explain` says). */
  readonly outcome: string;
  readonly relay: string | null;
  readonly server: string | null;
}

export interface PackageSiteView {
  readonly server: string;
  readonly state: string;
  readonly seq: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly reason: string | null;
}

export interface PackageView {
  readonly id: string;
  readonly kind: string;
  readonly seq: number;
  readonly sites: readonly PackageSiteView[];
  readonly updatedAt: string;
}

/** A peer as the Interface's `GET /peers` reports it. */
export type PeerView = PeerLinkStatus;

/** An imaging job (the Interface's `GET /jobs`, where this server has jobs). */
export interface JobItem {
  readonly jobId: string;
  readonly mac: string;
  readonly task: string;
  readonly state: string;
  readonly phase: string | null;
  readonly bytesDone: number | null;
  readonly bytesTotal: number | null;
  readonly reason: string | null;
}

export interface RejectedView {
  readonly file: string;
  readonly field: string;
  readonly problem: string;
  readonly at: string;
}

/** A few live figures read from the services' metrics (totals since each service started). */
export interface Figures {
  readonly pxeRequests: number;
  readonly pxeOffers: number;
  readonly tftpActive: number;
  readonly tftpTransfers: number;
  readonly tftpBytes: number;
  readonly sbsApplied: number;
  readonly sbsRejected: number;
}

export interface SiteSnapshot {
  readonly at: string;
  readonly site: string;
  readonly services: readonly ServiceView[];
  readonly machines: readonly MachineView[];
  readonly packages: readonly PackageView[];
  readonly peers: readonly PeerView[];
  readonly rejected: readonly RejectedView[];
  /** null: this server has no jobs feature (no `GET /jobs` on the Interface). */
  readonly jobs: readonly JobItem[] | null;
  readonly figures: Figures;
}

const CALL_MS = 2000;

export async function serviceViews(dataDir: string): Promise<ServiceView[]> {
  return Promise.all(SERVICES.map(async (service): Promise<ServiceView> => {
    try {
      const s = await controlCall<Record<string, unknown>>(controlSocketPath(dataDir, service), 'GET', '/status', undefined, CALL_MS);
      return {
        service, running: true, state: String(s.state ?? 'unknown'), pid: typeof s.pid === 'number' ? s.pid : null,
        ports: typeof s.ports === 'object' && s.ports !== null ? (s.ports as Record<string, unknown>) : {},
        warnings: Array.isArray(s.warnings) ? s.warnings.map(String) : [],
      };
    } catch (err) {
      return { service, running: false, state: 'not running', pid: null, ports: {}, warnings: [], error: errorMessage(err) };
    }
  }));
}

/** Machines the PXE server saw after `sinceMs` (epoch ms), newest first; [] when it does not answer. */
export async function recentMachines(dataDir: string, sinceMs = 0, limit = 50): Promise<MachineView[]> {
  try {
    const rows = await controlCall<MachineView[]>(controlSocketPath(dataDir, 'server'), 'GET', `/recent?since=${sinceMs}&limit=${limit}`, undefined, CALL_MS);
    return rows.map((r) => ({ mac: r.mac, atMs: r.atMs, arch: r.arch, type: r.type, answered: r.answered, outcome: r.outcome, relay: r.relay, server: r.server }));
  } catch {
    return [];
  }
}

interface PackagesReply {
  readonly packages: ReadonlyArray<{
    readonly ref: { readonly package: string; readonly kind: string; readonly seq: number; readonly updatedAt: string };
    readonly statuses: ReadonlyArray<{ server: string; state: string; seq: number; bytesDone: number; bytesTotal: number; reason: string | null }>;
  }>;
}

export async function packageViews(dataDir: string): Promise<PackageView[]> {
  try {
    const r = await controlCall<PackagesReply>(controlSocketPath(dataDir, 'interface'), 'GET', '/packages', undefined, CALL_MS);
    return r.packages.map((p) => ({
      id: p.ref.package, kind: p.ref.kind, seq: p.ref.seq, updatedAt: p.ref.updatedAt,
      sites: p.statuses.map((s) => ({ server: s.server, state: s.state, seq: s.seq, bytesDone: s.bytesDone, bytesTotal: s.bytesTotal, reason: s.reason })),
    }));
  } catch {
    return [];
  }
}

export async function peerViews(dataDir: string): Promise<PeerView[]> {
  try {
    const r = await controlCall<{ peers: PeerView[] }>(controlSocketPath(dataDir, 'interface'), 'GET', '/peers', undefined, CALL_MS);
    return (r?.peers ?? []).map((p) => ({ id: p.id, address: p.address, connected: p.connected, authenticated: p.authenticated, queued: p.queued, delivered: p.delivered, lastLatencyMs: p.lastLatencyMs, lastError: p.lastError }));
  } catch {
    return [];
  }
}

/** The Interface's jobs, newest first; null when it has no jobs route (or does not answer). */
export async function jobItems(dataDir: string): Promise<JobItem[] | null> {
  try {
    const r = await controlCall<{ jobs?: JobItem[] }>(controlSocketPath(dataDir, 'interface'), 'GET', '/jobs', undefined, CALL_MS);
    return (r.jobs ?? []).map((j) => ({ jobId: j.jobId, mac: j.mac, task: j.task, state: j.state, phase: j.phase ?? null, bytesDone: j.bytesDone ?? null, bytesTotal: j.bytesTotal ?? null, reason: j.reason ?? null }));
  } catch {
    return null;
  }
}

/** The newest `limit` files set aside in <sbs_store>/rejected/, from their .error.json. */
export function rejectedFiles(storeDir: string, limit = 20): RejectedView[] {
  const dir = join(storeDir, 'rejected');
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.error.json'));
  } catch {
    return [];
  }
  const dated = names.map((n) => {
    try {
      return { n, t: statSync(join(dir, n)).mtimeMs };
    } catch {
      return { n, t: 0 };
    }
  }).sort((a, b) => b.t - a.t).slice(0, limit);
  const out: RejectedView[] = [];
  for (const { n } of dated) {
    try {
      const r = JSON.parse(readFileSync(join(dir, n), 'utf8')) as Record<string, unknown>;
      out.push({ file: String(r.file ?? n.slice(0, -11)), field: String(r.field ?? ''), problem: String(r.problem ?? ''), at: String(r.rejectedAt ?? '') });
    } catch {
      // half-written or removed: left for the next look
    }
  }
  return out;
}

/** GET `path` on a control socket as text (the metrics exposition); throws when nobody answers. */
export function controlText(socketPath: string, path: string, timeoutMs = CALL_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: 'GET', path, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ((res.statusCode ?? 500) === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`${socketPath}: status ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Every service's exposition that answers, by service. */
export async function serviceMetrics(dataDir: string): Promise<Array<{ service: ServiceName; text: string | null }>> {
  return Promise.all(SERVICES.map(async (service) => {
    try {
      return { service, text: await controlText(controlSocketPath(dataDir, service), '/metrics') };
    } catch {
      return { service, text: null };
    }
  }));
}

/** Sums of samples by metric name (every label set), from a text exposition. */
export function sumSamples(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{.*\})? (\S+)/.exec(line);
    if (m === null) continue;
    const v = Number(m[2]);
    if (Number.isFinite(v)) sums.set(m[1]!, (sums.get(m[1]!) ?? 0) + v);
  }
  return sums;
}

export function figuresFrom(texts: readonly (string | null)[], offers: number): Figures {
  const sums = sumSamples(texts.filter((t) => t !== null).join('\n'));
  const n = (name: string): number => sums.get(name) ?? 0;
  return {
    pxeRequests: n('netboot_pxe_requests_total'), pxeOffers: offers,
    tftpActive: n('netboot_tftp_active_transfers'), tftpTransfers: n('netboot_tftp_transfers_total'), tftpBytes: n('netboot_tftp_sent_bytes_total'),
    sbsApplied: n('netboot_sbs_files_applied_total'), sbsRejected: n('netboot_sbs_files_rejected_total'),
  };
}

/** Offers counted in an exposition: samples of the PXE counter with decision="offered". */
export function offersIn(text: string | null): number {
  if (text === null) return 0;
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('netboot_pxe_requests_total{') && line.includes('decision="offered"')) sum += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return sum;
}

export async function collectSnapshot(config: Config): Promise<SiteSnapshot> {
  const data = config.paths.data;
  const [services, machines, packages, peers, metrics, jobs] = await Promise.all([serviceViews(data), recentMachines(data), packageViews(data), peerViews(data), serviceMetrics(data), jobItems(data)]);
  const server = metrics.find((m) => m.service === 'server')?.text ?? null;
  return {
    at: new Date().toISOString(), site: config.site.id, services, machines, packages, peers,
    rejected: rejectedFiles(config.paths.sbsStore), jobs, figures: figuresFrom(metrics.map((m) => m.text), offersIn(server)),
  };
}
