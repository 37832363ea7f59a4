// `netboot peers [--json] [--wide]`: each peer as the running Interface sees it.
import { controlCall, controlSocketPath } from '../platform/local/control.ts';
import type { InboundPeer } from '../state/peer-intake.ts';
import type { PeerLinkStatus } from '../services/interface/peer-link.ts';
import type { CommandSpec } from './args.ts';
import { configFor, type Command } from './context.ts';
import { renderTable } from './table.ts';

export const peersSpec: CommandSpec = {
  name: 'peers',
  summary: 'peer sites: link, authentication, jobs queued, latency',
  options: {
    json: { type: 'boolean', help: 'print the peers as JSON' },
    wide: { type: 'boolean', help: 'show every column in full (no cutting to 80 columns)' },
  },
};

export const peersCommand: Command = async (ctx) => {
  const config = configFor(ctx);
  const s = await controlCall<{ site: string; peers: PeerLinkStatus[]; inbound: InboundPeer[] }>(controlSocketPath(config.paths.data, 'interface'), 'GET', '/peers');
  if (ctx.args.flags.has('json')) {
    ctx.out(JSON.stringify(s, null, 2));
    return 0;
  }
  const wide = ctx.args.flags.has('wide');
  ctx.out(`site ${s.site}: ${s.peers.length} peer(s)`);
  if (s.peers.length > 0) {
    const rows = s.peers.map((p) => [p.id, p.address, p.connected ? 'up' : 'down', yes(p.authenticated), String(p.queued), String(p.delivered), p.lastLatencyMs === null ? '-' : `${p.lastLatencyMs} ms`, p.lastError ?? '-']);
    const columns = [
      { header: 'PEER' }, { header: 'ADDRESS' }, { header: 'LINK', keep: true }, { header: 'AUTH', keep: true },
      { header: 'QUEUED', right: true, keep: true }, { header: 'DELIVERED', right: true, keep: true }, { header: 'LATENCY', keep: true }, { header: 'LAST ERROR', min: 10 },
    ];
    for (const line of renderTable(columns, rows, { wide })) ctx.out(line);
  }
  if (s.inbound.length > 0) {
    ctx.out('');
    ctx.out('inbound connections:');
    const rows = s.inbound.map((c) => [c.peerId ?? '(unidentified)', c.remote, yes(c.authenticated), c.since]);
    for (const line of renderTable([{ header: 'PEER' }, { header: 'FROM' }, { header: 'AUTH', keep: true }, { header: 'SINCE', min: 10 }], rows, { wide, indent: 2 })) ctx.out(line);
  }
  return 0;
};

const yes = (b: boolean): string => (b ? 'yes' : 'no');
