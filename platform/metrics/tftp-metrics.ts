// The MTFTP service's metrics: transfers by outcome, bytes sent, retransmissions, transfers in
// progress, and requests refused or dropped by reason (bounded: TFTP error names, `malformed`).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { metricFamily } from './registry.ts';

const families = metricFamily((registers: Registry[]) => ({
  transfers: new Counter({ name: 'netboot_tftp_transfers_total', help: 'TFTP transfers ended, by outcome (complete, refused: the client ended it after the OACK, aborted, shutdown)', labelNames: ['outcome'] as const, registers }),
  bytes: new Counter({ name: 'netboot_tftp_sent_bytes_total', help: 'file bytes delivered by TFTP transfers (counted when each transfer ends)', registers }),
  retransmits: new Counter({ name: 'netboot_tftp_retransmissions_total', help: 'TFTP packets sent again after a timeout or a duplicate acknowledgement', registers }),
  errors: new Counter({ name: 'netboot_tftp_errors_total', help: 'TFTP requests refused or dropped, by reason (TFTP error name, malformed, write-request)', labelNames: ['reason'] as const, registers }),
  active: new Gauge({ name: 'netboot_tftp_active_transfers', help: 'TFTP transfers in progress', registers }),
  duration: new Histogram({ name: 'netboot_tftp_transfer_duration_seconds', help: 'duration of TFTP transfers, by outcome', labelNames: ['outcome'] as const, buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300], registers }),
}));

const ERROR_NAMES = ['not-defined', 'file-not-found', 'access-violation', 'disk-full', 'illegal-operation', 'unknown-tid', 'file-exists', 'no-such-user', 'option-refused'];

export function tftpTransferStarted(): void {
  families().active.inc();
}

export function tftpTransferEnded(outcome: string, bytes: number, retransmits: number, durationMs: number): void {
  const f = families();
  f.active.dec();
  f.transfers.labels(outcome).inc();
  f.duration.labels(outcome).observe(durationMs / 1000);
  if (bytes > 0) f.bytes.inc(bytes);
  if (retransmits > 0) f.retransmits.inc(retransmits);
}

/** A refused request (a TFTP error code) or a dropped datagram (`malformed`, `write-request`). */
export function tftpRequestFailed(reason: number | string): void {
  families().errors.labels(typeof reason === 'number' ? (ERROR_NAMES[reason] ?? 'other') : reason).inc();
}
