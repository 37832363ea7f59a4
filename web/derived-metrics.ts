// Metrics the web server derives at scrape time from what the Interface reports (no hook on any
// path): whether each service answers, package states per site, sync progress, the age of the
// oldest version not Ready here, and the peer links. Labels: service, server (a site id from the
// config's peers), state (the five package states), peer (a configured peer id).
import { Counter, Gauge, Registry } from 'prom-client';
import type { ServiceName } from '../platform/local/control.ts';
import type { JobItem, PackageView, PeerView } from './site-snapshot.ts';

export interface DerivedInput {
  readonly site: string;
  readonly up: ReadonlyArray<{ service: ServiceName; up: boolean }>;
  readonly packages: readonly PackageView[] | null;
  readonly peers: readonly PeerView[] | null;
  /** null: no jobs feature on this server. */
  readonly jobs: readonly JobItem[] | null;
  readonly nowMs: number;
  /** The Interface's last seq and the last one the PXE server applied from its feed. */
  readonly feed: { readonly interfaceSeq: number | null; readonly serverSeq: number | null; readonly connected: boolean | null };
}

export async function derivedMetrics(input: DerivedInput): Promise<string> {
  const registers = [new Registry()];
  const up = new Gauge({ name: 'netboot_service_up', help: '1 when the service answers on its control socket, else 0', labelNames: ['service'] as const, registers });
  for (const s of input.up) up.labels(s.service).set(s.up ? 1 : 0);
  const { interfaceSeq, serverSeq, connected } = input.feed;
  if (connected !== null) new Gauge({ name: 'netboot_state_feed_connected', help: '1 while the PXE server is connected to the Interface\'s state feed', registers }).set(connected ? 1 : 0);
  if (interfaceSeq !== null && serverSeq !== null) {
    new Gauge({ name: 'netboot_state_feed_lag_changes', help: 'state changes the Interface has committed that the PXE server has not applied yet', registers }).set(Math.max(0, interfaceSeq - serverSeq));
  }
  if (input.packages !== null) {
    const statuses = new Gauge({ name: 'netboot_package_statuses', help: 'package versions by site and state (absent, syncing, ready, invalid, deleting)', labelNames: ['server', 'state'] as const, registers });
    const done = new Gauge({ name: 'netboot_package_sync_done_bytes', help: 'bytes fetched so far by the syncs in progress, by site', labelNames: ['server'] as const, registers });
    const total = new Gauge({ name: 'netboot_package_sync_total_bytes', help: 'bytes the syncs in progress fetch in all, by site', labelNames: ['server'] as const, registers });
    const oldest = new Gauge({ name: 'netboot_package_oldest_unready_age_seconds', help: 'age of the oldest package version not Ready on this site (0: all Ready)', registers });
    let oldestMs = 0;
    for (const p of input.packages) {
      for (const s of p.sites) {
        statuses.labels(s.server, s.state).inc();
        if (s.state === 'syncing') {
          done.labels(s.server).inc(s.bytesDone);
          total.labels(s.server).inc(s.bytesTotal);
        }
      }
      const here = p.sites.find((s) => s.server === input.site);
      if (here === undefined || here.state !== 'ready') oldestMs = Math.max(oldestMs, input.nowMs - Date.parse(p.updatedAt));
    }
    oldest.set(Number.isFinite(oldestMs) ? Math.max(0, oldestMs) / 1000 : 0);
  }
  if (input.peers !== null) {
    const connected = new Gauge({ name: 'netboot_peer_connected', help: '1 while the link to the peer is up and authenticated', labelNames: ['peer'] as const, registers });
    const queued = new Gauge({ name: 'netboot_peer_jobs_queued', help: 'jobs waiting for delivery to the peer', labelNames: ['peer'] as const, registers });
    const delivered = new Counter({ name: 'netboot_peer_jobs_delivered_total', help: 'jobs delivered to the peer since the Interface started', labelNames: ['peer'] as const, registers });
    const latency = new Gauge({ name: 'netboot_peer_last_job_latency_seconds', help: 'time the last delivered job took from sending to the peer\'s acknowledgement', labelNames: ['peer'] as const, registers });
    for (const p of input.peers) {
      connected.labels(p.id).set(p.connected && p.authenticated ? 1 : 0);
      queued.labels(p.id).set(p.queued);
      delivered.labels(p.id).inc(p.delivered);
      if (p.lastLatencyMs !== null) latency.labels(p.id).set(p.lastLatencyMs / 1000);
    }
  }
  if (input.jobs !== null) {
    const jobs = new Gauge({ name: 'netboot_jobs', help: 'imaging jobs the Interface holds, by task and state', labelNames: ['task', 'state'] as const, registers });
    const done = new Gauge({ name: 'netboot_job_done_bytes', help: 'bytes written so far by the running jobs, by task', labelNames: ['task'] as const, registers });
    const total = new Gauge({ name: 'netboot_job_total_bytes', help: 'bytes the running jobs write in all, by task', labelNames: ['task'] as const, registers });
    for (const j of input.jobs) {
      jobs.labels(j.task, j.state).inc();
      if (j.state === 'running') {
        done.labels(j.task).inc(j.bytesDone ?? 0);
        total.labels(j.task).inc(j.bytesTotal ?? 0);
      }
    }
  }
  return registers[0]!.metrics();
}
