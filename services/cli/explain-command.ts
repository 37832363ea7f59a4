// `netboot explain MAC [--arch bios|efi-ia32|efi-x64|efi-arm64] [--ipxe] [--json]`: what the
// running PXE server would offer this machine now, and why (the administrator's "why did this
// machine get this file?").
import { controlCall, controlSocketPath } from '../shared/control.ts';
import { NetbootError } from '../shared/errors.ts';
import { stringFlag } from './args.ts';
import type { Command } from './context.ts';
import { configFor } from './context.ts';

interface Explained {
  mac: string;
  arch: string;
  ipxe: boolean;
  decision: { offer: { file: string; stage: string; identity: string; reason: string; delayMs: number } } | { none: string };
}

export const explainCommand: Command = async (ctx) => {
  const [mac] = ctx.args.positionals;
  if (mac === undefined) {
    ctx.err('usage: netboot explain MAC [--arch bios|efi-ia32|efi-x64|efi-arm64] [--ipxe] [--json]');
    return 2;
  }
  const config = configFor(ctx);
  const query = new URLSearchParams({ mac, arch: stringFlag(ctx.args, 'arch') ?? 'bios', ...(ctx.args.flags.has('ipxe') ? { ipxe: '1' } : {}) });
  let e: Explained;
  try {
    e = await controlCall<Explained>(controlSocketPath(config.paths.data, 'server'), 'GET', `/explain?${query}`);
  } catch (err) {
    if (err instanceof NetbootError && err.code === 'CONTROL_UNREACHABLE') {
      throw new NetbootError('SERVER_NOT_RUNNING', `netboot explain: the PXE server is not running (no answer on ${controlSocketPath(config.paths.data, 'server')})`);
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
    ctx.out(`${who}: offered ${o.file}`);
    ctx.out(`  stage: ${o.stage === 'firmware' ? 'firmware boot program' : 'next stage for iPXE'}; computer: ${o.identity}${o.delayMs > 0 ? `; after ${o.delayMs} ms` : ''}`);
    ctx.out(`  why: ${o.reason}`);
  }
  return 0;
};
