// `netboot peers [--json]`: each peer as the running Interface sees it.
import { controlCall, controlSocketPath } from '../platform/local/control.ts';
import type { InboundPeer } from '../state/peer-intake.ts';
import type { PeerLinkStatus } from '../services/interface/peer-link.ts';
import { configFor, type Command } from './context.ts';

export const peersCommand: Command = async (ctx) => {
  const config = configFor(ctx);
  const s = await controlCall<{ site: string; peers: PeerLinkStatus[]; inbound: InboundPeer[] }>(controlSocketPath(config.paths.data, 'interface'), 'GET', '/peers');
  if (ctx.args.flags.has('json')) {
    ctx.out(JSON.stringify(s, null, 2));
    return 0;
  }
  ctx.out(`site ${s.site}: ${s.peers.length} peer(s)`);
  ctx.out(['PEER', 'ADDRESS', 'CONNECTED', 'AUTHENTICATED', 'QUEUED', 'DELIVERED', 'LAST LATENCY', 'LAST ERROR'].join('\t'));
  for (const p of s.peers) {
    ctx.out([p.id, p.address, yes(p.connected), yes(p.authenticated), p.queued, p.delivered, p.lastLatencyMs === null ? '-' : `${p.lastLatencyMs} ms`, p.lastError ?? '-'].join('\t'));
  }
  if (s.inbound.length > 0) {
    ctx.out('\ninbound connections:');
    for (const c of s.inbound) ctx.out(`  ${c.peerId ?? '(unidentified)'} from ${c.remote}: ${c.authenticated ? 'authenticated' : 'not authenticated'} since ${c.since}`);
  }
  return 0;
};

const yes = (b: boolean): string => (b ? 'yes' : 'no');
