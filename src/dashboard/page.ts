/**
 * The dashboard: one self-contained HTML page (inline CSS, inline script, SVG charts drawn by that
 * script; no CDN, no framework, nothing fetched but its own feed). It subscribes to
 * `/dashboard/events` (server-sent events, one snapshot a second) and keeps the last five minutes
 * of points in the browser. Every name that comes from an upstream (tools, tenants, alerts) is
 * written with `textContent`, never parsed as HTML.
 */

const STYLE = `
:root { --bg:#0f1419; --panel:#171d24; --line:#263039; --text:#d7dde3; --muted:#8a96a3; --ok:#3fb950; --warn:#d29922; --bad:#f85149;
  --c1:#58a6ff; --c2:#3fb950; --c3:#d29922; --c4:#f85149; --c5:#bc8cff; --c6:#39c5cf; }
* { box-sizing: border-box; }
body { margin:0; font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; align-items:center; gap:16px; padding:10px 16px; border-bottom:1px solid var(--line); }
header h1 { font-size:16px; margin:0; font-weight:600; }
header .muted { color:var(--muted); }
#status { padding:2px 8px; border-radius:10px; font-size:12px; background:var(--line); }
#status.live { background:#12361f; color:var(--ok); }
#status.down { background:#3d1518; color:var(--bad); }
main { padding:12px 16px; display:grid; gap:12px; grid-template-columns: minmax(0,1fr) minmax(0,1fr); }
.wide { grid-column: 1 / -1; }
.panel { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:10px 12px; min-width:0; }
.panel h2 { font-size:12px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); margin:0 0 8px; font-weight:600; }
.kpis { display:grid; grid-template-columns: repeat(7, minmax(0,1fr)); gap:8px; }
.kpi { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:8px 10px; }
.kpi .label { color:var(--muted); font-size:11px; text-transform:uppercase; letter-spacing:.04em; }
.kpi .value { font-size:22px; font-weight:600; font-variant-numeric: tabular-nums; white-space:nowrap; }
.kpi .value.bad { color:var(--bad); }
svg.chart { width:100%; height:170px; display:block; }
svg.chart text { fill:var(--muted); font-size:10px; }
svg.chart .grid { stroke:var(--line); stroke-width:1; }
svg.chart .series { fill:none; stroke-width:1.6; }
svg.chart .threshold { stroke:var(--bad); stroke-dasharray:4 3; stroke-width:1; }
.legend { display:flex; flex-wrap:wrap; gap:10px; font-size:11px; color:var(--muted); margin-top:4px; }
.legend span::before { content:""; display:inline-block; width:10px; height:3px; margin-right:4px; vertical-align:middle; background:var(--swatch); }
table { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
th, td { text-align:right; padding:4px 6px; border-bottom:1px solid var(--line); white-space:nowrap; }
th:first-child, td:first-child, th.l, td.l { text-align:left; }
th { color:var(--muted); font-weight:600; font-size:11px; }
td.name { max-width:260px; overflow:hidden; text-overflow:ellipsis; }
.scroll { max-height:260px; overflow:auto; }
.badge { display:inline-block; padding:0 6px; border-radius:8px; font-size:11px; background:var(--line); }
.badge.ok { color:var(--ok); } .badge.warn { color:var(--warn); } .badge.bad { color:var(--bad); background:#3d1518; }
#alerts-firing:empty::after { content:"No alert is firing."; color:var(--muted); }
.alert { border-left:3px solid var(--bad); padding:4px 8px; margin-bottom:6px; background:#2a1416; border-radius:3px; }
.alert.resolved { border-left-color:var(--ok); background:transparent; color:var(--muted); }
.alert .when { color:var(--muted); font-size:11px; margin-left:6px; }
.res { display:grid; grid-template-columns: repeat(6, minmax(0,1fr)); gap:8px; }
.res div b { display:block; font-size:16px; font-variant-numeric: tabular-nums; }
@media (max-width: 1100px) { main { grid-template-columns: minmax(0,1fr); } .kpis { grid-template-columns: repeat(4, minmax(0,1fr)); } }
`;

