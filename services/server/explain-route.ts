// `netboot explain`: the DISCOVER a machine would send, run through the one answer path
// (boot/answer.ts) against the running server's state; what it is offered and why, which
// address the offer carries (through a relay or on the server's own segments), and the last
// request seen from it.
import { answer, offerFile, replyAddresses, type AddressChoice, type AnswerState, type Arrival, type Chosen } from '../../boot/answer.ts';
import { isShim, secureBootTransfer } from '../../boot/http-grub-config.ts';
import type { Decision, Offer } from '../../boot/pxe-policy.ts';
import type { RecentRequests, SeenReport } from '../../boot/recent-requests.ts';
import { discoverBytes } from '../../boot/sample-request.ts';
import { HttpError, type ControlRequest } from '../../platform/local/control.ts';
import { isIPv4, isUnicast } from '../../platform/runtime/config.ts';
import { normalizeMac } from '../../sbs/mac.ts';
import { ARCHES, type Arch } from '../../sbs/types.ts';
import type { BootChain } from '../../boot/boot-chain.ts';
import { explainChain, type ChainPaths } from './explain-chain.ts';
import type { ServerAddresses } from './server-address.ts';

/** The answer path's view of the running server, for the made-up DISCOVER. */
export interface ExplainDeps {
  readonly recent: RecentRequests;
  readonly addresses: ServerAddresses;
  /** The server's answer state, with the segments a broadcast would go out on. */
  readonly state: AnswerState;
  /** Where the chain's files are looked for (the TFTP root, the packages). */
  readonly paths: ChainPaths;
}

/** `GET /explain?mac=&arch=&ipxe=&relay=`: what this machine's DISCOVER is answered, and why. */
export async function explainMachine(req: ControlRequest, deps: ExplainDeps): Promise<Explained> {
  const { recent, addresses } = deps;
  const mac = normalizeMac(req.query.get('mac') ?? '');
  if (mac === null) throw new HttpError(400, 'mac: not a MAC address');
  const archName = req.query.get('arch') ?? 'bios';
  if (!(ARCHES as readonly string[]).includes(archName)) throw new HttpError(400, `arch: one of ${ARCHES.join(', ')}`);
  const arch = archName as Arch;
  const ipxe = ['1', 'true', 'yes'].includes(req.query.get('ipxe') ?? '');
  const http = ['1', 'true', 'yes'].includes(req.query.get('http') ?? '');
  if (http && ipxe) throw new HttpError(400, 'http and ipxe: UEFI HTTP Boot is the firmware\'s request, not iPXE\'s');
  const asked = req.query.get('relay') ?? '';
  if (asked !== '' && !(isIPv4(asked) && isUnicast(asked))) throw new HttpError(400, 'relay: the relay agent\'s address (giaddr), a unicast IPv4 address');
  const lastRequest = recent.report(mac);
  // Without --relay: the relay the machine's last request came through, if any.
  const relay = asked !== '' ? asked : (lastRequest?.relay ?? '');
  // A broadcast DISCOVER on the server's own segments, or one a relay forwards to us.
  const state: AnswerState = { ...deps.state, address: (t) => addresses.fixed ?? known(addresses.choose(t)) };
  const bytes = discoverBytes({ mac, arch, ipxe, giaddr: relay === '' ? null : relay, http });
  const arrival: Arrival = { from: { address: relay === '' ? '0.0.0.0' : relay, port: relay === '' ? 68 : 67 }, via: 'dhcp' };
  let a = answer(bytes, arrival, state);
  let chosenNow: Chosen | null = null;
  if (a.kind === 'lookup') {
    const target = a.target;
    chosenNow = await addresses.choose(target);
    a = answer(bytes, arrival, { ...state, address: () => chosenNow! });
  }
  const decision: Decision = a.kind === 'reply' || a.kind === 'no-offer' || a.kind === 'no-address' ? a.decision : { none: a.kind === 'lookup' ? 'our address is unknown' : a.reason };
  // A stand-in enrolment secret: the chain is walked by paths, and explain never shows a secret.
  const chain = explainChain(mac, decision, state.feed, { consumed: state.consumed, httpPort: state.httpPort, enrolSecret: () => '0'.repeat(64) }, deps.paths);
  // Which address a DISCOVER through this relay (or on the server's own segments) would carry,
  // offer or not: the same choice the answer path makes.
  const transfer = transferOf(a.kind === 'reply' ? a : null, state.httpPort, ipxe);
  if (a.kind === 'reply' && a.replies[0]!.segment !== null) {
    return { mac, arch, ipxe, transfer, decision, via: { relay: null, segments: a.replies.map((r) => ({ name: r.segment!.name, address: r.chosen.address, why: r.chosen.why })) }, lastRequest, chain };
  }
  let chosen: Chosen | undefined;
  if (a.kind === 'reply') chosen = a.replies[0]!.chosen;
  else if (a.kind === 'no-address') chosen = { none: a.reason };
  else if (a.kind === 'no-offer') {
    const list = replyAddresses(a.to, a.target, state) ?? [{ segment: null, chosen: await addresses.choose(a.target) }];
    if (list.length > 0 && list[0]!.segment !== null) {
      return { mac, arch, ipxe, transfer, decision, via: { relay: null, segments: list.map((r) => ({ name: r.segment!.name, address: (r.chosen as AddressChoice).address, why: (r.chosen as AddressChoice).why })) }, lastRequest, chain };
    }
    chosen = list[0]!.chosen;
  }
  const via = chosen === undefined ? { relay: relay === '' ? null : relay }
    : { relay: relay === '' ? null : relay, ...('none' in chosen ? { none: chosen.none } : { address: chosen.address, why: chosen.why, subnet: chosen.subnet === null ? null : { cidr: chosen.subnet.cidr, name: chosen.subnet.name } }) };
  return { mac, arch, ipxe, transfer, decision, via, lastRequest, chain };
}

