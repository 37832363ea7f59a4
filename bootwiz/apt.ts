// Debian's archive through the server's own apt: `apt-cache show` to resolve a package to a
// version and its SHA-256, `apt-get download` into a cache folder (apt checks the archive's
// signatures on the index the hash comes from), and our own SHA-256 check of every .deb against
// the lock. Every failure names the package, the version and what apt said.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetbootError } from '../platform/runtime/errors.ts';
import type { LockEntry } from './lock.ts';

export class AptError extends NetbootError {
  constructor(readonly pkg: string, readonly version: string | null, readonly aptSaid: string, what: string) {
    super('BOOTWIZ_APT_FAILED', `${what} ${pkg}${version === null ? '' : ` version ${version}`}: ${aptSaid.trim() || 'apt said nothing'}`);
  }
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[], cwd?: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? ((err as unknown as { code: number }).code) : 127;
      resolve({ code, stdout, stderr: err !== null && stderr === '' ? err.message : stderr });
    });
  });
}

/** One stanza of `apt-cache show` as fields. */
export function parseStanzas(text: string): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fields: Record<string, string> = {};
    let last: string | null = null;
    for (const line of block.split('\n')) {
      if (/^\s/.test(line) && last !== null) fields[last] += `\n${line.trim()}`;
      else {
        const m = /^([A-Za-z0-9-]+):\s?(.*)$/.exec(line);
        if (m !== null) fields[(last = m[1]!)] = m[2]!;
      }
    }
    if (fields.Package !== undefined) out.push(fields);
  }
  return out;
}

/** apt's candidate of `pkg`, or the given version; throws AptError when apt knows neither. */
export async function showPackage(pkg: string, version: string | null): Promise<Record<string, string>> {
  const r = await run('apt-cache', ['show', '--no-all-versions', version === null ? pkg : `${pkg}=${version}`]);
  const stanza = parseStanzas(r.stdout).find((s) => s.Package === pkg && (version === null || s.Version === version));
  if (r.code !== 0 || stanza === undefined) {
    // apt-cache says nothing about a version it lacks; apt-get (asked for URIs only) does.
    const said = r.stderr.trim() || (await run('apt-get', ['download', '--print-uris', version === null ? pkg : `${pkg}=${version}`], tmpdir())).stderr.trim();
    throw new AptError(pkg, version, said || (version === null ? `no package ${pkg} in apt's lists` : `apt has no version ${version} of ${pkg}`), 'apt cannot fetch');
  }
  return stanza;
}

/**
 * The lock entry of a package as apt knows it (candidate version unless `version` is given). A
 * candidate apt has no archive for (installed from elsewhere, e.g. a nodejs from another vendor
 * that only dpkg's status lists) gives way to the newest version an archive has.
 */
export async function resolveEntry(pkg: string, version: string | null = null): Promise<LockEntry> {
  let s = await showPackage(pkg, version);
  if (version === null && (s.SHA256 === undefined || s.Filename === undefined)) {
    const all = parseStanzas((await run('apt-cache', ['show', pkg])).stdout).filter((x) => x.Package === pkg && x.SHA256 !== undefined && x.Filename !== undefined);
    const newest = all.sort((a, b) => compareDebVersions(b.Version ?? '', a.Version ?? ''))[0];
    if (newest !== undefined) s = newest;
  }
  if (s.SHA256 === undefined || s.Filename === undefined) throw new AptError(pkg, s.Version ?? version, 'the stanza has no SHA256 or Filename', 'apt-cache show');
  return { package: pkg, version: s.Version!, sha256: s.SHA256, filename: s.Filename };
}

