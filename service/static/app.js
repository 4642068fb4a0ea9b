// The chart page: pick a series and a scenario, see the fan chart. Plain JS, same origin, no CDN.
"use strict";
const $ = (id) => document.getElementById(id);
let seriesInfo = {};

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
  return response;
}

function option(value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  return o;
}

// The page's own query string preselects: /?series=KEY&event=ID&h=12
const wanted = new URLSearchParams(window.location.search);

async function loadSeries() {
  const data = await (await call("/v1/series")).json();
  $("model").textContent = `Model version ${data.model_version}: ${data.series.length} series.`;
  $("series").replaceChildren(...data.series.map((s) => option(s.series, `${s.series} (${s.model})`)));
  seriesInfo = Object.fromEntries(data.series.map((s) => [s.series, s]));
  if (seriesInfo[wanted.get("series")]) $("series").value = wanted.get("series");
  if (["12", "24", "36"].includes(wanted.get("h"))) $("h").value = wanted.get("h");
  await loadScenarios();
  const event = wanted.get("event");
  const match = [...$("scenario").options].find((o) => o.value && JSON.parse(o.value).remove[0].event === event);
  if (match) $("scenario").value = match.value;
}

async function loadScenarios() {
  const key = $("series").value;
  const choices = [option("", "Forecast (no scenario)")];
  if (seriesInfo[key] && seriesInfo[key].counterfactual) {
    const url = `/v1/interventions?series=${encodeURIComponent(key)}`;
    const data = await (await call(url)).json();
    // One choice per regressor: a group of events is removed as one.
    const byRegressor = new Map();
    for (const e of data.events) {
      if (!byRegressor.has(e.regressor)) byRegressor.set(e.regressor, []);
      byRegressor.get(e.regressor).push(e);
    }
    for (const [regressor, events] of [...byRegressor].reverse()) {
      const scenario = JSON.stringify({ remove: [{ event: regressor }] });
      const label = events.length > 1 ? `${regressor} (${events.length} events)` : events[0].name;
      choices.push(option(scenario, `Without: ${label}, ${events[0].start.slice(0, 7)}`));
    }
  }
  $("scenario").replaceChildren(...choices);
}

async function show(event) {
  if (event) event.preventDefault();
  const series = $("series").value;
  const scenario = $("scenario").value;
  const params = new URLSearchParams({ series });
  let url;
  if (scenario) {
    params.set("scenario", scenario);
    url = `/v1/counterfactual.png?${params}`;
  } else {
    params.set("h", $("h").value);
    url = `/v1/forecast.png?${params}`;
  }
  $("message").textContent = "";
  $("summary").textContent = "";
  try {
    const blob = await (await call(url)).blob();
    const img = $("chart");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(blob);
    img.hidden = false;
    await img.decode();
    if (scenario) {
      const body = JSON.stringify({ series, scenario: JSON.parse(scenario) });
      const result = await (await call("/v1/counterfactual", {
        method: "POST", body, headers: { "Content-Type": "application/json" },
      })).json();
      $("summary").textContent = result.summary;
    }
    document.body.dataset.chart = "loaded";
  } catch (error) {
    document.body.dataset.chart = "error";
    $("message").textContent = error.message;
  }
}

$("controls").addEventListener("submit", show);
$("series").addEventListener("change", () => loadScenarios().then(show).catch((e) => { $("message").textContent = e.message; }));
$("scenario").addEventListener("change", show);
$("h").addEventListener("change", show);
loadSeries().then(show).catch((error) => {
  document.body.dataset.chart = "error";
  $("message").textContent = error.message;
});
