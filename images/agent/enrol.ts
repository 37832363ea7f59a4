// The agent's part of initial deployment (sbs-v1 "Initial deployment"), run by the agent's main
// when the kernel command line has `netboot.enrol=<secret>` and no `netboot.job`: the machine is
// new to the site. It asks the site server for config.initialDeployment's items, shows them on the
// console (serial and screen: `output`) with a countdown, takes a key press from `input` (a digit,
// or the arrow keys and Enter) or the default when the time runs out (no default: it waits for a
// key, however long), and posts the choice with the machine's inventory. The site answers with
// the job it made for this machine and that job's secret: main runs it at once, as any job (no
// reboot: the machine already runs the job's preboot, and a reboot would cost a PXE cycle), unless
// `runNow` is false (the item names another preboot): then main reboots and the machine boots the
// job's preboot with the job's secret. A reboot before the choice asks again; after it, the
// machine boots by its job.
//
//   const { jobId, secret } = await runEnrolment({ server: 'http://10.0.0.1:490', mac, secret: enrol,
//     input: process.stdin, output: process.stdout });
//
// Refusals (the secret is not this machine's, the machine is a client now, no initialDeployment)
// throw EnrolError with the site's reason; network trouble and 5xx answers are retried.
import { readFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { NetbootError, errorMessage } from '../../platform/runtime/errors.ts';
import { firstFixedDisk, inventoryOf } from '../disk-inventory.ts';

export interface EnrolOptions {
  /** The site server's agent API base: `http://<netboot.server>:490`. */
  readonly server: string;
  /** The MAC the machine booted from (BOOTIF), any separator. */
  readonly mac: string;
  /** `netboot.enrol` from the kernel command line. */
  readonly secret: string;
  /** The console's input (the serial console is stdin); raw mode is set on a TTY while choosing. */
  readonly input: Readable;
  readonly output: Writable;
  /** The disk to inventory: `first` (default: the first fixed disk) or a device path. */
  readonly disk?: string;
  /** Replaces the inventory read (tests); default: the disk's and its OS's (images/disk-inventory.ts). */
  readonly inventory?: () => Promise<unknown>;
  /** Replaces the SMBIOS UUID read (default: /sys/class/dmi/id/product_uuid). */
  readonly uuid?: () => Promise<string | null>;
  readonly fetch?: typeof fetch;
  /** Wait between attempts when the site cannot be reached (default 5000 ms). */
  readonly retryMs?: number;
  /** Give up reading the inventory after this long and post without it (default 120 s). */
  readonly inventoryTimeoutMs?: number;
}

export interface EnrolResult {
  readonly jobId: string;
  /** The job's secret: Authorization for /agent/job, as `netboot.secret` would be. */
  readonly secret: string;
  /** The job as the site's /agent/job would answer it (JobView). */
  readonly job: unknown;
  readonly label: string;
  /** key: picked at the console; default: the countdown ran out (or timeoutSec 0); registered: it had chosen before. */
  readonly chosenBy: 'key' | 'default' | 'registered';
  /**
   * The job's preboot is the one running now (initialDeployment.preboot): run the job at once.
   * false: the item names another preboot; reboot instead, and the machine boots the job's
   * preboot with the job's secret (the job is pending, its preboot boot not consumed).
   */
  readonly runNow: boolean;
}

/** The site refused (4xx): the reason is the site's. */
export class EnrolError extends NetbootError {
  constructor(readonly status: number, reason: string) {
    super('ENROL_REFUSED', `the site server refused the enrolment (${status}): ${reason}`);
  }
}

interface Items {
  readonly preboot: string;
  readonly items: readonly { readonly label: string; readonly task: string }[];
  readonly default?: number;
  readonly timeoutSec: number;
  readonly registered?: { readonly jobId: string; readonly label: string };
}

interface Choice {
  readonly item: number;
  readonly by: 'key' | 'default';
}

const NL = '\r\n';

export async function runEnrolment(opts: EnrolOptions): Promise<EnrolResult> {
  const out = (line: string): void => void opts.output.write(`netboot: ${line}${NL}`);
  // Read while the list is shown: a choice is usually made before it is done.
  const inventory = collectInventory(opts, out);
  const uuid = (opts.uuid ?? readUuid)().catch(() => null);
  for (;;) {
    const list = await call<Items>(opts, 'GET', `/agent/enrol?mac=${encodeURIComponent(opts.mac)}`, undefined, out);
    let item: number;
    let by: EnrolResult['chosenBy'];
    if (list.registered !== undefined) {
      out(`this machine already chose "${list.registered.label}": running its job ${list.registered.jobId}`);
      item = Math.max(0, list.items.findIndex((i) => i.label === list.registered!.label));
      by = 'registered';
    } else {
      const c = await choose(list, opts.input, opts.output);
      item = c.item;
      by = c.by;
    }
    const label = list.items[item]!.label;
    out(`"${label}" chosen${by === 'default' ? ' (the default)' : ''}: registering this machine with the site`);
    const body = { mac: opts.mac, item, label, uuid: await uuid, inventory: await inventory };
    try {
      const r = await call<{ jobId: string; secret: string; job: { job?: { preboot?: string } } }>(opts, 'POST', '/agent/enrol', body, out);
      const runNow = r.job?.job?.preboot === undefined || r.job.job.preboot === list.preboot;
      out(runNow ? `registered; job ${r.jobId} starts now` : `registered; job ${r.jobId} needs preboot ${r.job.job!.preboot}: restarting into it`);
      return { jobId: r.jobId, secret: r.secret, job: r.job, label, chosenBy: by, runNow };
    } catch (err) {
      // The administrator changed the list meanwhile: show the new one.
      if (err instanceof EnrolError && err.status === 409 && /the list changed/.test(err.message)) {
        out('the list changed on the site server: showing it again');
        continue;
      }
      throw err;
    }
  }
}

/** The items on the console, and the choice: a key, or the default when the countdown ends. */
export function choose(list: Items, input: Readable, output: Writable): Promise<Choice> {
  const n = list.items.length;
  const dflt = list.default;
  const write = (s: string): void => void output.write(s);
  if (dflt !== undefined && list.timeoutSec === 0) {
    write(`netboot: this machine is new to the site: "${list.items[dflt]!.label}" (the site's default, no prompt)${NL}`);
    return Promise.resolve({ item: dflt, by: 'default' });
  }
  const width = String(n).length;
  write(`${NL}netboot: this machine is new to the site. Choose what it should do:${NL}`);
  list.items.forEach((it, i) => write(`  ${String(i + 1).padStart(width)}) ${it.label}  [${it.task}]${i === dflt ? '  (default)' : ''}${NL}`));
  write(`Press ${n === 1 ? '1' : `1-${n}`}, or the arrow keys and Enter.${NL}`);
  return new Promise<Choice>((resolve) => {
    let selected = dflt ?? 0;
    let remaining = dflt === undefined ? -1 : list.timeoutSec;
    let typed = '';
    let esc = 0;
    let last = '';
    const status = (): void => {
      const what = typed !== '' ? `item ${typed}_ (Enter to choose)` : `${selected + 1}) ${list.items[selected]!.label}`;
      const when = remaining > 0 ? `: starts in ${remaining} s unless a key is pressed` : dflt === undefined && typed === '' && last === '' ? ' (no default: waiting for a choice)' : ': Enter to start';
      const line = `> ${what}${when}`;
      write(`\r${line}${' '.repeat(Math.max(0, last.length - line.length))}`);
      last = line;
    };
    const tty = input as Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
    const raw = tty.isTTY === true && typeof tty.setRawMode === 'function';
    let done = false;
    const finish = (item: number, by: Choice['by']): void => {
      if (done) return;
      done = true;
      if (timer !== null) clearInterval(timer);
      input.off('data', onData);
      if (raw) tty.setRawMode!(false);
      input.pause();
      write(NL);
      resolve({ item, by });
    };
    const stopCountdown = (): void => {
      if (timer !== null) clearInterval(timer);
      timer = null;
      remaining = -1;
    };
    const onKey = (c: string): void => {
      if (esc === 1) {
        esc = c === '[' || c === 'O' ? 2 : 0;
        return;
      }
      if (esc === 2) {
        esc = 0;
        stopCountdown();
        typed = '';
        if (c === 'A') selected = (selected + n - 1) % n;
        else if (c === 'B') selected = (selected + 1) % n;
        status();
        return;
      }
      if (c === '\x1b') {
        esc = 1;
        return;
      }
      if (c >= '0' && c <= '9') {
        stopCountdown();
        typed += c;
        const v = Number(typed);
        if (v >= 1 && v <= n && v * 10 > n) return finish(v - 1, 'key');
        if (v < 1 || v > n) typed = ''; // no such item (or a leading 0): start over
        status();
        return;
      }
      if (c === '\r' || c === '\n') {
        const v = typed === '' ? selected + 1 : Number(typed);
        if (v >= 1 && v <= n) return finish(v - 1, 'key');
        typed = '';
        status();
        return;
      }
      if (c === '\x7f' || c === '\b') {
        typed = typed.slice(0, -1);
        status();
      }
    };
    const onData = (chunk: Buffer | string): void => {
      for (const c of typeof chunk === 'string' ? chunk : chunk.toString('latin1')) if (!done) onKey(c);
    };
    let timer: NodeJS.Timeout | null = null;
    if (remaining > 0) {
      timer = setInterval(() => {
        remaining--;
        if (remaining <= 0) finish(dflt!, 'default');
        else status();
      }, 1000);
    }
    if (raw) tty.setRawMode!(true);
    input.on('data', onData);
    input.resume();
    status();
  });
}

/** One request to the site's agent API, retried while the site cannot be reached or fails (5xx). */
async function call<T>(opts: EnrolOptions, method: 'GET' | 'POST', path: string, body: unknown, out: (line: string) => void): Promise<T> {
  const f = opts.fetch ?? fetch;
  const retryMs = opts.retryMs ?? 5000;
  for (;;) {
    let problem: string;
    try {
      const res = await f(`${opts.server.replace(/\/+$/, '')}${path}`, {
        method,
        headers: { authorization: `Bearer ${opts.secret}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: reported below by status
      }
      if (res.ok && parsed !== null && typeof parsed === 'object') return parsed as T;
      const reason = typeof (parsed as { error?: unknown } | null)?.error === 'string' ? (parsed as { error: string }).error : text.slice(0, 200);
      if (res.status >= 400 && res.status < 500) throw new EnrolError(res.status, reason);
      problem = `the site server answered ${res.status}: ${reason}`;
    } catch (err) {
      if (err instanceof EnrolError) throw err;
      problem = `cannot reach the site server at ${opts.server}: ${errorMessage(err)}`;
    }
    out(`${problem}; trying again in ${Math.ceil(retryMs / 1000)} s`);
    await delay(retryMs);
  }
}

/** The inventory, or null (said on the console) when it cannot be read in time. Never rejects. */
function collectInventory(opts: EnrolOptions, out: (line: string) => void): Promise<unknown> {
  const read = opts.inventory ?? (async () => {
    const disk = opts.disk === undefined || opts.disk === 'first' ? await firstFixedDisk() : opts.disk;
    return disk === null ? { disk: null, os: null } : inventoryOf(disk);
  });
  const limitMs = opts.inventoryTimeoutMs ?? 120_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => {
      out(`the inventory took longer than ${Math.round(limitMs / 1000)} s: registering without it`);
      resolve(null);
    }, limitMs);
    timer.unref();
  });
  const inv = read().catch((err: unknown) => {
    out(`cannot read this machine's inventory (${errorMessage(err)}): registering without it`);
    return null;
  });
  return Promise.race([inv, timeout]).finally(() => clearTimeout(timer));
}

/** The SMBIOS UUID (root may read it), or null. */
async function readUuid(): Promise<string | null> {
  const text = (await readFile('/sys/class/dmi/id/product_uuid', 'utf8')).trim();
  return /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(text) ? text.toLowerCase() : null;
}
