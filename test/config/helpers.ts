// Shared by the config tests: parse a text and collect its problems; run `netboot config check`
// in-process and capture what it prints.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../../cli/args.ts';
import { configCommand } from '../../cli/config-command.ts';
import { parseConfigText } from '../../platform/runtime/config.ts';
import { ConfigError, errorMessage } from '../../platform/runtime/errors.ts';

/** The problems `text` is refused with; [] when it is accepted. */
export function problemsOf(text: string, baseDir = '/etc/netboot'): readonly string[] {
  try {
    parseConfigText(text, 'x.toml', baseDir);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

export interface CheckRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** `netboot config check FILE` on `text` written into a fresh folder (also given to `setup`). */
export async function configCheck(text: string | ((dir: string) => string)): Promise<CheckRun> {
  const dir = mkdtempSync(join(tmpdir(), 'netboot-config-'));
  try {
    const path = join(dir, 'netboot.toml');
    writeFileSync(path, typeof text === 'string' ? text : text(dir));
    const out: string[] = [];
    const err: string[] = [];
    let code: number;
    try {
      code = await configCommand({ args: parseArgs(['check', path]), out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
    } catch (e) {
      // What cli/main.ts does with a thrown error: its message on stderr, exit 1.
      err.push(errorMessage(e));
      code = 1;
    }
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
