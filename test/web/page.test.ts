// The live status page in a real browser (Debian's Chromium, headless, through playwright-core):
// it loads from the site server alone (every request the page makes is recorded: none leaves our
// address), a machine shows within a second of its DHCP request without a reload, it fits a
// phone's width, and a screenshot is kept in test/web/artifacts/. A client that is not on
// loopback (a network namespace made here) is refused without the token and served with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';
import { STATUS_PAGE } from '../../web/status-page.ts';
import { inProcess } from '../cli/cli-run.ts';
import { startWebSite } from './web-site.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = join(import.meta.dirname, 'artifacts');

test('status page: live machines within a second, nothing from outside, a phone\'s width, a screenshot', async (t) => {
  assert.equal(spawnSync('sh', ['-c', `test -x ${CHROMIUM}`]).status, 0, 'chromium is needed (installed by .ci/run)');
  const s = await startWebSite();
  t.after(() => s.stop());
  const profile = mkdtempSync(join(tmpdir(), 'netboot-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, headless: true, viewport: { width: 1200, height: 900 } });
  t.after(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  const requested: string[] = [];
  context.on('request', (r) => requested.push(r.url()));
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });

  await page.goto(`${s.url}/`);
  await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live', undefined, { timeout: 30_000 });
  assert.match(await page.locator('#services').innerText(), /server\s+serving/);

  // Each row's appearance is stamped in the page; the server stamps the request it saw.
  await page.evaluate(() => {
    const w = window as unknown as { appeared: Record<string, number> };
    w.appeared = {};
    new MutationObserver(() => {
      for (const tr of document.querySelectorAll<HTMLElement>('#machines tr[data-key]')) w.appeared[tr.dataset.key!] ??= Date.now();
    }).observe(document.getElementById('machines')!, { childList: true, subtree: true });
  });
  const macs = ['52:54:00:12:34:58', '52:54:00:aa:00:01'];
  macs.forEach((mac, i) => s.discover(0x2000 + i, mac));
  for (const mac of macs) await page.waitForSelector(`#machines tr[data-key="${mac}"]`, { timeout: 30_000 });
  const snapshot = (await (await fetch(`${s.url}/snapshot.json`)).json()) as { machines: Array<{ mac: string; atMs: number }> };
  const appeared = await page.evaluate(() => (window as unknown as { appeared: Record<string, number> }).appeared);
  for (const mac of macs) {
    const seenAt = snapshot.machines.find((m) => m.mac === mac)!.atMs;
    const delayMs = appeared[mac]! - seenAt;
    assert.ok(delayMs <= 1000, `${mac} showed ${delayMs} ms after the server saw its request`);
  }
  const known = await page.locator('#machines tr[data-key="52:54:00:12:34:58"]').innerText();
  assert.match(known, /efi-x64/);
  assert.match(known, /answered: snponly\.efi/);
  assert.match(await page.locator('#machines tr[data-key="52:54:00:aa:00:01"]').innerText(), /no offer: .*next device/);
  assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation').length), 1, 'no reload');

  // A rejected SBS file and a published package show up too, still without a reload.
  writeFileSync(join(s.site.config.paths.sbs, 'broken-clients.sbs'), JSON.stringify({ sbs: 1, id: 'not-a-uuid', issued: new Date().toISOString(), kind: 'clients', clients: [] }));
  const pkg = join(s.site.dir, 'pkg');
  mkdirSync(pkg);
  writeFileSync(join(pkg, 'vmlinuz'), randomBytes(64 * 1024));
  const published = await inProcess(['--config', s.site.configPath, 'package', 'publish', pkg, '--id', 'linux-pe', '--kind', 'image']);
  assert.equal(published.code, 0, published.stderr);
  await page.waitForFunction(() => /broken-clients\.sbs/.test(document.getElementById('rejected')!.textContent ?? ''), undefined, { timeout: 30_000 });
  await page.waitForFunction(() => /linux-pe \(image\)test-siteready/.test(document.getElementById('packages')!.textContent ?? ''), undefined, { timeout: 30_000 });
  assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation').length), 1, 'no reload');

  // A phone: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than a 390 px screen`);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'status-page-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1200, height: 900 });
  await page.screenshot({ path: join(ARTIFACTS, 'status-page.png'), fullPage: true });

  const origin = new URL(s.url).origin;
  const outside = requested.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('data:'));
  assert.deepEqual(outside, [], 'the page fetched something from elsewhere');
  assert.deepEqual(requested.map((u) => new URL(u).pathname).filter((p, i, a) => a.indexOf(p) === i).sort(), ['/', '/events']);
  assert.deepEqual(problems, []);
});

