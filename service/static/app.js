// The chart page: forecast fan, counterfactual, decomposition and onset sensitivity, drawn from
// the JSON routes with the vendored uPlot (static/uplot). Same origin, no CDN, no build step.
"use strict";
const $ = (id) => document.getElementById(id);
const wanted = new URLSearchParams(window.location.search);
// `encounters ui` serves MLflow here by default; ?mlflow=URL points the run links elsewhere.
const MLFLOW_UI = wanted.get("mlflow") || "http://127.0.0.1:5000";
const BLUE = "31,95,191";
const ORANGE = "214,110,0";
const state = { version: null, series: {}, models: null, levels: [], charts: {}, events: [] };

// -- plumbing -------------------------------------------------------------------------------

function headers() {
  const key = $("key").value || sessionStorage.getItem("apiKey") || "";
  if (key) sessionStorage.setItem("apiKey", key);
  return key ? { "X-API-Key": key } : {};
}

async function call(url, options = {}) {
  const response = await fetch(url, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (response.status === 401) $("key-label").hidden = false;
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
    } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response.json();
}

const post = (url, body) => call(url, {
  method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" },
});

const seriesPath = (key) => key.split("/").map(encodeURIComponent).join("/");
const toX = (ds) => Date.UTC(+ds.slice(0, 4), +ds.slice(5, 7) - 1, 1) / 1000;
const month = (x) => new Date(x * 1000).toISOString().slice(0, 7);
const addMonths = (x, n) => { const d = new Date(x * 1000); return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1) / 1000; };
const num = (v) => (v === null || v === undefined || !Number.isFinite(v) ? "" : String(Math.round(v)));
const fmt = (v) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : Math.round(v).toLocaleString("en-US"));
const compact = (v) => (Math.abs(v) >= 1e6 ? `${+(v / 1e6).toFixed(1)}M` : Math.abs(v) >= 1e3 ? `${+(v / 1e3).toFixed(1)}k` : `${v}`);
const bounds = (intervals, level) => (intervals || []).find((i) => i.level === level) || { lo: null, hi: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

// A table and a CSV link of the same rows: `columns` is [[header, row => value], ...].
function tabulate(tableId, linkId, columns, rows) {
  const head = el("tr", {}, ...columns.map(([h]) => el("th", {}, h)));
  const body = rows.map((r) => el("tr", {}, ...columns.map(([, f]) => el("td", {}, String(f(r) ?? "")))));
  $(tableId).replaceChildren(el("table", {}, el("thead", {}, head), el("tbody", {}, ...body)));
  const quote = (v) => (/[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
  const csv = [columns.map(([h]) => quote(h)), ...rows.map((r) => columns.map(([, f]) => quote(String(f(r) ?? ""))))]
    .map((line) => line.join(",")).join("\n") + "\n";
  const link = $(linkId);
  if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
}

function tip(id, parts) {
  $(id).replaceChildren(...parts.map(([k, label, value]) =>
    el("span", { "data-k": k }, el("b", {}, label), " ", value)));
}

function setPanel(id, value, message) {
  $(id).dataset.state = value;
  if (message) $("message").textContent = message;
}

function chartWidth(id) {
  return Math.max(320, $(id).clientWidth || 900);
}

function newPlot(id, opts, data) {
  if (state.charts[id]) state.charts[id].destroy();
  state.charts[id] = new uPlot({ width: chartWidth(id), ...opts }, data, $(id));
  return state.charts[id];
}

// Vertical bands and markers drawn under/over a chart, in canvas pixels.
function shade(u, x0, x1, colour) {
  const { ctx, bbox } = u;
  const a = Math.max(u.valToPos(x0, "x", true), bbox.left);
  const b = Math.min(u.valToPos(x1, "x", true), bbox.left + bbox.width);
  if (b <= a) return;
  ctx.save();
  ctx.fillStyle = colour;
  ctx.fillRect(a, bbox.top, b - a, bbox.height);
  ctx.restore();
}

function eventMarks(u, events) {
  const { ctx, bbox } = u;
  ctx.save();
  ctx.strokeStyle = "rgba(120,0,120,.45)";
  ctx.fillStyle = "rgba(120,0,120,.8)";
  ctx.setLineDash([3, 3]);
  for (const x of new Set(events.map((e) => e.x))) {
    if (x < u.scales.x.min || x > u.scales.x.max) continue;
    const px = u.valToPos(x, "x", true);
    ctx.beginPath();
    ctx.moveTo(px, bbox.top + 8);
    ctx.lineTo(px, bbox.top + bbox.height);
    ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(px - 5, bbox.top);
    ctx.lineTo(px + 5, bbox.top);
    ctx.lineTo(px, bbox.top + 8);
    ctx.fill();
  }
  ctx.restore();
}

const eventsAt = (x) => state.events.filter((e) => e.x === x);

// -- the served model and the background training --------------------------------------------

function showHealth(health) {
  const model = health.model;
  if (model) {
    $("model").textContent = `Model version ${model.version} (${model.alias}), `
      + `${health.data.experiment} experiment, data to ${health.data.newest_month}.`;
  } else {
    $("model").textContent = `No model served yet: ${health.reason || "starting"}`;
  }
  $("provisional").hidden = !(model && model.provisional);
  if (model && model.provisional) $("provisional").textContent = `Provisional: ${model.provisional}`;
  const t = health.training;
  $("training").hidden = !t;
  if (t) {
    const minutes = (s) => (s === null || s === undefined ? "?" : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`);
    const count = t.series_total ? `${t.series_done}/${t.series_total} series, ` : "";
    const left = ["training", "starting"].includes(t.state) && t.remaining_seconds !== null
      ? `, about ${minutes(t.remaining_seconds)} left` : "";
    $("training").textContent = `Full training (${t.experiment}): ${t.state}; ${count}`
      + `${minutes(t.elapsed_seconds)} elapsed${left}. ${t.message || ""}`;
    $("training").dataset.state = t.state;
  }
}

async function watchHealth() {
  let health = null;
  try {
    health = await call("/health");
  } catch (error) { /* 503 until a model is served: read on below */ }
  if (health === null) {
    try { health = await (await fetch("/health")).json(); } catch (e) { /* server restarting */ }
  }
  if (health) {
    showHealth(health);
    const version = health.model ? health.model.version : null;
    if (version && version !== state.version) await loadAll();
  }
  const busy = health && health.training && !["promoted", "rejected", "up-to-date", "failed", "stopped"].includes(health.training.state);
  setTimeout(watchHealth, busy || !health || !health.model ? 3000 : 30000);
}

// -- forecast ---------------------------------------------------------------------------------

async function loadForecast() {
  const key = $("series").value;
  setPanel("forecast-panel", "pending");
  const params = new URLSearchParams({ series: key, h: $("h").value });
  for (const level of state.levels) params.append("level", level);
  const [history, forecast, events] = await Promise.all([
    call(`/v1/series/${seriesPath(key)}`),
    call(`/v1/forecast?${params}`),
    call(`/v1/interventions?series=${encodeURIComponent(key)}`),
  ]);
  state.events = events.events.map((e) => ({ ...e, x: toX(e.start) }));
  state.eventList = events.events;
  const rows = [
    ...history.rows.map((r) => ({ x: toX(r.ds), kind: "observed", observed: r.y })),
    ...forecast.rows.map((r) => ({ x: toX(r.ds), kind: r.kind, mean: r.mean, intervals: r.intervals })),
  ];
  const x = rows.map((r) => r.x);
  const data = [x, rows.map((r) => r.observed ?? null), rows.map((r) => r.mean ?? null)];
  const series = [{}, { label: "observed", stroke: "#222", width: 1.5 }, { label: "mean", stroke: `rgb(${BLUE})`, width: 2 }];
  const bands = [];
  const widest = [...state.levels].sort((a, b) => b - a);
  widest.forEach((level, i) => {
    data.push(rows.map((r) => (r.intervals ? bounds(r.intervals, level).hi : null)));
    data.push(rows.map((r) => (r.intervals ? bounds(r.intervals, level).lo : null)));
    series.push({ label: `hi ${level}`, stroke: `rgba(${BLUE},.35)`, width: 0.5 });
    series.push({ label: `lo ${level}`, stroke: `rgba(${BLUE},.35)`, width: 0.5 });
    bands.push({ series: [data.length - 2, data.length - 1], fill: `rgba(${BLUE},${0.12 + 0.1 * i})` });
  });
  const nowcast = forecast.rows.filter((r) => r.kind === "nowcast").map((r) => toX(r.ds));
  const lastObserved = toX(`${forecast.last_observed}-01`);
  const window = [addMonths(lastObserved, -36), x[x.length - 1]];
  state.forecast = { rows, window, full: [x[0], x[x.length - 1]], response: forecast };
  const u = newPlot("fan", {
    height: 360,
    series,
    bands,
    legend: { show: false },
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: true }, y: { range: (self, lo, hi) => [0, hi * 1.05] } },
    axes: [{}, { size: 60, values: (self, ticks) => ticks.map(compact) }],
    hooks: {
      drawClear: [(self) => {
        if (nowcast.length) shade(self, nowcast[0] - 15 * 86400, nowcast[nowcast.length - 1] + 15 * 86400, "rgba(255,170,0,.16)");
      }],
      draw: [(self) => eventMarks(self, state.events)],
      setCursor: [(self) => fanTip(self)],
      setScale: [(self, key2) => { if (key2 === "x") fanTable(self); }],
    },
  }, data);
  u.setScale("x", { min: window[0], max: window[1] });
  $("zoom").textContent = "Full history";
  $("forecast-model").textContent = `${forecast.model}, version ${forecast.model_version}; as of ${forecast.as_of}`;
  const entry = state.models.series.find((s) => s.series === key) || {};
  const run = entry.run_id || state.models.parent_run_id;
  $("mlflow-run").hidden = !run;
  if (run) $("mlflow-run").href = `${MLFLOW_UI}/#/runs/${run}`;
  $("png").href = `/v1/forecast.png?${new URLSearchParams({ series: key, h: $("h").value })}`;
  fanTip(u);
  setPanel("forecast-panel", "loaded");
  document.body.dataset.chart = "loaded";
  if (!document.body.dataset.firstPaint) {
    requestAnimationFrame(() => { document.body.dataset.firstPaint = String(Math.round(performance.now())); });
  }
}

function fanTip(u) {
  const rows = state.forecast.rows;
  const idx = u.cursor.idx ?? rows.length - 1;
  const r = rows[idx];
  if (!r) return;
  const parts = [["month", "Month", month(r.x)], ["kind", "", r.kind]];
  if (r.kind === "observed") parts.push(["observed", "observed", fmt(r.observed)]);
  else {
    parts.push(["mean", "mean", fmt(r.mean)]);
    for (const level of state.levels) {
      const b = bounds(r.intervals, level);
      parts.push([`b${level}`, `${level} %`, `${fmt(b.lo)} – ${fmt(b.hi)}`]);
    }
  }
  const names = eventsAt(r.x).map((e) => e.name);
  if (names.length) parts.push(["events", "events", names.join("; ")]);
  tip("fan-tip", parts);
}

function fanTable(u) {
  const { min, max } = u.scales.x;
  const shown = state.forecast.rows.filter((r) => r.x >= min && r.x <= max);
  const columns = [["month", (r) => month(r.x)], ["kind", (r) => r.kind], ["observed", (r) => num(r.observed)], ["mean", (r) => num(r.mean)]];
  for (const level of state.levels) {
    columns.push([`lo_${level}`, (r) => num(bounds(r.intervals, level).lo)]);
    columns.push([`hi_${level}`, (r) => num(bounds(r.intervals, level).hi)]);
  }
  columns.push(["events", (r) => eventsAt(r.x).map((e) => e.id).join(" ")]);
  tabulate("fan-table", "fan-csv", columns, shown);
}

function toggleZoom() {
  const u = state.charts.fan;
  const full = $("zoom").textContent === "Full history";
  const [min, max] = full ? state.forecast.full : state.forecast.window;
  u.setScale("x", { min, max });
  $("zoom").textContent = full ? "Last 3 years" : "Full history";
}

// -- counterfactual ---------------------------------------------------------------------------

// One choice per regressor: a group of events acts as one.
function regressors() {
  const by = new Map();
  for (const e of state.eventList || []) {
    if (!by.has(e.regressor)) by.set(e.regressor, []);
    by.get(e.regressor).push(e);
  }
  return [...by].map(([regressor, events]) => ({
    regressor, start: events[0].start.slice(0, 7),
    name: events.length > 1 ? `${regressor} (${events.length} events)` : events[0].name,
  })).sort((a, b) => (a.start < b.start ? 1 : -1));
}

function buildScenarioControls() {
  const choices = regressors();
  const pick = wanted.get("event");
  const rows = choices.map((c, i) => {
    const checked = pick ? c.regressor === pick || (state.eventList.find((e) => e.id === pick) || {}).regressor === c.regressor : i === 0;
    const box = el("input", { type: "checkbox", value: c.regressor });
    box.checked = checked;
    const action = el("select", {}, el("option", { value: "remove" }, "remove"), el("option", { value: "scale" }, "scale by"));
    const factor = el("input", { type: "number", min: "0", step: "0.1", value: "0.5", class: "factor" });
    return el("div", { class: "event", "data-regressor": c.regressor }, el("label", { class: "inline" }, box, ` ${c.name}, ${c.start}`), action, factor);
  });
  $("cf-events").replaceChildren(el("legend", {}, "Events"), ...rows);
  $("sens-event").replaceChildren(...choices.map((c) => el("option", { value: c.regressor }, `${c.name}, ${c.start}`)));
  const chosen = rows.find((r) => r.querySelector("input").checked);
  if (chosen) $("sens-event").value = chosen.dataset.regressor;
}

function scenario() {
  const out = { remove: [], scale: [] };
  const window = {};
  if ($("cf-start").value) window.start = $("cf-start").value;
  if ($("cf-end").value) window.end = $("cf-end").value;
  for (const row of $("cf-events").querySelectorAll(".event")) {
    if (!row.querySelector("input").checked) continue;
    const event = row.dataset.regressor;
    if (row.querySelector("select").value === "remove") out.remove.push({ event, ...window });
    else out.scale.push({ event, factor: +row.querySelector(".factor").value, ...window });
  }
  // The API takes a list only where it has changes.
  return Object.fromEntries(Object.entries(out).filter(([, changes]) => changes.length));
}

async function loadCounterfactual() {
  const key = $("series").value;
  if (!state.series[key].counterfactual) return unavailable("cf", "counterfactuals");
  const chosen = scenario();
  if (!Object.keys(chosen).length) {
    setPanel("cf-panel", "empty");
    $("cf-summary").textContent = "Pick an event to remove or scale.";
    return;
  }
  setPanel("cf-panel", "pending");
  const body = { series: key, scenario: chosen, method: $("cf-method").value };
  // The user's controls (keys, comma-separated) replace the automatic choice.
  const named = $("cf-controls").value.split(",").map((k) => k.trim()).filter(Boolean);
  if (body.method === "controls" && named.length) body.controls = named;
  const result = await post("/v1/counterfactual", body);
  const level = Math.max(...result.level);
  const rows = result.rows.map((r) => ({ ...r, x: toX(r.ds) }));
  const q = (name, side) => rows.map((r) => bounds(r.intervals[name], level)[side]);
  const x = rows.map((r) => r.x);
  state.cf = { rows, level, result };
  newPlot("cf-chart", {
    height: 280,
    legend: { show: false },
    cursor: { sync: { key: "cf" } },
    series: [{}, { label: "reference", stroke: "#222", width: 1.5 },
      { label: "counterfactual", stroke: `rgb(${ORANGE})`, width: 2 },
      { label: "hi", stroke: `rgba(${ORANGE},.3)` }, { label: "lo", stroke: `rgba(${ORANGE},.3)` }],
    bands: [{ series: [3, 4], fill: `rgba(${ORANGE},.15)` }],
    scales: { x: { time: true } },
    axes: [{}, { size: 60, values: (self, ticks) => ticks.map(compact) }],
    hooks: { setCursor: [(self) => cfTip(self.cursor.idx)] },
  }, [x, rows.map((r) => r.reference), rows.map((r) => r.counterfactual), q("counterfactual", "hi"), q("counterfactual", "lo")]);
  newPlot("cf-cum", {
    height: 160,
    legend: { show: false },
    cursor: { sync: { key: "cf" } },
    series: [{}, { label: "cumulative effect", stroke: `rgb(${BLUE})`, width: 2 },
      { label: "hi", stroke: `rgba(${BLUE},.3)` }, { label: "lo", stroke: `rgba(${BLUE},.3)` }],
    bands: [{ series: [2, 3], fill: `rgba(${BLUE},.15)` }],
    scales: { x: { time: true } },
    axes: [{}, { size: 60, values: (self, ticks) => ticks.map(compact) }],
    hooks: { setCursor: [(self) => cfTip(self.cursor.idx)] },
  }, [x, rows.map((r) => r.cumulative_effect), q("cumulative_effect", "hi"), q("cumulative_effect", "lo")]);
  cfTip(null);
  const columns = [["month", (r) => r.ds.slice(0, 7)], ["observed", (r) => (r.observed ? "yes" : "no")]];
  for (const name of ["reference", "counterfactual", "effect", "cumulative_effect"]) {
    columns.push([name, (r) => num(r[name])]);
    for (const lv of result.level) {
      columns.push([`${name}_lo_${lv}`, (r) => num(bounds(r.intervals[name], lv).lo)]);
      columns.push([`${name}_hi_${lv}`, (r) => num(bounds(r.intervals[name], lv).hi)]);
    }
  }
  tabulate("cf-table", "cf-csv", columns, rows);
  // Which method answered (controls fall back to regressor without a qualifying control), and
  // the notes that say why and list the controls' weights.
  $("cf-summary").textContent = `${result.summary} (method: ${result.method})`;
  $("cf-notes").replaceChildren(...result.notes.map((n) => el("li", {}, n)));
  $("cf-panel").dataset.scenario = JSON.stringify(chosen);
  $("cf-panel").dataset.method = result.method;
  setPanel("cf-panel", "loaded");
}

function cfTip(idx) {
  const { rows, level } = state.cf;
  const r = rows[idx ?? rows.length - 1];
  if (!r) return;
  const b = (name) => bounds(r.intervals[name], level);
  tip("cf-tip", [
    ["month", "Month", r.ds.slice(0, 7)],
    ["reference", r.observed ? "observed" : "reference", fmt(r.reference)],
    ["counterfactual", "counterfactual", `${fmt(r.counterfactual)} (${level} %: ${fmt(b("counterfactual").lo)} – ${fmt(b("counterfactual").hi)})`],
    ["cumulative", "cumulative effect", `${fmt(r.cumulative_effect)} (${fmt(b("cumulative_effect").lo)} – ${fmt(b("cumulative_effect").hi)})`],
  ]);
}

function unavailable(prefix, what) {
  const key = $("series").value;
  const panel = prefix === "cf" ? "cf-panel" : "dec-panel";
  const note = $(`${prefix}-unavailable`);
  note.hidden = false;
  note.textContent = `The served model of ${key} (${state.series[key].model}) does not answer ${what}`
    + (state.models.provisional ? "; the full champion will, once it is trained and promoted." : ".");
  setPanel(panel, "unavailable");
}

// -- decomposition and onset sensitivity ------------------------------------------------------

async function loadDecomposition() {
  const key = $("series").value;
  if (!state.series[key].decompose) return unavailable("dec", "decompositions");
  setPanel("dec-panel", "pending");
  if (!$("dec-month").value) $("dec-month").value = state.series[key].history_end;
  const result = await post("/v1/decompose", { series: key, month: $("dec-month").value, vs: $("dec-vs").value });
  const level = Math.max(...result.level);
  let running = result.from;
  const bars = [{ label: result.compared_to, kind: "total", lo: 0, hi: result.from, value: result.from }];
  for (const c of result.components) {
    const b = bounds(c.intervals, level);
    bars.push({
      label: c.name, kind: c.change >= 0 ? "up" : "down", lo: Math.min(running, running + c.change), hi: Math.max(running, running + c.change),
      value: c.change, base: running, whisker: [running + b.lo, running + b.hi], component: c,
    });
    running += c.change;
  }
  bars.push({ label: result.month, kind: "total", lo: 0, hi: result.to, value: result.to });
  state.dec = { result, bars, level };
  drawWaterfall(bars);
  const columns = [["component", (c) => c.component], ["name", (c) => c.name], ["change", (c) => num(c.change)], ["log_change", (c) => c.log_change.toFixed(4)]];
  for (const lv of result.level) {
    columns.push([`lo_${lv}`, (c) => num(bounds(c.intervals, lv).lo)]);
    columns.push([`hi_${lv}`, (c) => num(bounds(c.intervals, lv).hi)]);
  }
  const table = [{ component: "from", name: result.compared_to, change: result.from, log_change: 0, intervals: [] },
    ...result.components, { component: "to", name: result.month, change: result.to, log_change: 0, intervals: [] }];
  tabulate("dec-table", "dec-csv", columns, table);
  $("dec-summary").textContent = result.summary;
  setPanel("dec-panel", "loaded");
}

function drawWaterfall(bars) {
  const svg = $("waterfall");
  const width = chartWidth("waterfall");
  const height = 320;
  const pad = { l: 64, r: 10, t: 10, b: 96 };
  const top = Math.max(...bars.map((b) => Math.max(b.hi, b.whisker ? b.whisker[1] : b.hi))) * 1.05;
  const bottom = Math.min(0, ...bars.map((b) => (b.whisker ? b.whisker[0] : b.lo)));
  const y = (v) => pad.t + (height - pad.t - pad.b) * (1 - (v - bottom) / (top - bottom));
  const step = (width - pad.l - pad.r) / bars.length;
  const ns = "http://www.w3.org/2000/svg";
  const node = (tag, attrs) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); return n; };
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  const parts = [];
  for (let t = 0; t <= 4; t++) {
    const v = bottom + ((top - bottom) * t) / 4;
    parts.push(node("line", { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), class: "grid" }));
    const label = node("text", { x: pad.l - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" });
    label.textContent = compact(Math.round(v));
    parts.push(label);
  }
  bars.forEach((b, i) => {
    const x0 = pad.l + i * step + step * 0.15;
    const rect = node("rect", { x: x0, width: step * 0.7, y: y(b.hi), height: Math.max(1, y(b.lo) - y(b.hi)), class: `bar ${b.kind}`, "data-i": i });
    const title = node("title", {});
    title.textContent = `${b.label}: ${fmt(b.value)}`;
    rect.append(title);
    rect.addEventListener("mouseenter", () => decTip(i));
    parts.push(rect);
    if (b.whisker) {
      const cx = x0 + step * 0.35;
      parts.push(node("line", { x1: cx, x2: cx, y1: y(b.whisker[0]), y2: y(b.whisker[1]), class: "whisker" }));
    }
    const label = node("text", { x: x0 + step * 0.35, y: height - pad.b + 14, "text-anchor": "end", transform: `rotate(-35 ${x0 + step * 0.35} ${height - pad.b + 14})`, class: "axis" });
    label.textContent = b.label.length > 24 ? `${b.label.slice(0, 23)}…` : b.label;
    parts.push(label);
  });
  svg.replaceChildren(...parts);
  decTip(bars.length - 1);
}

function decTip(i) {
  const { bars, level } = state.dec;
  const b = bars[i];
  const parts = [["name", "", b.label], ["value", b.kind === "total" ? "encounters" : "change", fmt(b.value)]];
  if (b.component) {
    const iv = bounds(b.component.intervals, level);
    parts.push(["interval", `${level} %`, `${fmt(iv.lo)} – ${fmt(iv.hi)}`]);
  }
  tip("dec-tip", parts);
}

async function loadSensitivity() {
  const key = $("series").value;
  const table = $("sens-table");
  if (!state.series[key].counterfactual || !$("sens-event").value) {
    table.dataset.state = "unavailable";
    table.replaceChildren();
    return;
  }
  table.dataset.state = "pending";
  const result = await post("/v1/sensitivity", { series: key, event: $("sens-event").value });
  const columns = [["shift", (r) => r.shift], ["onset", (r) => r.onset.slice(0, 7)],
    ["effect_pct", (r) => (r.effect === null ? "" : r.effect.toFixed(1))]];
  for (const lv of result.level) {
    columns.push([`lo_${lv}`, (r) => { const v = bounds(r.intervals, lv).lo; return v === null ? "" : v.toFixed(1); }]);
    columns.push([`hi_${lv}`, (r) => { const v = bounds(r.intervals, lv).hi; return v === null ? "" : v.toFixed(1); }]);
  }
  columns.push(["status", (r) => r.status], ["aic", (r) => (r.aic === null ? "" : r.aic.toFixed(1))],
    ["closest_regressor", (r) => r.closest_regressor || ""], ["months_apart", (r) => r.months_apart ?? ""]);
  tabulate("sens-table", "sens-csv", columns, result.rows);
  $("sens-summary").textContent = result.summary;
  table.dataset.state = "loaded";
}

// -- wiring -----------------------------------------------------------------------------------

function guard(panel, fn) {
  return () => fn().catch((error) => {
    if (panel) $(panel).dataset.state = "error";
    if (panel === "forecast-panel") document.body.dataset.chart = "error";
    $("message").textContent = error.message;
  });
}

const showForecast = guard("forecast-panel", loadForecast);
const showCounterfactual = guard("cf-panel", loadCounterfactual);
const showDecomposition = guard("dec-panel", loadDecomposition);
const showSensitivity = guard(null, loadSensitivity);

async function loadSeries() {
  $("message").textContent = "";
  $("cf-unavailable").hidden = true;
  $("dec-unavailable").hidden = true;
  await showForecast();
  buildScenarioControls();
  $("dec-month").value = "";
  await Promise.all([showCounterfactual(), showDecomposition()]);
  await showSensitivity();
}

async function loadAll() {
  const [list, models] = await Promise.all([call("/v1/series"), call("/v1/models")]);
  state.version = list.model_version;
  state.models = models;
  const preferred = models.level.filter((l) => [50, 80, 95].includes(l));
  state.levels = preferred.length ? preferred : models.level;
  state.series = Object.fromEntries(list.series.map((s) => [s.series, s]));
  const before = $("series").value || wanted.get("series");
  $("series").replaceChildren(...list.series.map((s) => el("option", { value: s.series }, `${s.series} (${s.model})`)));
  if (state.series[before]) $("series").value = before;
  if (["12", "24", "36"].includes(wanted.get("h"))) $("h").value = wanted.get("h");
  await loadSeries();
}

let pending = null;
const soon = (fn) => () => { clearTimeout(pending); pending = setTimeout(fn, 250); };
$("controls").addEventListener("submit", (e) => e.preventDefault());
$("series").addEventListener("change", guard(null, loadSeries));
$("h").addEventListener("change", showForecast);
$("zoom").addEventListener("click", toggleZoom);
$("cf-form").addEventListener("submit", (e) => { e.preventDefault(); showCounterfactual(); });
$("cf-form").addEventListener("change", soon(showCounterfactual));
$("dec-form").addEventListener("change", showDecomposition);
$("sens-event").addEventListener("change", showSensitivity);
guard("forecast-panel", loadAll)().finally(watchHealth);
