// This process's Prometheus registry (prom-client). One process runs one service, so one registry
// per process is one per service: each answers `GET /metrics` on its own control socket
// (platform/local/control.ts), and the web server (web/) merges them at the scrape address,
// adding a `service` label. The registry is made on first use, with the client's process metrics
// (CPU, memory, event-loop lag, GC) under the standard names; metric families register
// themselves in it when their module first asks (metricFamily).
import { Registry, collectDefaultMetrics } from 'prom-client';

let registry: Registry | null = null;

export function metricsRegistry(): Registry {
  if (registry === null) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry });
  }
  return registry;
}

/** A family made once per process: `make` runs on first use, with this process's registry. */
export function metricFamily<T>(make: (registers: Registry[]) => T): () => T {
  let made: T | null = null;
  return () => (made ??= make([metricsRegistry()]));
}

/** This process's metrics in the text exposition format (0.0.4). */
export async function metricsText(): Promise<string> {
  return metricsRegistry().metrics();
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