/** Which protocol carries what, for this request's chain (`netboot explain` prints it). */
function transferOf(reply: { readonly offer: Offer; readonly replies: readonly { readonly chosen: AddressChoice }[] } | null, httpPort: number | undefined, ipxe: boolean): string {
  if (reply !== null && reply.offer.stage === 'firmware' && isShim(reply.offer.file)) return secureBootTransfer(reply.offer.http !== undefined);
  if (reply !== null && reply.offer.http !== undefined) {
    const url = offerFile(reply.offer, reply.replies[0]!.chosen.address);
    return ipxe ? `iPXE fetches ${url} and the kernels, initrds and WIMs it names over Boot HTTP: no TFTP`
      : `UEFI HTTP Boot: the firmware fetches ${url} itself, no TFTP; once iPXE runs, its script and files come over Boot HTTP too`;
  }
  if (httpPort === undefined) return 'TFTP for everything (Boot HTTP is off)';
  return `the boot program over TFTP (the firmware fetches it itself); once iPXE runs, its script, kernels, initrds and WIMs over Boot HTTP (port ${httpPort})`;
}

/** What explain says about the path a request takes: the relay, its subnet, our address. */
export interface Explained {
  readonly mac: string;
  readonly arch: Arch;
  readonly ipxe: boolean;
  /** Which protocol carries the boot program, the script and the image files. */
  readonly transfer: string;
  readonly decision: Decision;
  readonly via: {
    readonly relay: string | null;
    readonly address?: string;
    readonly why?: string;
    readonly subnet?: { readonly cidr: string; readonly name: string | null } | null;
    readonly none?: string;
    /** Multi-homed, on the server's own segments: one offer per segment. */
    readonly segments?: readonly { readonly name: string; readonly address: string; readonly why: string }[];
  };
  /** The last request seen from this machine since the server started, and its outcome. */
  readonly lastRequest: SeenReport | null;
  /** The chain the machine walks after the offer, each file probed (null: no offer). */
  readonly chain: BootChain | null;
}

/** A choice made now, or undefined while its route is being looked up. */
export function known(c: Chosen | Promise<Chosen>): Chosen | undefined {
  return c instanceof Promise ? undefined : c;
}
