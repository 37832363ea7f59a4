// Which chunking serves disks best: fixed windows aligned to the partition start (the used span
// of each window, unused bytes zeroed) at several sizes, against content-defined chunks (the
// package store's FastCDC, 16/64/256 KiB) over the stream of used ranges. A realistic tree
// (/usr/share/doc, man, locale, /usr/lib/python3.11: ~430 MB) in a 2 GiB ext4; then a 1 % change
// as an upgrade makes it (files rewritten, some with bytes inserted, a few added and removed,
// via debugfs: no mount). Prints, per scheme: chunks, bytes new in the second capture (dedup
// across two captures), and bytes a re-deploy onto a disk holding the first must write
// (compare in place).
// Run: node --import tsx bench/imaging/chunking.ts [workdir]
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Chunker } from '../../packages/chunker.ts';
import { maskUnused, totalLength, windowSpans, type Extent } from '../../images/extents.ts';
import { fsUsage } from '../../images/used-blocks.ts';

const MiB = 1024 * 1024;
const work = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'chunking-'));
const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

function reader(path: string): (o: number, l: number) => Buffer {
  const fd = openSync(path, 'r');
  return (o, l) => {
    const b = Buffer.alloc(l);
    readSync(fd, b, 0, l, o);
    return b;
  };
}

const tree = join(work, 'tree');
execFileSync('mkdir', ['-p', tree]);
for (const d of ['/usr/share/doc', '/usr/share/man', '/usr/share/locale', '/usr/lib/python3.11']) execFileSync('cp', ['-a', d, tree]);
const a = join(work, 'a.img');
const b = join(work, 'b.img');
execFileSync('truncate', ['-s', '2G', a]);
execFileSync('mkfs.ext4', ['-q', '-F', '-d', tree, a]);
copyFileSync(a, b);

// The 1 % change: rewrite files (half with 100 bytes inserted in the middle, half with bytes
// changed in place) until ~1 % of the used bytes, add 1 MiB of new files, remove a few.
const files: { path: string; size: number }[] = [];
const walk = (dir: string, rel: string): void => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) walk(join(dir, e.name), `${rel}/${e.name}`);
    else if (e.isFile()) files.push({ path: `${rel}/${e.name}`, size: statSync(join(dir, e.name)).size });
  }
};
walk(tree, '');
const usedA = totalLength((await fsUsage(async (o, l) => reader(a)(o, l), statSync(a).size)).used);
let budget = Math.floor(usedA / 100) - MiB;
const cmds: string[] = [];
let k = 0;
const seededOrder = files.filter((f) => f.size > 8192).sort((x, y) => (sha(x.path) < sha(y.path) ? -1 : 1));
for (const f of seededOrder) {
  if (budget <= 0) break;
  const content = readFileSync(join(tree, f.path));
  const mid = content.length >> 1;
  const next = k % 2 === 0 ? Buffer.concat([content.subarray(0, mid), randomBytes(100), content.subarray(mid)]) : Buffer.concat([content.subarray(0, mid), randomBytes(64), content.subarray(mid + 64)]);
  const tmp = join(work, `new-${k++}`);
  writeFileSync(tmp, next);
  cmds.push(`rm ${f.path}`, `write ${tmp} ${f.path}`);
  budget -= f.size;
}
for (let i = 0; i < 4; i++) {
  const tmp = join(work, `add-${i}`);
  writeFileSync(tmp, randomBytes(MiB / 4));
  cmds.push(`write ${tmp} /added-${i}.bin`);
}
for (const f of seededOrder.slice(-5)) cmds.push(`rm ${f.path}`);
writeFileSync(join(work, 'cmds'), `${cmds.join('\n')}\n`);
execFileSync('debugfs', ['-w', '-f', join(work, 'cmds'), b], { stdio: 'ignore' });