const SCRIPT = `
'use strict';
const KEEP = 300;
const COLORS = ['var(--c1)','var(--c2)','var(--c3)','var(--c4)','var(--c5)','var(--c6)'];
const history = { t: [], ops: new Map(), p50: [], p95: [], p99: [], hit: [], err: [], pool: new Map() };
let previous = null;
let thresholds = null;

const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') node.className = v; else if (k === 'text') node.textContent = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}
function svg(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}
function fmtMs(ms) {
  if (!isFinite(ms)) return '–';
  if (ms === 0) return '0';
  if (ms < 1) return (ms * 1000).toFixed(ms < 0.01 ? 1 : 0) + ' µs';
  if (ms < 1000) return ms.toFixed(ms < 10 ? 2 : 0) + ' ms';
  return (ms / 1000).toFixed(2) + ' s';
}
function fmtRate(r) { return isFinite(r) ? (r * 100).toFixed(1) + ' %' : '–'; }
function fmtOps(v) { return !isFinite(v) ? '–' : v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1); }
function fmtBytes(b) { return (b / 1048576).toFixed(0) + ' MiB'; }
function push(arr, v) { arr.push(v); if (arr.length > KEEP) arr.shift(); }
function series(map, key) { let s = map.get(key); if (!s) { s = []; map.set(key, s); } return s; }

function rate(now, before, pick) {
  if (!before) return 0;
  const dt = (now.at - before.at) / 1000;
  return dt > 0 ? Math.max(0, (pick(now) - pick(before)) / dt) : 0;
}

function onSnapshot(snap) {
  const prev = previous;
  previous = snap;
  if (snap.thresholds) thresholds = snap.thresholds;
  const totalOps = rate(snap, prev, (s) => s.totals.total_operations);
  push(history.t, snap.at);
  push(series(history.ops, 'all'), totalOps);
  for (const u of snap.upstreams) {
    const before = prev && prev.upstreams.find((x) => x.name === u.name);
    const ops = before ? rate({ at: snap.at, v: u.totals.total_operations }, { at: prev.at, v: before.totals.total_operations }, (s) => s.v) : 0;
    u.ops = ops;
    const s = series(history.ops, u.name);
    while (s.length < history.t.length - 1) s.push(0);
    push(s, ops);
    const p = series(history.pool, u.name);
    while (p.length < history.t.length - 1) p.push(0);
    push(p, u.pool.utilization);
  }
  const w = snap.window;
  push(history.p50, w.p50_latency_ms); push(history.p95, w.p95_latency_ms); push(history.p99, w.p99_latency_ms);
  push(history.hit, w.cache_hit_rate); push(history.err, w.error_rate);

  $('kpi-ops').textContent = fmtOps(totalOps);
  $('kpi-p50').textContent = fmtMs(w.p50_latency_ms);
  $('kpi-p95').textContent = fmtMs(w.p95_latency_ms);
  $('kpi-p99').textContent = fmtMs(w.p99_latency_ms);
  $('kpi-hit').textContent = fmtRate(w.cache_hit_rate);
  $('kpi-err').textContent = fmtRate(w.error_rate);
  $('kpi-calls').textContent = snap.totals.total_operations.toLocaleString('en-US');
  $('kpi-alerts').textContent = String(snap.alerts.firing.length);
  $('kpi-alerts').classList.toggle('bad', snap.alerts.firing.length > 0);
  $('kpi-p95').classList.toggle('bad', !!(thresholds && thresholds.p95Ms !== false && w.total_operations > 0 && w.p95_latency_ms > thresholds.p95Ms));
  $('window').textContent = 'window ' + Math.round(w.span_ms / 1000) + ' s';

  const names = ['all', ...snap.upstreams.map((u) => u.name)];
  chart('chart-ops', names.map((n, i) => ({ name: n === 'all' ? 'all upstreams' : n, color: COLORS[i % COLORS.length], values: series(history.ops, n) })), { format: fmtOps });
  chart('chart-latency', [
    { name: 'P50', color: COLORS[1], values: history.p50 },
    { name: 'P95', color: COLORS[2], values: history.p95 },
    { name: 'P99', color: COLORS[3], values: history.p99 },
  ], { format: fmtMs, threshold: thresholds && thresholds.p95Ms !== false ? thresholds.p95Ms : undefined });
  chart('chart-rates', [
    { name: 'cache hit rate', color: COLORS[0], values: history.hit },
    { name: 'error rate', color: COLORS[3], values: history.err },
  ], { format: fmtRate, max: 1 });
  chart('chart-pool', snap.upstreams.map((u, i) => ({ name: u.name, color: COLORS[i % COLORS.length], values: series(history.pool, u.name) })), { format: fmtRate, max: 1, threshold: thresholds && thresholds.maxPoolUtilization !== false ? thresholds.maxPoolUtilization : undefined });

  renderUpstreams(snap.upstreams);
  renderSeries(snap, prev);
  renderAlerts(snap.alerts);
  renderResources(snap.resources);
}

function chart(id, lines, opts) {
  const root = $(id);
  const W = root.clientWidth || 600, H = 170, L = 52, R = 8, T = 8, B = 18;
  root.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  root.replaceChildren();
  let max = opts.max || 0;
  if (!opts.max) for (const line of lines) for (const v of line.values) if (isFinite(v) && v > max) max = v;
  if (opts.threshold !== undefined && !opts.max) max = Math.max(max, opts.threshold * 1.1);
  if (!(max > 0)) max = 1;
  const n = Math.max(2, history.t.length);
  const x = (i) => L + (i / (n - 1)) * (W - L - R);
  const y = (v) => T + (1 - Math.min(1, Math.max(0, v / max))) * (H - T - B);
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4, yy = y(v);
    root.append(svg('line', { x1: L, x2: W - R, y1: yy, y2: yy, class: 'grid' }));
    const label = svg('text', { x: L - 4, y: yy + 3, 'text-anchor': 'end' });
    label.textContent = opts.format(v);
    root.append(label);
  }
  const span = svg('text', { x: W - R, y: H - 4, 'text-anchor': 'end' });
  span.textContent = history.t.length > 1 ? 'last ' + Math.round((history.t[history.t.length - 1] - history.t[0]) / 1000) + ' s' : '';
  root.append(span);
  if (opts.threshold !== undefined) {
    root.append(svg('line', { x1: L, x2: W - R, y1: y(opts.threshold), y2: y(opts.threshold), class: 'threshold' }));
  }
  for (const line of lines) {
    const vals = line.values, offset = n - vals.length;
    if (vals.length === 0) continue;
    const pts = vals.map((v, i) => x(i + offset).toFixed(1) + ',' + y(isFinite(v) ? v : 0).toFixed(1)).join(' ');
    root.append(svg('polyline', { points: pts, class: 'series', stroke: line.color }));
  }
  const legend = $(id + '-legend');
  legend.replaceChildren(...lines.map((line) => {
    const last = line.values[line.values.length - 1];
    const item = el('span', { text: line.name + ' ' + (last === undefined ? '' : opts.format(last)) });
    item.style.setProperty('--swatch', line.color);
    return item;
  }));
}

function badge(text, kind) { return el('span', { class: 'badge ' + kind, text }); }

function renderUpstreams(upstreams) {
  const body = $('upstreams-body');
  body.replaceChildren(...upstreams.map((u) => {
    const w = u.window;
    const state = u.breaker === undefined ? badge('closed', 'ok') : badge(u.breaker, u.breaker === 'closed' ? 'ok' : u.breaker === 'open' ? 'bad' : 'warn');
    const health = u.ejected ? badge('ejected', 'bad') : u.healthy === false ? badge('down', 'bad') : badge('in rotation', 'ok');
    return el('tr', {},
      el('td', { class: 'name', text: u.name }),
      el('td', { text: fmtOps(u.ops || 0) }),
      el('td', { text: fmtMs(w.p50_latency_ms) }), el('td', { text: fmtMs(w.p95_latency_ms) }), el('td', { text: fmtMs(w.p99_latency_ms) }),
      el('td', { text: fmtRate(w.cache_hit_rate) }), el('td', { text: fmtRate(w.error_rate) }),
      el('td', { text: u.pool.inUse + ' / ' + u.pool.size }), el('td', { text: String(u.pool.queued) }),
      el('td', {}, state), el('td', {}, health));
  }));
}

function renderSeries(snap, prev) {
  const body = $('series-body');
  const rows = snap.series.slice().sort((a, b) => b.window.total_operations - a.window.total_operations || a.name.localeCompare(b.name));
  body.replaceChildren(...rows.map((s) => {
    const before = prev && prev.series.find((x) => x.upstream === s.upstream && x.method === s.method && x.name === s.name);
    const dt = prev ? (snap.at - prev.at) / 1000 : 0;
    const ops = before && dt > 0 ? Math.max(0, (s.totals.total_operations - before.totals.total_operations) / dt) : 0;
    const w = s.window;
    const lookups = w.cache_hits + w.cache_misses;
    return el('tr', {},
      el('td', { class: 'name', text: s.name || '(' + s.method + ')' }),
      el('td', { class: 'l', text: s.upstream }),
      el('td', { text: fmtOps(ops) }),
      el('td', { text: s.totals.total_operations.toLocaleString('en-US') }),
      el('td', { text: fmtMs(w.p50_latency_ms) }), el('td', { text: fmtMs(w.p95_latency_ms) }), el('td', { text: fmtMs(w.p99_latency_ms) }),
      el('td', { text: lookups > 0 ? fmtRate(w.cache_hit_rate) : '–' }), el('td', { text: fmtRate(w.error_rate) }));
  }));
}

function renderAlerts(alerts) {
  $('alerts-firing').replaceChildren(...alerts.firing.map((a) => el('div', { class: 'alert firing', 'data-alert': a.id },
    el('b', { text: a.rule }), ' ', el('span', { text: a.message }), el('span', { class: 'when', text: 'since ' + new Date(a.firedAt).toLocaleTimeString() }))));
  $('alerts-recent').replaceChildren(...alerts.recent.slice(0, 8).map((a) => el('div', { class: 'alert ' + a.status },
    el('b', { text: a.status }), ' ', el('span', { text: a.message }),
    el('span', { class: 'when', text: new Date(a.status === 'resolved' ? a.resolvedAt : a.firedAt).toLocaleTimeString() }))));
}

function renderResources(r) {
  if (!r) return;
  $('res-cpu').textContent = (r.processCpu * 100).toFixed(0) + ' %';
  $('res-syscpu').textContent = (r.systemCpu * 100).toFixed(0) + ' %';
  $('res-mem').textContent = fmtRate(r.memoryRatio) + ' · ' + fmtBytes(r.rssBytes);
  $('res-loop').textContent = fmtMs(r.eventLoopDelayP99Ms);
  $('res-conns').textContent = String(r.openConnections);
  $('res-children').textContent = String(r.childProcesses);
}

function connect() {
  const source = new EventSource('dashboard/events');
  source.addEventListener('open', () => { $('status').textContent = 'live'; $('status').className = 'live'; });
  source.addEventListener('error', () => { $('status').textContent = 'reconnecting'; $('status').className = 'down'; });
  source.addEventListener('snapshot', (event) => onSnapshot(JSON.parse(event.data)));
}
connect();
`;

