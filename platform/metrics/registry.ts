// This process's Prometheus registry (prom-client). One process runs one service, so one registry
// per process is one per service: each answers `GET /metrics` on its own control socket
// (platform/local/control.ts), and the web server (web/) merges them at the scrape address,
// adding a `service` label. The registry is made on first use, with the client's process metrics
// (CPU, memory, event-loop lag, GC) under the standard names; metric families register
// themselves in it when their module first asks (metricFamily).
import { Registry, collectDefaultMetrics } from 'prom-client';

let registry: Registry | null = null;
/** Families declared by the modules loaded so far: made with the registry, so they are scraped from the start. */
const declared: Array<() => unknown> = [];

/** Made by the first control socket of the process (its start), or on first use. */
export function metricsRegistry(): Registry {
  if (registry === null) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry });
    // Gauges named `_total` (promtool refuses them); `nodejs_active_handles` etc. by type remain.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
    for (const make of declared) make();
  }
  return registry;
}

/** A family made once per process, in this process's registry (when it is made, or on first use). */
export function metricFamily<T>(make: (registers: Registry[]) => T): () => T {
  let made: T | null = null;
  const get = (): T => {
    if (made !== null) return made; // asked on hot paths: no registry look-up, no array, once made
    const registers = [metricsRegistry()]; // first: making the registry makes the declared families, this one too
    return (made ??= make(registers));
  };
  if (registry === null) declared.push(get);
  else get();
  return get;
}

/** This process's metrics in the text exposition format (0.0.4). */
export async function metricsText(): Promise<string> {
  return metricsRegistry().metrics();
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
