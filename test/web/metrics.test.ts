// The scrape address of a whole site server (`netboot run`, four processes): the figures move as
// machines ask for PXE offers and fetch files over TFTP, every service's samples carry its
// `service` label, the exposition passes `promtool check metrics`, and a real Prometheus started
// here scrapes it and answers a query through its HTTP API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort, waitFor } from '../helpers/env.ts';
import { KNOWN_MAC, sample, startWebSite } from './web-site.ts';

const scrape = async (url: string): Promise<string> => {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
};

test('metrics: PXE and TFTP figures move, per service; promtool accepts them; Prometheus scrapes and answers', async (t) => {
  for (const tool of ['promtool', 'prometheus', 'curl']) assert.equal(spawnSync('sh', ['-c', `command -v ${tool}`]).status, 0, `${tool} is needed (installed by .ci/run)`);
  const s = await startWebSite();
  t.after(() => s.stop());

  const before = await scrape(s.url);
  for (const service of ['interface', 'server', 'mtftp', 'signal']) {
    assert.ok(sample(before, 'process_cpu_user_seconds_total', { service }) >= 0 && before.includes(`process_resident_memory_bytes{service="${service}"}`), `process metrics of ${service}`);
    assert.equal(sample(before, 'netboot_service_up', { service }), 1, `${service} up`);
  }
  assert.equal(sample(before, 'netboot_sbs_files_applied_total', { service: 'interface' }), 3, 'the three SBS files applied');
  const offered0 = sample(before, 'netboot_pxe_requests_total', { decision: 'offered' });

  // One known machine (offered), one unknown (the config sends it to its next device), one TFTP transfer.
  s.discover(0x1001);
  s.discover(0x1002, '52:54:00:99:00:01');
  const size = await s.tftpGet();
  assert.equal(size, 256 * 1024);

  const after = await waitFor('the figures to move', async () => {
    const text = await scrape(s.url);
    return sample(text, 'netboot_pxe_requests_total', { decision: 'offered' }) > offered0
      && sample(text, 'netboot_pxe_requests_total', { decision: 'no-offer' }) >= 1
      && sample(text, 'netboot_tftp_transfers_total', { outcome: 'complete' }) >= 1 ? text : undefined;
  }, 30_000, 200);
  assert.equal(sample(after, 'netboot_pxe_requests_total', { service: 'server', arch: 'efi-x64', decision: 'offered', reason: 'offer' }), 1, after);
  assert.equal(sample(after, 'netboot_pxe_requests_total', { service: 'server', arch: 'efi-x64', decision: 'no-offer', reason: 'boot-local' }), 1, after);
  assert.equal(sample(after, 'netboot_pxe_offer_latency_seconds_count', { service: 'server', port: 'dhcp' }), 1);
  assert.ok(sample(after, 'netboot_tftp_sent_bytes_total', { service: 'mtftp' }) >= 256 * 1024);
  assert.equal(sample(after, 'netboot_tftp_active_transfers', { service: 'mtftp' }), 0);
  assert.equal(sample(after, 'netboot_tftp_transfer_duration_seconds_count', { outcome: 'complete' }), 1);
  assert.match(after, /^netboot_state_feed_connected 1$/m);
  assert.match(after, /^netboot_state_feed_lag_changes 0$/m, 'the server has applied every change');
  assert.ok(!after.includes(KNOWN_MAC) && !after.includes('52-54-00-12-34-58'), 'no MAC in any label');

  // A file that is not there: an error by its TFTP name.
  await assert.rejects(s.tftpGet('missing.efi'));
  const missing = await waitFor('the TFTP error counted', async () => {
    const text = await scrape(s.url);
    return sample(text, 'netboot_tftp_errors_total', { reason: 'file-not-found' }) >= 1 ? text : undefined;
  }, 10_000, 200);

  // promtool: the exposition parses and follows the naming conventions.
  const check = spawnSync('promtool', ['check', 'metrics'], { input: missing, encoding: 'utf8' });
  assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);

  // A real Prometheus on loopback, in its own folder, scraping every second.
  const dir = mkdtempSync(join(tmpdir(), 'netboot-prometheus-'));
  const port = await freeTcpPort();
  const target = new URL(s.url).host;
  writeFileSync(join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: netboot\n    static_configs:\n      - targets: ['${target}']\n`);
  const prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let promErr = '';
  prom.stderr.on('data', (d: Buffer) => (promErr = (promErr + d.toString()).slice(-4000)));
  const promExited = new Promise((resolve) => prom.once('exit', resolve));
  t.after(async () => {
    if (prom.exitCode === null) prom.kill('SIGTERM');
    const timer = setTimeout(() => prom.kill('SIGKILL'), 10_000);
    await promExited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  });
  const query = async (q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> => {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await res.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    assert.equal(body.status, 'success');
    return body.data.result;
  };
  const result = await waitFor('Prometheus to answer from its scrape', async () => {
    try {
      const r = await query('sum by (service, arch) (netboot_pxe_requests_total{decision="offered"})');
      return r.length > 0 ? r : undefined;
    } catch {
      return undefined; // not listening yet
    }
  }, 60_000, 500).catch((err: Error) => assert.fail(`${err.message}\nprometheus: ${promErr}`));
  assert.deepEqual(result[0]!.metric, { service: 'server', arch: 'efi-x64' });
  assert.ok(Number(result[0]!.value[1]) >= 1);
  const up = await query('up{job="netboot"}');
  assert.equal(up[0]?.value[1], '1', 'the target is up');

  // The Grafana dashboard of docs/grafana: every query is valid PromQL for this Prometheus.
  const dashboard = JSON.parse(readFileSync(join(import.meta.dirname, '../../docs/grafana/netboot-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
  for (const panel of dashboard.panels) {
    for (const { expr } of panel.targets) await query(expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*'));
  }
  // Once Prometheus holds two samples, rate() has a value for the offers.
  const byDecision = dashboard.panels.find((p) => p.title === 'PXE requests by decision')!.targets[0]!.expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
  await waitFor('the dashboard to see the offers', async () => ((await query(byDecision)).some((r) => r.metric.decision === 'offered') ? true : undefined), 30_000, 500);
});