/** Debian's version order (epoch, then upstream and revision by dpkg's rules: `~` before all). */
export function compareDebVersions(a: string, b: string): number {
  const split = (v: string): [number, string, string] => {
    const m = /^(?:(\d+):)?(.*?)(?:-([^-]*))?$/.exec(v)!;
    return [Number(m[1] ?? 0), m[2] ?? '', m[3] ?? ''];
  };
  const order = (c: string): number => (c === '~' ? -1 : c === '' ? 0 : /[A-Za-z]/.test(c) ? c.charCodeAt(0) : c.charCodeAt(0) + 256);
  const part = (x: string, y: string): number => {
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      while ((i < x.length && !/\d/.test(x[i]!)) || (j < y.length && !/\d/.test(y[j]!))) {
        const cx = i < x.length && !/\d/.test(x[i]!) ? x[i]! : '';
        const cy = j < y.length && !/\d/.test(y[j]!) ? y[j]! : '';
        if (order(cx) !== order(cy)) return order(cx) - order(cy);
        if (cx !== '') i++;
        if (cy !== '') j++;
        if (cx === '' && cy === '') break;
      }
      const nx = /^\d*/.exec(x.slice(i))![0];
      const ny = /^\d*/.exec(y.slice(j))![0];
      i += nx.length;
      j += ny.length;
      const d = Number(nx || 0) - Number(ny || 0);
      if (d !== 0) return d;
    }
    return 0;
  };
  const [ea, ua, ra] = split(a);
  const [eb, ub, rb] = split(b);
  return ea !== eb ? ea - eb : part(ua, ub) || part(ra, rb);
}

/** The `linux-image-*` package a metapackage such as linux-image-amd64 depends on. */
export async function resolveKernel(meta: string): Promise<LockEntry> {
  const s = await showPackage(meta, null);
  const dep = (s.Depends ?? '').split(',').map((d) => d.trim()).find((d) => /^linux-image-\d/.test(d));
  const m = dep === undefined ? null : /^(\S+)\s*\(=\s*([^)]+)\)/.exec(dep) ?? /^(\S+)/.exec(dep);
  if (m === null) throw new AptError(meta, s.Version ?? null, `its Depends names no linux-image-<version> package (${s.Depends ?? 'none'})`, 'resolving the kernel of');
  return resolveEntry(m[1]!, m[2]?.trim() ?? null);
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The cache's name for an entry: by hash, so two versions never collide and a hit is verified. */
export function cachedDebPath(cacheDir: string, e: LockEntry): string {
  return join(cacheDir, `${e.package}_${e.sha256.slice(0, 16)}.deb`);
}

/**
 * The .deb of a lock entry in the cache: reused when its SHA-256 matches, else downloaded with
 * `apt-get download PKG=VERSION` (in a scratch folder, moved in only once verified). Checks
 * that apt still lists this version with this hash, so a lock cannot name a file apt would not
 * vouch for.
 */
export async function fetchDeb(cacheDir: string, e: LockEntry): Promise<{ path: string; downloaded: boolean }> {
  mkdirSync(cacheDir, { recursive: true });
  const target = cachedDebPath(cacheDir, e);
  if (existsSync(target) && (await sha256File(target)) === e.sha256) return { path: target, downloaded: false };
  const listed = await resolveEntry(e.package, e.version);
  if (listed.sha256 !== e.sha256) {
    throw new AptError(e.package, e.version, `the lock says SHA-256 ${e.sha256} but apt's index says ${listed.sha256}`, 'verifying');
  }
  const scratch = join(cacheDir, `.download-${process.pid}-${Date.now()}`);
  mkdirSync(scratch, { recursive: true });
  try {
    const r = await run('apt-get', ['download', '-q', `${e.package}=${e.version}`], scratch);
    if (r.code !== 0) throw new AptError(e.package, e.version, r.stderr || r.stdout, 'apt-get download');
    const deb = readdirSync(scratch).find((n) => n.endsWith('.deb'));
    if (deb === undefined) throw new AptError(e.package, e.version, `apt-get download wrote no .deb (${(r.stderr || r.stdout).trim()})`, 'apt-get download');
    const got = await sha256File(join(scratch, deb));
    if (got !== e.sha256) throw new AptError(e.package, e.version, `downloaded ${deb} has SHA-256 ${got}, expected ${e.sha256}`, 'verifying');
    renameSync(join(scratch, deb), target);
    return { path: target, downloaded: true };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