function kpi(id: string, label: string): string {
  return `<div class="kpi"><div class="label">${label}</div><div class="value" id="${id}">–</div></div>`;
}

function chartPanel(id: string, title: string): string {
  return `<section class="panel"><h2>${title}</h2><svg class="chart" id="${id}" role="img" aria-label="${title}"></svg><div class="legend" id="${id}-legend"></div></section>`;
}

/** The dashboard page. Nothing in it comes from a request: it is the same bytes for everyone. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mcp-relay dashboard</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header><h1>mcp-relay</h1><span id="status">connecting</span><span class="muted" id="window"></span>
<span class="muted" style="margin-left:auto"><a style="color:inherit" href="metrics">/metrics</a> · <a style="color:inherit" href="alerts">/alerts</a></span></header>
<main>
<div class="kpis wide">
${kpi('kpi-ops', 'ops/s')}${kpi('kpi-p50', 'P50')}${kpi('kpi-p95', 'P95')}${kpi('kpi-p99', 'P99')}${kpi('kpi-hit', 'cache hit rate')}${kpi('kpi-err', 'error rate')}${kpi('kpi-alerts', 'alerts firing')}
</div>
${chartPanel('chart-ops', 'Operations per second')}
${chartPanel('chart-latency', 'Latency over the window (P50 / P95 / P99)')}
${chartPanel('chart-rates', 'Cache hit rate and error rate over the window')}
${chartPanel('chart-pool', 'Connection pool use per upstream')}
<section class="panel"><h2>Alerts firing</h2><div id="alerts-firing"></div><h2 style="margin-top:10px">Recent</h2><div id="alerts-recent"></div></section>
<section class="panel"><h2>Process</h2><div class="res">
<div>CPU (process)<b id="res-cpu">–</b></div><div>CPU (machine)<b id="res-syscpu">–</b></div><div>memory<b id="res-mem">–</b></div>
<div>event-loop P99<b id="res-loop">–</b></div><div>connections<b id="res-conns">–</b></div><div>child processes<b id="res-children">–</b></div>
</div><p class="muted" style="margin:8px 0 0">operations since start: <b id="kpi-calls">–</b></p></section>
<section class="panel wide"><h2>Upstreams</h2><div class="scroll"><table><thead><tr><th>upstream</th><th>ops/s</th><th>P50</th><th>P95</th><th>P99</th><th>hit rate</th><th>errors</th><th>pool</th><th>queued</th><th>breaker</th><th>state</th></tr></thead><tbody id="upstreams-body"></tbody></table></div></section>
<section class="panel wide"><h2>Tools, prompts and other operations</h2><div class="scroll"><table><thead><tr><th>name</th><th class="l">upstream</th><th>ops/s</th><th>calls</th><th>P50</th><th>P95</th><th>P99</th><th>hit rate</th><th>errors</th></tr></thead><tbody id="series-body"></tbody></table></div></section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
