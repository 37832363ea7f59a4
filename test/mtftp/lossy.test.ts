// Downloads across a lossy, reordering link: a network namespace joined to this one by a veth
// pair whose two ends drop 10% of packets and reorder others. The service runs here on the host
// end; real clients (atftp windowsize 8, tftp-hpa lock-step) run in the namespace.
//
// The impairment is `tc netem loss 10% reorder 25% 50% delay 1ms`. Kernels built without netem
// (this project's dev VMs) get the same effect from what they do have: an HTB root whose classes
// are chosen per packet by a classic-BPF classifier reading the kernel's random number: 10% go
// to a class whose TBF bucket is smaller than any packet (dropped), 25% to a slower class that
// later packets overtake (reordered), the rest pass. Which one ran is printed as a diagnostic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { md5, md5File, putFile, run, startService, type RunningService } from './helpers.ts';

const tag = `${process.pid % 10000}${randomInt(100, 999)}`;
const NS = `nbmt-${tag}`;
const HOST_IF = `nbh${tag}`;
const NS_IF = `nbc${tag}`;
const NET = `10.${randomInt(200, 250)}.${randomInt(0, 256)}`;
const HOST_IP = `${NET}.1`;
const NETEM = ['netem', 'loss', '10%', 'reorder', '25%', '50%', 'delay', '1ms'];

// Classic BPF: A = random % 100; A < 10 -> class 1:30 (drop); A < 35 -> 1:20 (slow); else 1:10.
const RANDOM_CLASSIFIER = '7,32 0 0 4294963256,148 0 0 100,53 1 0 10,6 0 0 65584,53 1 0 35,6 0 0 65568,6 0 0 65552';

let impairment = '';