test('remote clients: refused without the token, served with it; loopback needs none', async (t) => {
  assert.equal(spawnSync('sh', ['-c', 'command -v ip && command -v curl']).status, 0, 'ip (iproute2) and curl are needed');
  const token = randomBytes(24).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'netboot-web-token-'));
  writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
  // A client in its own network namespace, 10.213.x.2, reaching the host's end at 10.213.x.1.
  const n = process.pid % 250;
  const ns = `nbweb${process.pid}`;
  const host = `10.213.${n}.1`;
  const sh = (cmd: string): string => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
  sh(`ip netns add ${ns} && ip link add nbw${n}h type veth peer name nbw${n}n && ip link set nbw${n}n netns ${ns} && ip addr add ${host}/30 dev nbw${n}h && ip link set nbw${n}h up && ip -n ${ns} addr add 10.213.${n}.2/30 dev nbw${n}n && ip -n ${ns} link set nbw${n}n up && ip -n ${ns} link set lo up`);
  t.after(() => {
    spawnSync('sh', ['-c', `ip link del nbw${n}h; ip netns del ${ns}`]);
    rmSync(dir, { recursive: true, force: true });
  });
  const s = await startWebSite(`[web]\nbind = "0.0.0.0"\ntoken_file = "${join(dir, 'token')}"\n`);
  t.after(() => s.stop());
  const port = new URL(s.url).port;
  const remote = (path: string, ...curl: string[]): { status: string; body: string } => {
    const out = execFileSync('ip', ['netns', 'exec', ns, 'curl', '-sS', '--max-time', '20', '-w', '\n%{http_code}', ...curl, `http://${host}:${port}${path}`], { encoding: 'utf8' });
    const i = out.lastIndexOf('\n');
    return { body: out.slice(0, i), status: out.slice(i + 1) };
  };
  for (const path of ['/metrics', '/', '/events', '/snapshot.json']) {
    assert.equal(remote(path).status, '401', `${path} without the token`);
    assert.equal(remote(path, '-H', 'Authorization: Bearer wrong-token-of-some-length').status, '401', `${path} with a wrong token`);
  }
  const metrics = remote('/metrics', '-H', `Authorization: Bearer ${token}`);
  assert.equal(metrics.status, '200');
  assert.match(metrics.body, /^netboot_service_up\{service="server"\} 1$/m);
  const page = remote(`/?token=${token}`);
  assert.equal(page.status, '200');
  assert.match(page.body, /<title>netboot<\/title>/);
  // Loopback: no token needed.
  assert.equal((await fetch(`${s.url}/metrics`)).status, 200);
});

test('status page: a job\'s progress bar advances as its snapshots arrive', async (t) => {
  // The page alone, fed by a stand-in for /events: the jobs route is the jobs feature's (GET /jobs).
  let done = 0;
  const snapshot = (): object => ({
    at: new Date().toISOString(), site: 'lab', services: [], machines: [], packages: [], peers: [], rejected: [],
    jobs: [{ jobId: 'j1', mac: '52:54:00:00:00:aa', task: 'deploy', state: 'running', phase: 'writing', bytesDone: done, bytesTotal: 1000, reason: null }],
    figures: { pxeRequests: 0, pxeOffers: 0, tftpActive: 0, tftpTransfers: 0, tftpBytes: 0, sbsApplied: 0, sbsRejected: 0 },
  });
  const server = createServer((req, res) => {
    if (req.url === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end(STATUS_PAGE);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const send = (): void => void res.write(`event: snapshot\ndata: ${JSON.stringify(snapshot())}\n\n`);
    send();
    const timer = setInterval(() => {
      done = Math.min(1000, done + 100);
      send();
    }, 100);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const profile = mkdtempSync(join(tmpdir(), 'netboot-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, headless: true });
  t.after(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
  const bar = page.locator('#jobs [role=progressbar]');
  await bar.waitFor({ timeout: 30_000 });
  const first = Number(await bar.getAttribute('aria-valuenow'));
  await page.waitForFunction((from) => Number(document.querySelector('#jobs [role=progressbar]')?.getAttribute('aria-valuenow')) > from, first, { timeout: 30_000 });
  await page.waitForFunction(() => document.querySelector('#jobs [role=progressbar]')?.getAttribute('aria-valuenow') === '100', undefined, { timeout: 30_000 });
  assert.match((await page.locator('#jobs').textContent()) ?? '', /52:54:00:00:00:aadeployrunning · writing/);
});
