// `netboot explain MAC [--arch bios|efi-ia32|efi-x64|efi-arm64] [--ipxe | --http] [--relay GIADDR] [--json]`:
// what the running PXE server would offer this machine now, and why (the administrator's "why did
// this machine get this file?"), and which server address the offer carries on the server's own
// segment or through the relay agent GIADDR (its [[server.subnets]] entry, if any).
import { controlCall, controlSocketPath } from '../platform/local/control.ts';
import { NetbootError } from '../platform/runtime/errors.ts';
import { stringFlag, type CommandSpec } from './args.ts';
import type { Command } from './context.ts';
import { configFor } from './context.ts';
import type { BootChain } from '../boot/boot-chain.ts';
import { chainLines, offerHeadline } from './explain-render.ts';

interface Explained {
  mac: string;
  arch: string;
  ipxe: boolean;
  transfer?: string;
  decision: { offer: { file: string; stage: string; identity: string; reason: string; delayMs: number } } | { none: string };
  via?: { relay: string | null; address?: string; why?: string; subnet?: { cidr: string; name: string | null } | null; none?: string; segments?: { name: string; address: string; why: string }[] };
  chain?: BootChain | null;
  lastRequest?: { at: string; type: string; port: string; relay: string | null; hops: number | null; agentInfo: string | null; outcome: string; server: string | null; subnet: string | null } | null;
}

export const explainSpec: CommandSpec = {
  name: 'explain',
  summary: 'what the PXE server offers this machine now, and why',
  args: 'MAC',
  arity: [1, 1],
  options: {
    arch: { type: 'string', value: 'bios|efi-ia32|efi-x64|efi-arm64', help: 'the machine\'s firmware (default bios)' },
    ipxe: { type: 'boolean', help: 'the request comes from iPXE (the second stage)' },
    http: { type: 'boolean', help: 'the request comes from UEFI HTTP Boot firmware (vendor class HTTPClient)' },
    relay: { type: 'string', value: 'GIADDR', help: 'the request arrives through this relay agent' },
    json: { type: 'boolean', help: 'print the whole answer as JSON (decision, server address, last request seen)' },
  },
  description: ['Asks the running PXE server, which answers as it would answer this machine now: the file offered (or why none), the server address the offer carries, and the last request seen from it.'],
};

const USAGE = 'usage: netboot explain MAC [--arch bios|efi-ia32|efi-x64|efi-arm64] [--ipxe | --http] [--relay GIADDR] [--json]';

export const explainCommand: Command = async (ctx) => {
  const [mac] = ctx.args.positionals;
  if (mac === undefined) {
    ctx.err(USAGE);
    return 2;
  }
  const relay = ctx.args.flags.get('relay');
  if (relay === true) {
    ctx.err(`--relay needs the relay agent's address (giaddr)\n${USAGE}`);
    return 2;
  }
  const config = configFor(ctx);
  const query = new URLSearchParams({ mac, arch: stringFlag(ctx.args, 'arch') ?? 'bios', ...(ctx.args.flags.has('ipxe') ? { ipxe: '1' } : {}), ...(ctx.args.flags.has('http') ? { http: '1' } : {}), ...(relay === undefined ? {} : { relay }) });
  let e: Explained;
  try {
    e = await controlCall<Explained>(controlSocketPath(config.paths.data, 'server'), 'GET', `/explain?${query}`);
  } catch (err) {
    if (err instanceof NetbootError && err.code === 'CONTROL_UNREACHABLE') {
      throw new NetbootError('SERVER_NOT_RUNNING', 'netboot explain: the PXE server is not running (start it with `netboot run` or `systemctl start netboot.target`)');
    }
    throw err;
  }
  if (ctx.args.flags.has('json')) {
    ctx.out(JSON.stringify(e, null, 2));
    return 0;
  }
  const who = `${e.mac} (${e.arch}${e.ipxe ? ', running iPXE' : ''})`;
  if ('none' in e.decision) {
    ctx.out(`${who}: no offer`);
    ctx.out(`  why: ${e.decision.none}`);
  } else {
    const o = e.decision.offer;
    ctx.out(offerHeadline(who, o.file, e.chain));
    ctx.out(`  stage: ${o.stage === 'firmware' ? 'firmware boot program' : 'next stage for iPXE'}; computer: ${o.identity}${o.delayMs > 0 ? `; after ${o.delayMs} ms` : ''}`);
    ctx.out(`  why: ${o.reason}`);
    if (e.transfer !== undefined) ctx.out(`  transfer: ${e.transfer}`);
    for (const line of chainLines(e.chain, o.file)) ctx.out(line);
  }
  const v = e.via;
  if (v?.segments !== undefined) {
    ctx.out(`  on the server's own segments, one offer each: ${v.segments.map((x) => `${x.name} ${x.address}`).join(', ')}`);
  } else if (v !== undefined) {
    const where = v.relay === null ? 'on the server\'s own segment' : `through relay ${v.relay}${v.subnet ? `, subnet ${v.subnet.cidr}${v.subnet.name === null ? '' : ` (${v.subnet.name})`}` : ', in no [[server.subnets]] entry'}`;
    ctx.out(v.address === undefined ? `  ${where}: no server address (${v.none})` : `  ${where}: server address ${v.address} (${v.why})`);
  }
  const last = e.lastRequest;
  if (last !== undefined && last !== null) {
    const path = last.relay === null ? 'directly' : `through relay ${last.relay} (hops ${last.hops}${last.agentInfo === null ? '' : `, option 82 ${last.agentInfo}`}${last.subnet === null ? '' : `, subnet ${last.subnet}`})`;
    ctx.out(`  last request: ${last.type} on ${last.port === 'dhcp' ? 'port 67' : 'port 4011'} ${path} at ${last.at}: ${last.outcome}${last.server === null ? '' : `, server address ${last.server}`}`);
  } else if (last === null) {
    ctx.out('  last request: none seen since the server started');
  }
  return 0;
};
