// KADES dashboard: plain JavaScript, no build step. Talks to the api it is served by.
"use strict";
const CHANNELS = ["patterns", "whale_movements", "anomalies", "liquidityChanges", "wash_trading", "cyclic_transfers"];
const state = { key: localStorage.getItem("kades.apiKey") || "", lastId: sessionStorage.getItem("kades.lastId"),
                token: null, ws: null, retryMs: 500, shown: new Set(),
                selects: 0,             // the latest token click: an older answer is dropped
                reconnect: null, polls: [] };  // what start() set going, undone by stop()
const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { "X-API-Key": state.key, "Content-Type": "application/json" } });
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(body && body.error ? body.error.message : response.statusText);
  return body;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// Loads overlap (every 10 s, after tracking, after untracking): only the newest one started
// draws the list, or an older answer could put back a token just untracked.
let tokenLoads = 0;

async function loadTokens() {
  const load = ++tokenLoads;
  const body = await api("/v1/tokens/tracked");
  if (load !== tokenLoads) return;
  const rows = new Map();
  for (const t of body.riskiest) rows.set(t.token, { token: t.token, score: t.score, level: t.level });
  for (const t of body.tokens) rows.set(t.token, { token: t.token, score: t.risk_score, level: t.risk_level, tracked: true });
  const tbody = $("tokens").querySelector("tbody");
  tbody.replaceChildren();
  for (const row of rows.values()) {
    const tr = document.createElement("tr");
    tr.className = "token";
    tr.dataset.token = row.token;
    tr.append(cell((row.tracked ? "★ " : "") + row.token.slice(0, 10) + "…"),
              cell(row.score == null ? "—" : row.score.toFixed(2)),
              cell(row.level || "—", "level-" + (row.level || "none")), untrackCell(row));
    tr.addEventListener("click", () => selectToken(row.token));
    tbody.append(tr);
  }
  if (!state.token && rows.size) selectToken(rows.keys().next().value);
}

// A tracked token's row ends with a button that stops tracking it (the row stays while the
// token is among the riskiest).
function untrackCell(row) {
  const td = cell("");
  if (!row.tracked) return td;
  const button = document.createElement("button");
  button.className = "untrack";
  button.textContent = "✕";
  button.title = "stop tracking";
  button.addEventListener("click", async (event) => {
    event.stopPropagation();
    try {
      await api(`/v1/tokens/tracked/${row.token}`, { method: "DELETE" });
    } catch (error) {
      $("status").textContent = error.message;
    }
    loadTokens();
  });
  td.append(button);
  return td;
}

async function selectToken(token) {
  // Only the latest click's answers are shown: a slow answer for the token clicked before
  // was drawn under the new token's name (its risk, its evidence, its charts).
  const select = ++state.selects;
  state.token = token;
  let analysis;
  try {
    analysis = await api(`/v1/token/${token}/analysis?timeframe=1h`);
  } catch (error) {
    if (select !== state.selects) return;
    $("chart-title").textContent = token;
    $("why").textContent = `analysis unavailable: ${error.message}`;
    return;
  }
  if (select !== state.selects) return;
  $("chart-title").textContent = token;
  const markers = drawSeries($("price-chart"), analysis.series.price, { markers: analysis.anomalies, valueTitle: "price" });
  $("price-chart").dataset.markers = String(markers.length);
  drawSeries($("risk-chart"), analysis.series.risk, { min: 0, max: 1, color: "#f0883e", valueTitle: "risk score" });
  showEvidence(analysis);
  try {
    const s = await api(`/v1/analytics/sentiment/${token}?timeframe=1h`);
    if (select !== state.selects) return;
    $("sentiment").textContent = `score ${Number(s.score).toFixed(2)} (${s.label}), ${s.mentions} mentions, ${s.unique_authors} authors`;
  } catch (error) {
    $("sentiment").textContent = `sentiment unavailable: ${error.message}`;
  }
}

// The key evidence of an anomaly's details: its summary, then up to six plain fields (those
// of a nested `evidence` object too), lists shown by their length.
function evidenceText(details) {
  if (!details) return "not stored";
  const fields = { ...details, ...(typeof details.evidence === "object" ? details.evidence : {}) };
  const parts = [];
  for (const [name, value] of Object.entries(fields)) {
    if (name === "summary" || name === "evidence" || value === null || parts.length >= 6) continue;
    if (typeof value === "number") parts.push(`${name} ${Number(value.toPrecision(4))}`);
    else if (typeof value === "string" || typeof value === "boolean") parts.push(`${name} ${String(value).slice(0, 48)}`);
    else if (Array.isArray(value)) parts.push(`${name} ×${value.length}`);
  }
  return [fields.summary, parts.join(", ")].filter(Boolean).join(" — ");
}

function anomalyRows(tbody, anomalies, withContribution) {
  tbody.replaceChildren();
  for (const a of anomalies) {
    const tr = document.createElement("tr");
    tr.className = "anomaly";
    tr.append(cell(a.time.slice(11, 19)), cell(a.anomaly_type), cell(a.detector || "—"), cell(Number(a.score).toFixed(2)));
    if (withContribution) tr.append(cell(a.contribution == null ? "—" : Number(a.contribution).toFixed(2)));
    tr.append(cell(evidenceText(a.details), "evidence"));
    tbody.append(tr);
  }
  if (!anomalies.length) {
    const tr = document.createElement("tr");
    tr.append(cell("none", "empty"));
    tbody.append(tr);
  }
}

