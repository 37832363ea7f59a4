// The PXE server's metrics: every request by architecture, decision and reason, and the time
// from a request's arrival to its offer leaving. Labels are bounded: the architecture's name
// (or `none`/`other`), one of four decisions, and a reason class read from the policy's text
// (a fixed list; `other` for anything new). No MAC, no file name, no image id.
import { Counter, type Registry } from 'prom-client';
import { HotHistogram } from '../platform/metrics/hot-histogram.ts';
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

// The hot path only adds to plain arrays (a few ns, no label hashing); the counter is written
// from them at scrape time. Slots by option 93 code: 0..11 as sent, then `other`, then `none`.
const OTHER_SLOT = 12;
const NONE_SLOT = 13;
const SLOTS = 14;
const offered = new Float64Array(SLOTS);
/** decision -> reason text -> counts by slot; past MAX_TEXTS texts per decision, by reason class. */
const notOffered = new Map<PxeDecision, Map<string, Float64Array>>();
const MAX_TEXTS = 1024;

function slotOf(code: number | null): number {
  return code === null ? NONE_SLOT : code >= 0 && code < OTHER_SLOT ? code : OTHER_SLOT;
}

function slotLabel(slot: number): string {
  return slot === NONE_SLOT ? 'none' : slot === OTHER_SLOT ? 'other' : archLabel(slot);
}

const families = metricFamily((registers: Registry[]) => ({
  requests: new Counter({
    name: 'netboot_pxe_requests_total',
    help: 'DHCP/PXE requests seen by the PXE server, by client architecture, decision (offered, no-offer, ignored, dropped) and reason class',
    labelNames: ['arch', 'decision', 'reason'] as const,
    registers,
    collect() {
      this.reset();
      for (let slot = 0; slot < SLOTS; slot++) if (offered[slot]! > 0) this.inc({ arch: slotLabel(slot), decision: 'offered', reason: 'offer' }, offered[slot]!);
      for (const [decision, texts] of notOffered) {
        for (const [text, counts] of texts) {
          const reason = reasonClass(text);
          for (let slot = 0; slot < SLOTS; slot++) if (counts[slot]! > 0) this.inc({ arch: slotLabel(slot), decision, reason }, counts[slot]!);
        }
      }
    },
  }),
  offerSeconds: new HotHistogram(
    'netboot_pxe_offer_latency_seconds',
    'time from a PXE request\'s arrival to its offer being sent (includes [server] response_delay_ms on port 67)',
    'port', PORTS, [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers,
  ),
}));

const PORTS = ['dhcp', 'proxy'] as const;

/** One request and what became of it. */
export function countPxeRequest(archCode: number | null, decision: PxeDecision, reason: string): void {
  const slot = slotOf(archCode);
  if (decision === 'offered') {
    offered[slot]!++;
    return;
  }
  let texts = notOffered.get(decision);
  if (texts === undefined) notOffered.set(decision, (texts = new Map()));
  let counts = texts.get(reason);
  if (counts === undefined) {
    const key = texts.size < MAX_TEXTS ? reason : reasonClass(reason);
    counts = texts.get(key);
    if (counts === undefined) texts.set(key, (counts = new Float64Array(SLOTS)));
  }
  counts[slot]!++;
}

/** An offer left, `seconds` after its request arrived, on `port` (dhcp: 67, proxy: 4011). */
export function observeOffer(port: 'dhcp' | 'proxy', seconds: number): void {
  families().offerSeconds.observe(port === 'dhcp' ? 0 : 1, seconds);
}
