// The imaging agent: `node agent.mjs SERVER MAC IP` in the LinuxPE preboot environment (its /init
// runs it; bundled with esbuild for Node 18: node: modules only). It takes the job the kernel
// command line names (options.ts), runs it (run-job.ts) and reboots the machine, whose next boot
// then follows the job's outcome (`then`, or `wait`). With no job on the command line it says so
// and exits 0; with `netboot.enrol=<secret>` and no job (initial deployment) it lets the console
// choose (enrol.ts), then runs the job the site made with that job's secret (or reboots into the
// job's preboot when runNow is false). Exit codes (with --no-reboot): 0 completed or no job (or
// rebooting into another preboot), 1 failed or refused by the site, 2 bad usage, 3 cancelled.
import { execFile } from 'node:child_process';
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { errorMessage } from '../../platform/runtime/errors.ts';
import { AgentConsole } from './console.ts';
import { EnrolError, runEnrolment, type EnrolResult } from './enrol.ts';
import { findDisk } from './find-disk.ts';
import { parseOptions, UsageError, type AgentOptions } from './options.ts';
import { runJob, type JobOutcome } from './run-job.ts';
import { SiteClient } from './site-client.ts';

const run = promisify(execFile);

const EXIT: Record<JobOutcome, number> = { completed: 0, failed: 1, refused: 1, cancelled: 3 };

export async function agentMain(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const con = new AgentConsole({ write: (t) => void process.stdout.write(t), isTTY: process.stdout.isTTY === true });
  let options: AgentOptions;
  try {
    options = parseOptions(argv, env, (path) => readFileSync(path, 'utf8'));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    con.say(`netboot agent: ${err.message}`);
    con.say('usage: agent SERVER MAC IP [--cmdline FILE] [--server HOST:PORT] [--sys DIR] [--dev DIR] [--check-ms N] [--trace FILE] [--no-reboot]');
    return 2;
  }
  if ((options.jobId === null || options.secret === null) && options.enrol !== null) {
    const enrolled = await enrol(options, con);
    if (enrolled === null) return 1;
    if (!enrolled.runNow) {
      if (options.reboot) await reboot(con);
      return 0;
    }
    options = { ...options, jobId: enrolled.jobId, secret: enrolled.secret };
  }
  if (options.jobId === null || options.secret === null) {
    con.say('netboot agent: no job on the kernel command line (netboot.job, netboot.secret): nothing to do');
    return 0;
  }
  if (options.server === null) {
    con.say('netboot agent: no site server (netboot.server on the kernel command line, or SERVER)');
    return 2;
  }
  con.say(`netboot agent: job ${options.jobId} from ${options.server}${options.mac === null ? '' : ` (this machine ${options.mac}${options.ip === null ? '' : `, ${options.ip}`})`}`);
  const client = new SiteClient(options.server, options.secret, undefined, (line) => con.say(line));
  let outcome: JobOutcome;
  try {
    outcome = await runJob({ client, options, console: con });
  } finally {
    client.close();
  }
  if (options.reboot) await reboot(con);
  return EXIT[outcome];
}

/** Initial deployment (enrol.ts): the choice at the console, then the job the site made; null when refused. */
async function enrol(options: AgentOptions, con: AgentConsole): Promise<EnrolResult | null> {
  if (options.server === null || options.mac === null) {
    con.say('netboot agent: initial deployment needs the site server and this machine\'s MAC (SERVER MAC)');
    return null;
  }
  const disk = await findDisk('first', options.sysDir, options.devDir).then((d) => d.path, () => undefined);
  try {
    return await runEnrolment({
      server: `http://${options.server}`, mac: options.mac, secret: options.enrol!, input: process.stdin, output: process.stdout,
      ...(disk === undefined ? { inventory: async () => ({ disk: null, os: null }) } : { disk }),
    });
  } catch (err) {
    if (!(err instanceof EnrolError)) throw err;
    con.say(`netboot agent: ${err.message}`);
    return null;
  }
}

/** busybox `reboot -f`; where that fails, the kernel's magic SysRq `b`. Disks are synced first. */
async function reboot(con: AgentConsole): Promise<void> {
  con.say('rebooting');
  await run('sync', [], { timeout: 60_000 }).catch(() => {});
  try {
    await run('reboot', ['-f'], { timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 30_000));
  } catch (err) {
    con.say(`reboot -f failed (${errorMessage(err)}): SysRq b`);
  }
  try {
    writeFileSync('/proc/sysrq-trigger', 'b');
  } catch (err) {
    con.say(`cannot reboot: ${errorMessage(err)}`);
  }
}

/** Run as a program (not imported): this module is the script node was given. */
function isEntry(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  agentMain(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (err) => {
      process.stdout.write(`netboot agent: ${errorMessage(err)}\n`);
      process.exit(1);
    },
  );
}