function showEvidence(analysis) {
  const components = Object.entries(analysis.components || {}).map(([k, v]) => `${k} ${Number(v).toFixed(2)}`).join(", ");
  $("why").textContent = analysis.risk_score == null ? "no risk score yet"
    : `risk ${analysis.risk_score.toFixed(2)} (${analysis.risk_level}) — ${components}`;
  anomalyRows($("explanation").querySelector("tbody"), (analysis.explanation || []).filter((e) => e.anomaly_type), true);
  anomalyRows($("anomalies").querySelector("tbody"), analysis.anomalies, false);
}

// One feed entry per alert (the WebSocket and GET /v1/alerts may both bring it), newest on top.
function showAlert(alert, alertId) {
  if (alertId && state.shown.has(alertId)) return;
  if (alertId) state.shown.add(alertId);
  const li = document.createElement("li");
  li.className = "alert level-" + alert.level;
  li.dataset.token = alert.token;
  li.dataset.time = alert.time;
  li.dataset.alertId = alertId || "";
  li.textContent = `${alert.time.slice(11, 19)} ${alert.kind} ${alert.level} ${alert.score.toFixed(2)} — ${alert.message}`;
  const older = [...$("feed").children].find((other) => Date.parse(other.dataset.time) < Date.parse(alert.time));
  $("feed").insertBefore(li, older || null);
  while ($("feed").children.length > 200) { state.shown.delete($("feed").lastChild.dataset.alertId); $("feed").lastChild.remove(); }
}

// Alerts raised before the page opened: asked once the WebSocket is subscribed, so that
// nothing raised in between is missed (duplicates are dropped by id).
async function loadRecentAlerts() {
  const body = await api("/v1/alerts?limit=50");
  for (const alert of body.alerts) showAlert(alert, alert.alert_id);
  $("feed").dataset.loaded = "true";
}

function connect() {
  if (!state.key) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let url = `${scheme}://${location.host}/v1/ws?api_key=${encodeURIComponent(state.key)}`;
  if (state.lastId) url += `&last_id=${encodeURIComponent(state.lastId)}`;
  const ws = new WebSocket(url);
  state.ws = ws;
  state.reconnect = null;
  ws.onopen = () => ws.send(JSON.stringify({ type: "subscribe", channels: CHANNELS }));
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "subscribed") {
      $("status").textContent = "live"; $("status").className = "status live"; state.retryMs = 500;
      loadRecentAlerts().catch((error) => { $("status").textContent = `alerts unavailable: ${error.message}`; });
    }
    if (message.type === "alert") {
      state.lastId = message.id; sessionStorage.setItem("kades.lastId", message.id);
      showAlert(message.data, message.alert_id);
      if (message.data.token === state.token) selectToken(message.data.token);
    }
    if (message.type === "error") {
      if (message.data.last_id) {  // 1006, too slow: where the reconnection resumes
        state.lastId = message.data.last_id; sessionStorage.setItem("kades.lastId", message.data.last_id);
      }
      $("status").textContent = `error ${message.data.code}: ${message.data.message}`;
    }
  };
  ws.onclose = () => {
    if (ws !== state.ws) return;  // a socket replaced (a new key): its successor lives on
    $("status").className = "status";
    if ($("status").textContent === "live") $("status").textContent = "reconnecting…";
    state.reconnect = setTimeout(connect, state.retryMs);  // replay by last id covers the gap
    state.retryMs = Math.min(10000, state.retryMs * 2);
  };
  const ping = setInterval(() => {
    if (ws !== state.ws) { clearInterval(ping); return; }
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping" }));
  }, 20000);
}

// Undo what start() set going: each Connect added a socket (its old one reconnecting on
// close), a reconnect chain and a 10 s poll of its own, to the key's 10 connections.
function stop() {
  const old = state.ws;
  state.ws = null;
  if (old) { old.onclose = null; old.close(); }
  clearTimeout(state.reconnect);
  state.reconnect = null;
  for (const poll of state.polls) clearInterval(poll);
  state.polls = [];
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = $("api-key").value.trim();
  localStorage.setItem("kades.apiKey", state.key);
  stop();
  start();
});

$("track-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {  // a refusal (a bad address, 409 at the key's limit) is shown, not dropped
    await api("/v1/token/track", { method: "POST", body: JSON.stringify({
      token_address: $("track-address").value.trim(),
      tracking_parameters: { alert_threshold: Number($("track-threshold").value) } }) });
  } catch (error) {
    $("status").textContent = `not tracked: ${error.message}`;
    return;
  }
  loadTokens();
});

function start() {
  loadTokens().catch((error) => { $("status").textContent = error.message; });
  connect();
  state.polls.push(setInterval(() => loadTokens().catch(() => {}), 10000));
}

$("api-key").value = state.key;
if (state.key) start();
