// The pieces of the scrape address on their own: merging the services' expositions under a
// `service` label, the bounded reason classes of the PXE counter, and a `netboot top` frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { archLabel, reasonClass } from '../../boot/pxe-metrics.ts';
import { mergeExpositions } from '../../platform/metrics/merge.ts';
import { renderTop } from '../../cli/top-command.ts';
import type { SiteSnapshot } from '../../web/site-snapshot.ts';
import { isLoopback } from '../../web/web-server.ts';
import { derivedMetrics } from '../../web/derived-metrics.ts';

test('merge: one HELP and TYPE per family, every sample labelled with its service', () => {
  const a = '# HELP x_total things\n# TYPE x_total counter\nx_total{kind="a"} 1\nx_total 2\n# HELP up_seconds time\n# TYPE up_seconds gauge\nup_seconds 5\n';
  const b = '# HELP x_total things\n# TYPE x_total counter\nx_total{kind="b"} 3\n';
  assert.equal(mergeExpositions([{ service: 'server', text: a }, { service: 'mtftp', text: b }]), [
    '# HELP x_total things', '# TYPE x_total counter', 'x_total{service="server",kind="a"} 1', 'x_total{service="server"} 2', 'x_total{service="mtftp",kind="b"} 3',
    '# HELP up_seconds time', '# TYPE up_seconds gauge', 'up_seconds{service="server"} 5', '',
  ].join('\n'));
});

test('PXE reasons fall in a fixed set of classes, whatever the names in them', () => {
  const cases: Array<[string, string]> = [
    ['no offer: state incomplete: waiting for config, clients and images from the Interface', 'state-incomplete'],
    ['unknown computer and config.respond is "known"', 'unknown-machine'],
    ['no offer: unknown computer gets config.unknown (local): no offer, the machine boots from its next device', 'boot-local'],
    ['client LAB-PC-7 boots image "x", but image "x" does not exist', 'image-missing'],
    ['unknown client architecture 77 (option 93)', 'unknown-arch'],
    ['REQUEST for server 10.0.0.9, not us', 'other-server'],
    ['hops 17 is over 16 (RFC 1542 4.1.1): a relay loop or a forged packet', 'relay-hops'],
    ['not a PXE client (no option 60 PXEClient)', 'not-pxe'],
    ['malformed', 'malformed'],
    ['something new', 'other'],
  ];
  for (const [text, cls] of cases) assert.equal(reasonClass(text), cls, text);
  assert.deepEqual([archLabel(0), archLabel(7), archLabel(9), archLabel(77), archLabel(null)], ['bios', 'efi-x64', 'efi-x64', 'other', 'none']);
});

test('derived metrics: jobs by task and state, the bytes of running jobs, packages, peers', async () => {
  const text = await derivedMetrics({
    site: 'here', up: [{ service: 'server', up: true }, { service: 'mtftp', up: false }],
    packages: [{ id: 'p', kind: 'image', seq: 1, updatedAt: new Date(1000).toISOString(), sites: [{ server: 'here', state: 'syncing', seq: 1, bytesDone: 10, bytesTotal: 40, reason: null }] }],
    peers: [{ id: 'far', address: 'far:490', connected: true, authenticated: true, queued: 2, delivered: 7, lastLatencyMs: 250, lastError: null }],
    jobs: [
      { jobId: 'a', mac: 'm', task: 'deploy', state: 'running', phase: null, bytesDone: 5, bytesTotal: 50, reason: null },
      { jobId: 'b', mac: 'n', task: 'deploy', state: 'done', phase: null, bytesDone: 50, bytesTotal: 50, reason: null },
    ],
    nowMs: 11_000, feed: { interfaceSeq: 12, serverSeq: 10, connected: true },
  });
  for (const line of [
    'netboot_service_up{service="mtftp"} 0', 'netboot_state_feed_lag_changes 2', 'netboot_package_statuses{server="here",state="syncing"} 1',
    'netboot_package_sync_done_bytes{server="here"} 10', 'netboot_package_oldest_unready_age_seconds 10', 'netboot_peer_jobs_delivered_total{peer="far"} 7',
    'netboot_peer_last_job_latency_seconds{peer="far"} 0.25', 'netboot_jobs{task="deploy",state="running"} 1', 'netboot_jobs{task="deploy",state="done"} 1',
    'netboot_job_done_bytes{task="deploy"} 5', 'netboot_job_total_bytes{task="deploy"} 50',
  ]) assert.ok(text.split('\n').includes(line), `${line}\n${text}`);
});

