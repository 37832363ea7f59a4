// The PXE server's metrics: every request by architecture, decision and reason, and the time
// from a request's arrival to its offer leaving. Labels are bounded: the architecture's name
// (or `none`/`other`), one of four decisions, and a reason class read from the policy's text
// (a fixed list; `other` for anything new). No MAC, no file name, no image id.
import { Counter, Histogram, type Registry } from 'prom-client';
import { metricFamily } from '../platform/metrics/registry.ts';
import { archFromCode } from './pxe-arch.ts';

export type PxeDecision = 'offered' | 'no-offer' | 'ignored' | 'dropped';

/** The reason classes, first match wins; each is a prefix or part of the policy's sentence. */
const REASONS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^malformed/, 'malformed'],
  [/^state incomplete/, 'state-incomplete'],
  [/respond is "none"/, 'respond-none'],
  [/^unknown computer and config\.respond/, 'unknown-machine'],
  [/names no architecture/, 'no-arch'],
  [/unknown client architecture/, 'unknown-arch'],
  [/boots from its next device/, 'boot-local'],
  [/has no menu/, 'no-menu'],
  [/does not exist/, 'image-missing'],
  [/is not for /, 'image-arch'],
  [/no config\.bootFiles entry/, 'no-boot-file'],
  [/cannot choose our address/, 'no-address'],
  [/^REQUEST for server/, 'other-server'],
  [/^hops /, 'relay-hops'],
  [/^giaddr /, 'relay-giaddr'],
  [/^not a BOOTREQUEST/, 'not-bootrequest'],
  [/^plain BOOTP/, 'bootp'],
  [/is not answered on the/, 'wrong-port'],
  [/^not a PXE client/, 'not-pxe'],
  [/^hardware type/, 'not-ethernet'],
];

export function reasonClass(reason: string): string {
  const text = reason.startsWith('no offer: ') ? reason.slice(10) : reason;
  for (const [re, name] of REASONS) if (re.test(text)) return name;
  return 'other';
}

export function archLabel(code: number | null): string {
  if (code === null) return 'none';
  return archFromCode(code) ?? 'other';
}

const families = metricFamily((registers: Registry[]) => ({
  requests: new Counter({
    name: 'netboot_pxe_requests_total',
    help: 'DHCP/PXE requests seen by the PXE server, by client architecture, decision (offered, no-offer, ignored, dropped) and reason class',
    labelNames: ['arch', 'decision', 'reason'] as const,
    registers,
  }),
  offerSeconds: new Histogram({
    name: 'netboot_pxe_offer_latency_seconds',
    help: 'time from a PXE request\'s arrival to its offer being sent (includes [server] response_delay_ms on port 67)',
    labelNames: ['port'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  }),
}));

// Children by label key: the hot path takes a cached child, not a label lookup per packet.
const children = new Map<string, { inc(): void }>();

/** One request and what became of it. */
export function countPxeRequest(archCode: number | null, decision: PxeDecision, reason: string): void {
  const key = `${archCode}|${decision}|${reason}`;
  let child = children.get(key);
  if (child === undefined) {
    child = families().requests.labels(archLabel(archCode), decision, decision === 'offered' ? 'offer' : reasonClass(reason));
    if (children.size < 4096) children.set(key, child);
  }
  child.inc();
}

/** An offer left; `sinceMs` is performance.now() at the request's arrival. */
export function observeOffer(port: string, seconds: number): void {
  families().offerSeconds.labels(port).observe(seconds);
}
