// The three TFTP servers the bench compares, each a child process on 127.0.0.1 serving the same
// root: netboot's mtftp (its real entry point), tftpd-hpa (`in.tftpd -L`, forks per transfer),
// and atftpd (threads), unpacked privately from the Debian package so it does not replace
// tftpd-hpa's /usr/sbin/in.tftpd. CPU time comes from a cgroup per server (so tftpd-hpa's
// per-transfer forks count), else from /proc/<pid>/stat.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processCpuSeconds } from '../process-cpu.ts';

export interface BenchServer {
  readonly name: string;
  readonly port: number;
  readonly note: string;
  readonly child: ChildProcess;
  /** CPU seconds used so far by the server and every process it forked. */
  cpuSeconds(): number;
  /** How CPU time is measured. */
  readonly cpuSource: string;
}

/**
 * A CPU-accounting control group holding the server, so forks count too (tftpd-hpa forks one
 * process per transfer and ignores SIGCHLD, so its children never reach cutime). cgroup v2
 * (cpu.stat) or v1 (cpuacct.usage); null when neither can be created.
 */
function cpuGroup(name: string, pid: number): { read(): number; remove(): void } | null {
  const candidates = [
    { dir: `/sys/fs/cgroup/${name}`, read: (d: string) => Number(/usage_usec (\d+)/.exec(readFileSync(join(d, 'cpu.stat'), 'utf8'))?.[1]) / 1e6, probe: 'cpu.stat' },
    { dir: `/sys/fs/cgroup/cpuacct/${name}`, read: (d: string) => Number(readFileSync(join(d, 'cpuacct.usage'), 'utf8')) / 1e9, probe: 'cpuacct.usage' },
  ];
  for (const c of candidates) {
    try {
      mkdirSync(c.dir);
    } catch {
      continue;
    }
    if (!existsSync(join(c.dir, c.probe))) {
      rmdirSync(c.dir);
      continue;
    }
    writeFileSync(join(c.dir, 'cgroup.procs'), String(pid));
    return {
      read: () => c.read(c.dir),
      remove: () => {
        try {
          rmdirSync(c.dir);
        } catch {
          // still has members; the kernel keeps it until they exit
        }
      },
    };
  }
  return null;
}

const groups = new Map<ChildProcess, { remove(): void }>();

/** A started server process, its CPU counted from a cgroup of its own where one can be made. */
export function benchServer(name: string, port: number, note: string, child: ChildProcess): BenchServer {
  const group = cpuGroup(`netboot-bench-${process.pid}-${name}`, child.pid as number);
  if (group !== null) {
    groups.set(child, group);
    return { name, port, note, child, cpuSeconds: () => group.read(), cpuSource: 'cgroup' };
  }
  return { name, port, note, child, cpuSeconds: () => processCpuSeconds(child.pid as number, true), cpuSource: '/proc/<pid>/stat' };
}

export async function stopServer(s: BenchServer): Promise<void> {
  const child = s.child;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
  groups.get(child)?.remove();
}

/** netboot's mtftp on its default send path (auto), or on `sendPath` under the name netboot-<path>; `label` names another checkout's. */
export function startNetboot(repo: string, dir: string, root: string, port: number, sendPath = 'auto', label?: string): BenchServer {
  const name = label ?? (sendPath === 'auto' ? 'netboot' : `netboot-${sendPath}`);
  const config = join(dir, `${name}.toml`);
  writeFileSync(
    config,
    `[paths]\ndata = "${join(dir, `data-${name}`)}"\ntftp_root = "${root}"\n[log]\nlevel = "error"\n[mtftp]\nport = ${port}\nbind = "127.0.0.1"\nsend_path = "${sendPath}"\n`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'services/mtftp/main.ts'), '--config', config], { cwd: repo, stdio: ['ignore', 'ignore', 'inherit'] });
  return benchServer(name, port, `services/mtftp, send_path = "${sendPath}"`, child);
}

export function startTftpdHpa(root: string, port: number): BenchServer {
  const bin = '/usr/sbin/in.tftpd';
  const version = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'tftpd-hpa'], { encoding: 'utf8' }).trim();
  const child = spawn(bin, ['-L', '-s', root, '-a', `127.0.0.1:${port}`, '-u', 'nobody'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return benchServer('tftpd-hpa', port, `tftpd-hpa ${version} (no windowsize: runs lock-step)`, child);
}

/** atftpd from the Debian package, unpacked (never installed) under `cache`. */
export function atftpdBinary(cache: string): { bin: string; version: string } {
  const unpacked = join(cache, 'root');
  const bin = join(unpacked, 'usr/sbin/atftpd');
  if (!existsSync(bin)) {
    mkdirSync(cache, { recursive: true });
    execFileSync('apt-get', ['download', 'atftpd'], { cwd: cache, stdio: ['ignore', 'ignore', 'inherit'] });
    const deb = readdirSync(cache).find((f) => f.startsWith('atftpd_') && f.endsWith('.deb'));
    if (deb === undefined) throw new Error('apt-get download atftpd produced no .deb');
    execFileSync('dpkg-deb', ['-x', join(cache, deb), unpacked]);
  }
  const deb = readdirSync(cache).find((f) => f.startsWith('atftpd_') && f.endsWith('.deb'));
  return { bin, version: deb?.split('_')[1] ?? 'unknown' };
}

export function startAtftpd(cache: string, root: string, port: number): BenchServer {
  const { bin, version } = atftpdBinary(cache);
  const child = spawn(bin, ['--daemon', '--no-fork', '--port', String(port), '--bind-address', '127.0.0.1', '--logfile', '/dev/null', '--maxthread', '400', root], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return benchServer('atftpd', port, `atftpd ${version} (unpacked privately)`, child);
}
