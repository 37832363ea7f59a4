// The Interface's site-to-site traffic: jobs delivered to each peer and how long each took from
// being queued to the peer's acknowledgement; package chunk bytes fetched from peers (as sent on the
// wire, compressed or not). `peer` is a configured [[peers]] id: a bounded set.
import { Counter, Histogram, type Registry } from 'prom-client';
import { metricFamily } from './registry.ts';

const families = metricFamily((registers: Registry[]) => ({
  delivery: new Histogram({
    name: 'netboot_peer_job_delivery_seconds',
    help: 'jobs delivered to a peer: time from being queued for it to its acknowledgement',
    labelNames: ['peer'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  }),
  fetched: new Counter({ name: 'netboot_package_fetched_bytes_total', help: 'package chunk bytes fetched from peers (wire bytes: deflated frames count as sent)', registers }),
  badChunks: new Counter({ name: 'netboot_package_rejected_chunks_total', help: 'chunks from peers that did not match their digest (fetched again elsewhere)', registers }),
}));

export function peerJobDelivered(peer: string, latencyMs: number): void {
  families().delivery.labels(peer).observe(latencyMs / 1000);
}

export function packageBytesFetched(bytes: number): void {
  families().fetched.inc(bytes);
}

export function packageChunkRejected(): void {
  families().badChunks.inc();
}