const readA = reader(a);
const readB = reader(b);
const ua = (await fsUsage(async (o, l) => readA(o, l), statSync(a).size)).used;
const ub = (await fsUsage(async (o, l) => readB(o, l), statSync(b).size)).used;
console.log(`tree ${files.length} files; used A ${(totalLength(ua) / MiB).toFixed(1)} MiB, B ${(totalLength(ub) / MiB).toFixed(1)} MiB; ${k} files rewritten, 1 MiB added`);

interface Piece { readonly ranges: readonly Extent[]; readonly digest: string; readonly length: number }

function fixed(read: (o: number, l: number) => Buffer, used: readonly Extent[], w: number): Piece[] {
  return windowSpans(used, w).map((s) => {
    const buf = read(s.start, s.length);
    maskUnused(buf, s.start, used);
    return { ranges: [s], digest: sha(buf), length: s.length };
  });
}

function cdc(read: (o: number, l: number) => Buffer, used: readonly Extent[]): Piece[] {
  const out: Piece[] = [];
  const c = new Chunker();
  let cur: Extent[] = [];
  let hash = createHash('sha256');
  let len = 0;
  const add = (start: number, buf: Buffer, from: number, to: number): void => {
    if (to <= from) return;
    cur.push({ start: start + from, length: to - from });
    hash.update(buf.subarray(from, to));
    len += to - from;
  };
  const close = (): void => {
    if (len === 0) return;
    out.push({ ranges: cur, digest: hash.digest('hex'), length: len });
    cur = [];
    hash = createHash('sha256');
    len = 0;
  };
  for (const e of used) {
    for (let at = e.start; at < e.start + e.length; at += 4 * MiB) {
      const n = Math.min(4 * MiB, e.start + e.length - at);
      const buf = read(at, n);
      let prev = 0;
      for (const cut of c.push(buf)) {
        add(at, buf, prev, cut);
        close();
        prev = cut;
      }
      add(at, buf, prev, n);
    }
  }
  c.end();
  close();
  return out;
}

function inPlace(pieces: readonly Piece[], target: (o: number, l: number) => Buffer, used: readonly Extent[]): number {
  let write = 0;
  for (const p of pieces) {
    const h = createHash('sha256');
    for (const r of p.ranges) {
      const buf = target(r.start, r.length);
      maskUnused(buf, r.start, used);
      h.update(buf);
    }
    if (h.digest('hex') !== p.digest) write += p.length;
  }
  return write;
}

const rows: string[][] = [['scheme', 'chunks', 'stored A MiB', 'new in B MiB', 'new %', 're-deploy writes MiB', 'write %']];
for (const [name, mk] of [
  ['fixed 64 KiB', (r: typeof readA, u: Extent[]) => fixed(r, u, 64 * 1024)],
  ['fixed 256 KiB', (r: typeof readA, u: Extent[]) => fixed(r, u, 256 * 1024)],
  ['fixed 1 MiB', (r: typeof readA, u: Extent[]) => fixed(r, u, MiB)],
  ['fixed 4 MiB', (r: typeof readA, u: Extent[]) => fixed(r, u, 4 * MiB)],
  ['CDC 16/64/256 KiB', (r: typeof readA, u: Extent[]) => cdc(r, u)],
] as const) {
  const pa = mk(readA, ua as Extent[]);
  const pb = mk(readB, ub as Extent[]);
  const have = new Set(pa.map((p) => p.digest));
  const storedA = new Map(pa.map((p) => [p.digest, p.length]));
  let fresh = 0;
  const seen = new Set<string>();
  for (const p of pb) if (!have.has(p.digest) && !seen.has(p.digest)) { seen.add(p.digest); fresh += p.length; }
  const writes = inPlace(pb, readA, ub);
  const usedB = totalLength(ub);
  rows.push([name, String(pb.length), ([...storedA.values()].reduce((x, y) => x + y, 0) / MiB).toFixed(1), (fresh / MiB).toFixed(2), ((100 * fresh) / usedB).toFixed(2), (writes / MiB).toFixed(2), ((100 * writes) / usedB).toFixed(2)]);
}
for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(20) : c.padStart(12))).join(' '));
if (process.argv[2] === undefined) rmSync(work, { recursive: true, force: true });