test('loopback clients are local; everything else is remote', () => {
  for (const a of ['127.0.0.1', '127.0.0.2', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(a), a);
  for (const a of ['10.0.0.1', '::ffff:192.0.2.1', 'fe80::1', '']) assert.ok(!isLoopback(a), a);
});

test('a top frame fits 80 columns and cuts the machines to the rows left', () => {
  const now = Date.parse('2026-12-05T10:00:00Z');
  const s: SiteSnapshot = {
    at: new Date(now).toISOString(), site: 'lab',
    services: [{ service: 'server', running: true, state: 'serving', pid: 42, ports: { dhcp: 67, proxy: 4011 }, warnings: [] }],
    machines: Array.from({ length: 30 }, (_, i) => ({ mac: `52:54:00:00:00:${String(i).padStart(2, '0')}`, atMs: now - i * 1000, arch: 'efi-x64', type: 'DISCOVER', answered: false, outcome: 'no offer: unknown computer gets config.unknown (local): no offer, the machine boots from its next device', relay: null, server: null })),
    packages: [{ id: 'win11', kind: 'image', seq: 2, updatedAt: new Date(now).toISOString(), sites: [{ server: 'branch', state: 'syncing', seq: 2, bytesDone: 50, bytesTotal: 200, reason: null }] }],
    peers: [], rejected: [{ file: 'bad.sbs', field: 'clients[0].mac', problem: 'not a MAC address', at: '' }],
    jobs: [{ jobId: 'j1', mac: '52:54:00:00:00:aa', task: 'deploy', state: 'running', phase: 'writing', bytesDone: 3 * 2 ** 30, bytesTotal: 4 * 2 ** 30, reason: null }],
    figures: { pxeRequests: 30, pxeOffers: 0, tftpActive: 0, tftpTransfers: 0, tftpBytes: 0, sbsApplied: 1, sbsRejected: 1 },
  };
  const lines = renderTop(s, { width: 80, height: 24, nowMs: now });
  assert.ok(lines.every((l) => l.length <= 80), lines.join('\n'));
  assert.ok(lines.length <= 24, `${lines.length} lines`);
  assert.ok(lines.some((l) => /^win11 +branch +syncing +\[###\.+\] +25%$/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^52:54:00:00:00:00 +efi-x64 +0s +no offer: unknown computer/.test(l)));
  assert.ok(lines.some((l) => /^52:54:00:00:00:aa +deploy +running writing +\[########\.\.\] +75%$/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^bad\.sbs +clients\[0\]\.mac: not a MAC address$/.test(l)));
});

test('this process\'s registry: the families of the modules loaded, process metrics, no `_total` gauges', async () => {
  const { metricsText } = await import('../../platform/metrics/registry.ts');
  const { peerJobDelivered, packageBytesFetched } = await import('../../platform/metrics/replication-metrics.ts');
  peerJobDelivered('far', 120);
  packageBytesFetched(4096);
  const text = await metricsText();
  assert.match(text, /^netboot_peer_job_delivery_seconds_bucket\{le="0\.25",peer="far"\} 1$/m);
  assert.match(text, /^netboot_package_fetched_bytes_total 4096$/m);
  assert.match(text, /^# TYPE netboot_pxe_requests_total counter$/m, 'declared before the registry was made');
  assert.match(text, /^process_resident_memory_bytes \d+$/m);
  assert.doesNotMatch(text, /^nodejs_active_handles_total/m);
});
