// The live status page: one document with its style and script inline (the site server has no
// internet, and the page fetches nothing but our own /events stream). It renders each `snapshot`
// event from /events with DOM text nodes only (no innerHTML of any value). Narrow screens get
// one card per row instead of table columns.
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netboot</title>
<link rel="icon" href="data:,">
<style>
:root { color-scheme: light dark; --bg: #f6f7f9; --fg: #1d2329; --muted: #66707a; --card: #fff; --line: #dfe3e8; --ok: #1f883d; --warn: #b35900; --bad: #c62828; --bar: #2f6fde; }
@media (prefers-color-scheme: dark) { :root { --bg: #101418; --fg: #e3e7eb; --muted: #93a0ad; --card: #181d23; --line: #2a323b; --bar: #5b8ff0; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline; padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--card); position: sticky; top: 0; }
header h1 { font-size: 1.1rem; margin: 0; }
#live { font-size: .85rem; color: var(--muted); }
#live.on::before { content: "● "; color: var(--ok); }
#live.off::before { content: "● "; color: var(--bad); }
main { padding: .75rem; display: grid; gap: .75rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 32rem), 1fr)); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .6rem .8rem; min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: .95rem; margin: .1rem 0 .5rem; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(8.5rem, 1fr)); gap: .5rem; }
.fig { border: 1px solid var(--line); border-radius: 6px; padding: .4rem .6rem; }
.fig b { display: block; font-size: 1.3rem; font-variant-numeric: tabular-nums; }
.fig span { color: var(--muted); font-size: .8rem; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .3rem .4rem; border-top: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
th { color: var(--muted); font-weight: 600; font-size: .8rem; border-top: 0; }
.ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .85rem; }
.muted, .empty { color: var(--muted); }
.bar { height: .55rem; background: var(--line); border-radius: 4px; overflow: hidden; min-width: 5rem; }
.bar > i { display: block; height: 100%; background: var(--bar); transition: width .4s; }
tr.fresh td { animation: flash 1.5s ease-out; }
@keyframes flash { from { background: rgba(47, 111, 222, .25); } to { background: transparent; } }
@media (max-width: 40rem) {
  main { padding: .4rem; }
  table, tbody, tr, td { display: block; width: 100%; }
  thead { display: none; }
  tr { border-top: 1px solid var(--line); padding: .3rem 0; }
  td { border: 0; padding: .1rem .2rem; }
  td[data-h]::before { content: attr(data-h) ": "; color: var(--muted); font-size: .8rem; }
}
</style>
</head>
<body>
<header><h1>netboot <span id="site" class="muted"></span></h1><span id="live" class="off">connecting</span><span id="at" class="muted"></span></header>
<main>
<section class="wide"><h2>Now</h2><div class="figures" id="figures"></div></section>
<section><h2>Services</h2><table id="services"></table></section>
<section><h2>Peers</h2><table id="peers"></table></section>
<section class="wide"><h2>Machines seen recently</h2><table id="machines"></table></section>
<section class="wide"><h2>Packages on every site</h2><table id="packages"></table></section>
<section class="wide"><h2>Imaging jobs</h2><table id="jobs"></table></section>
<section class="wide"><h2>Rejected SBS files</h2><table id="rejected"></table></section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const seenMacs = new Set();
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; }
function ago(ms) { const s = Math.max(0, Math.round((Date.now() - ms) / 1000)); return s < 60 ? s + " s ago" : s < 3600 ? Math.floor(s / 60) + " min ago" : Math.floor(s / 3600) + " h ago"; }
function bytes(n) { const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return (i === 0 ? n : n.toFixed(1)) + " " + u[i]; }
function bar(done, total) { const b = el("div", null, "bar"); const i = el("i"); const pct = total > 0 ? Math.min(100, (100 * done) / total) : 0; i.style.width = pct.toFixed(1) + "%"; b.appendChild(i); b.setAttribute("role", "progressbar"); b.setAttribute("aria-valuenow", pct.toFixed(0)); b.title = pct.toFixed(0) + "%"; return b; }
function table(id, headers, rows, empty) {
  const t = $(id); t.replaceChildren();
  if (rows.length === 0) { const tr = el("tr"); const td = el("td", empty, "empty"); td.colSpan = headers.length; tr.appendChild(td); t.appendChild(tr); return; }
  const thead = el("thead"); const hr = el("tr"); for (const h of headers) hr.appendChild(el("th", h)); thead.appendChild(hr); t.appendChild(thead);
  const tb = el("tbody");
  for (const r of rows) {
    const tr = el("tr"); if (r.cls) tr.className = r.cls; if (r.key) tr.dataset.key = r.key;
    r.cells.forEach((c, i) => { const td = el("td"); td.dataset.h = headers[i]; if (c instanceof Node) td.appendChild(c); else { td.textContent = c === null || c === undefined ? "-" : String(c); } if (r.cellCls && r.cellCls[i]) td.className = r.cellCls[i]; tr.appendChild(td); });
    tb.appendChild(tr);
  }
  t.appendChild(tb);
}
function render(s) {
  $("site").textContent = s.site; $("at").textContent = new Date(s.at).toLocaleTimeString();
  const f = s.figures; const figs = [["PXE requests", f.pxeRequests], ["offers", f.pxeOffers], ["TFTP active", f.tftpActive], ["TFTP transfers", f.tftpTransfers], ["TFTP sent", bytes(f.tftpBytes)], ["SBS applied", f.sbsApplied], ["SBS rejected", f.sbsRejected]];
  $("figures").replaceChildren(...figs.map(([k, v]) => { const d = el("div", null, "fig"); d.dataset.figure = k; d.appendChild(el("b", v)); d.appendChild(el("span", k)); return d; }));
  table("services", ["service", "state", "pid", "ports"], s.services.map((x) => ({ key: x.service, cells: [x.service, x.state, x.pid, Object.entries(x.ports).map(([k, v]) => k + "=" + v).join(" ")], cellCls: [null, x.running && x.state === "serving" ? "ok" : x.running ? "warn" : "bad"] })), "no services");
  table("peers", ["peer", "link", "queued", "delivered", "latency"], s.peers.map((p) => ({ key: p.id, cells: [p.id + " (" + p.address + ")", p.connected ? (p.authenticated ? "up" : "unauthenticated") : "down", p.queued, p.delivered, p.lastLatencyMs === null ? "-" : p.lastLatencyMs + " ms"], cellCls: [null, p.connected && p.authenticated ? "ok" : "bad"] })), "no peers configured");
  table("machines", ["machine", "arch", "decision", "seen"], s.machines.map((m) => { const fresh = !seenMacs.has(m.mac + m.atMs); seenMacs.add(m.mac + m.atMs); return { key: m.mac, cls: fresh ? "fresh" : "", cells: [el("span", m.mac, "mono"), m.arch, m.outcome, ago(m.atMs) + " · " + m.type + (m.relay ? " via " + m.relay : "")], cellCls: [null, null, m.answered ? "ok" : "warn"] }; }), "no PXE requests seen since the server started");
  const rows = [];
  for (const p of s.packages) for (const site of p.sites) rows.push({ key: p.id + "@" + site.server, cells: [p.id + " (" + p.kind + ")", site.server, site.state + (site.reason ? ": " + site.reason : ""), site.state === "ready" ? "seq " + site.seq : bar(site.bytesDone, site.bytesTotal), site.bytesTotal > 0 ? bytes(site.bytesDone) + " / " + bytes(site.bytesTotal) : "-"], cellCls: [null, null, site.state === "ready" ? "ok" : site.state === "invalid" ? "bad" : "warn"] });
  table("packages", ["package", "site", "state", "progress", "bytes"], rows, "no packages");
  table("jobs", ["machine", "task", "state", "progress", "bytes"], (s.jobs || []).map((j) => ({ key: j.jobId, cells: [el("span", j.mac, "mono"), j.task, j.state + (j.phase ? " · " + j.phase : "") + (j.reason ? ": " + j.reason : ""), j.bytesTotal ? bar(j.bytesDone || 0, j.bytesTotal) : "-", j.bytesTotal ? bytes(j.bytesDone || 0) + " / " + bytes(j.bytesTotal) : "-"], cellCls: [null, null, j.state === "failed" ? "bad" : j.state === "done" ? "ok" : null] })), s.jobs === null ? "no jobs on this server" : "no imaging jobs");
  table("rejected", ["file", "reason", "when"], s.rejected.map((r) => ({ cells: [el("span", r.file, "mono"), (r.field ? r.field + ": " : "") + r.problem, r.at ? new Date(r.at).toLocaleString() : "-"], cellCls: [null, "bad"] })), "none");
}
let last = null;
function connect() {
  const token = new URLSearchParams(location.search).get("token");
  const es = new EventSource("events" + (token ? "?token=" + encodeURIComponent(token) : ""));
  es.addEventListener("snapshot", (e) => { last = JSON.parse(e.data); $("live").className = "on"; $("live").textContent = "live"; render(last); });
  es.onerror = () => { $("live").className = "off"; $("live").textContent = "reconnecting"; };
}
setInterval(() => { if (last) render(last); }, 5000);
connect();
</script>
</body>
</html>
`;
