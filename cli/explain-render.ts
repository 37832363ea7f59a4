// How `netboot explain` prints the boot chain (boot/boot-chain.ts): the headline says "cannot
// boot: …" at the first missing link instead of "offered", then one line per link.
import type { BootChain, ChainStep } from '../boot/boot-chain.ts';

/** The first line for an offer: "offered FILE", or "cannot boot: WHY" when a link is missing. */
export function offerHeadline(who: string, file: string, chain: BootChain | null | undefined): string {
  if (chain === null || chain === undefined || chain.cannotBoot === null) return `${who}: offered ${file}`;
  return `${who}: cannot boot: ${chain.cannotBoot}`;
}

/** The chain, one line per link: offer, scripts, files, with where each comes from. */
export function chainLines(chain: BootChain | null | undefined, offered: string): string[] {
  if (chain === null || chain === undefined) return [];
  const out: string[] = [];
  if (chain.cannotBoot !== null) out.push(`  offered ${offered}, but a link of the chain is missing (below)`);
  out.push('  chain:');
  for (const s of chain.steps) out.push(`    ${s.problem === null ? 'ok     ' : 'MISSING'}  ${indent(s)}${describe(s)}`);
  if (chain.cannotBoot === null && chain.ends !== '') out.push(`  then: ${chain.ends}`);
  for (const w of chain.warnings) out.push(`  warning: ${w}`);
  return out;
}

function indent(s: ChainStep): string {
  return s.item === undefined ? '' : '  ';
}

function describe(s: ChainStep): string {
  const where = s.kind === 'script' ? `${s.file} (generated)` : `${s.file} from the ${s.from}`;
  return `${s.what}: ${where}${s.problem === null ? '' : `: ${s.problem}`}`;
}