/** `netns` null: this namespace. Returns which impairment was installed. */
function impair(dev: string, netns: string | null): string {
  const tc = (...args: string[]): void => (netns === null ? sh('tc', ...args) : sh('ip', 'netns', 'exec', netns, 'tc', ...args));
  try {
    tc('qdisc', 'add', 'dev', dev, 'root', ...NETEM);
    return `tc ${NETEM.join(' ')}`;
  } catch (err) {
    if (!String((err as { stderr?: unknown }).stderr ?? err).includes('qdisc kind is unknown')) throw err;
  }
  tc('qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '10', 'r2q', '100000');
  tc('class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '10gbit');
  tc('class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '50mbit', 'burst', '1600', 'cburst', '1600');
  tc('qdisc', 'add', 'dev', dev, 'parent', '1:20', 'handle', '20:', 'pfifo', 'limit', '30');
  tc('class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:30', 'htb', 'rate', '10gbit');
  tc('qdisc', 'add', 'dev', dev, 'parent', '1:30', 'handle', '30:', 'tbf', 'rate', '1kbit', 'burst', '10', 'limit', '10');
  tc('filter', 'add', 'dev', dev, 'parent', '1:', 'bpf', 'bytecode', RANDOM_CLASSIFIER);
  return 'no netem in this kernel: tc htb + cls_bpf random classifier (10% dropped, 25% through a slower class)';
}

let svc: RunningService | null = null;
let out = '';
const files = new Map<string, Buffer>();

function sh(cmd: string, ...args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

before(async () => {
  sh('ip', 'netns', 'add', NS);
  sh('ip', 'link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF);
  sh('ip', 'link', 'set', NS_IF, 'netns', NS);
  sh('ip', 'addr', 'add', `${HOST_IP}/24`, 'dev', HOST_IF);
  sh('ip', 'link', 'set', HOST_IF, 'up');
  sh('ip', '-n', NS, 'addr', 'add', `${NET}.2/24`, 'dev', NS_IF);
  sh('ip', '-n', NS, 'link', 'set', NS_IF, 'up');
  sh('ip', '-n', NS, 'link', 'set', 'lo', 'up');
  // Static neighbours: ARP crosses the impaired link too, and a lost ARP reply holds every packet
  // toward that address for a second or more (seen: an RRQ arriving after the client's own retry,
  // a client's retries all timing out). This test is about TFTP's recovery, not ARP's.
  const mac = (dev: string, netns: string | null): string => {
    const args = ['-j', ...(netns === null ? [] : ['-n', netns]), 'link', 'show', 'dev', dev];
    return (JSON.parse(execFileSync('ip', args, { encoding: 'utf8' })) as { address: string }[])[0]!.address;
  };
  sh('ip', 'neigh', 'replace', `${NET}.2`, 'lladdr', mac(NS_IF, NS), 'dev', HOST_IF, 'nud', 'permanent');
  sh('ip', '-n', NS, 'neigh', 'replace', HOST_IP, 'lladdr', mac(HOST_IF, null), 'dev', NS_IF, 'nud', 'permanent');
  impairment = impair(HOST_IF, null);
  impair(NS_IF, NS);
  // Short server timeout: recovery is driven by our retransmissions, not the clients' 1 s.
  svc = await startService({ mtftp: { bind: HOST_IP, timeoutMs: 40, retries: 30 } });
  out = mkdtempSync(join(tmpdir(), 'netboot-mtftp-lossy-'));
  for (const [name, size] of [['a.bin', 1], ['b.bin', 30_000], ['c.bin', 100_000], ['d.bin', 150_000], ['e.bin', 1468 * 40]] as const) {
    files.set(name, putFile(svc.root, name, size));
  }
});

after(async () => {
  await svc?.stop();
  if (out !== '') rmSync(out, { recursive: true, force: true });
  try {
    sh('ip', 'netns', 'del', NS); // takes the veth pair with it
  } catch {
    // not created
  }
  try {
    sh('ip', 'link', 'del', HOST_IF);
  } catch {
    // already gone with the namespace
  }
});

async function atftp(name: string): Promise<string> {
  const dest = join(out, `atftp-${name}`);
  const r = await run(
    'ip',
    ['netns', 'exec', NS, 'atftp', '--tftp-timeout', '1', '--get', '-r', name, '-l', dest, '--option', 'blksize 1468', '--option', 'windowsize 8', '--option', 'tsize 0', HOST_IP, String(svc?.port)],
    { timeoutMs: 40000 },
  );
  assert.equal(r.code, 0, `atftp ${name}: ${r.stderr}`);
  return dest;
}

async function hpa(name: string): Promise<string> {
  const dest = join(out, `hpa-${name}`);
  const script = `mode binary\nrexmt 1\ntimeout 40\nget ${name} ${dest}\nquit\n`;
  const r = await run('ip', ['netns', 'exec', NS, 'tftp', HOST_IP, String(svc?.port)], { timeoutMs: 45000, input: script });
  assert.equal(r.code, 0, `tftp-hpa ${name}: ${r.stderr}`);
  return dest;
}

test('every download across a lossy, reordering link is intact (atftp windowsize 8, tftp-hpa)', async (t) => {
  t.diagnostic(`impairment: ${impairment}`);
  const jobs: Promise<[string, string]>[] = [];
  for (const name of ['a.bin', 'c.bin', 'd.bin', 'e.bin']) jobs.push(atftp(name).then((p) => [name, p]));
  for (const name of ['a.bin', 'b.bin', 'e.bin']) jobs.push(hpa(name).then((p) => [name, p]));
  const results = await Promise.all(jobs);
  for (const [name, path] of results) assert.equal(md5File(path), md5(files.get(name) as Buffer), `${path} differs`);
  // The link really was lossy: the service had to retransmit.
  const retransmits = svc?.log.records.filter((r) => r.msg === 'transfer complete').reduce((n, r) => n + Number(r.retransmits), 0);
  t.diagnostic(`${results.length} downloads intact, ${retransmits} retransmissions by the service`);
  assert.ok((retransmits ?? 0) > 0, 'no retransmissions: the impairment was not in the path');
});
