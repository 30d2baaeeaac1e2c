// KADES dashboard: plain JavaScript, no build step. Talks to the api it is served by.
"use strict";
const CHANNELS = ["patterns", "whale_movements", "anomalies", "liquidityChanges", "wash_trading", "cyclic_transfers"];
const state = { key: localStorage.getItem("kades.apiKey") || "", lastId: sessionStorage.getItem("kades.lastId"),
                token: null, ws: null, retryMs: 500 };
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

async function loadTokens() {
  const body = await api("/v1/tokens/tracked");
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
              cell(row.level || "—", "level-" + (row.level || "none")));
    tr.addEventListener("click", () => selectToken(row.token));
    tbody.append(tr);
  }
  if (!state.token && rows.size) selectToken(rows.keys().next().value);
}

function drawSeries(canvas, points, { markers = [], min = null, max = null, color = "#58a6ff" } = {}) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!points.length) return [];
  const times = points.map((p) => Date.parse(p[0])), values = points.map((p) => p[1]);
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 1);
  const lo = min ?? Math.min(...values), hi = max ?? Math.max(...values, lo + 1e-12);
  const x = (t) => 4 + (canvas.width - 8) * (t - t0) / (t1 - t0);
  const y = (v) => canvas.height - 4 - (canvas.height - 8) * (v - lo) / (hi - lo);
  ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.beginPath();
  points.forEach((p, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(times[i]), y(values[i])));
  ctx.stroke();
  if (points.length < 3) {  // a line of one point is invisible: draw the points
    ctx.fillStyle = color;
    points.forEach((p, i) => { ctx.beginPath(); ctx.arc(x(times[i]), y(values[i]), 3, 0, 2 * Math.PI); ctx.fill(); });
  }
  const drawn = [];
  ctx.fillStyle = "#f85149";
  for (const marker of markers) {
    const t = Date.parse(marker.time);
    if (t < t0 || t > t1) continue;
    // the marker sits on the price line at the nearest point in time
    let nearest = 0;
    times.forEach((ti, i) => { if (Math.abs(ti - t) < Math.abs(times[nearest] - t)) nearest = i; });
    ctx.beginPath(); ctx.arc(x(t), y(values[nearest]), 4, 0, 2 * Math.PI); ctx.fill();
    drawn.push(marker);
  }
  return drawn;
}

async function selectToken(token) {
  state.token = token;
  $("chart-title").textContent = token;
  const analysis = await api(`/v1/token/${token}/analysis?timeframe=1h`);
  const markers = drawSeries($("price-chart"), analysis.series.price, { markers: analysis.anomalies });
  $("price-chart").dataset.markers = String(markers.length);
  drawSeries($("risk-chart"), analysis.series.risk, { min: 0, max: 1, color: "#f0883e" });
  try {
    const s = await api(`/v1/analytics/sentiment/${token}?timeframe=1h`);
    $("sentiment").textContent = `score ${Number(s.score).toFixed(2)} (${s.label}), ${s.mentions} mentions, ${s.unique_authors} authors`;
  } catch (error) {
    $("sentiment").textContent = `sentiment unavailable: ${error.message}`;
  }
}

function showAlert(message) {
  const alert = message.data;
  const li = document.createElement("li");
  li.className = "alert level-" + alert.level;
  li.dataset.token = alert.token;
  li.textContent = `${alert.time.slice(11, 19)} ${alert.kind} ${alert.level} ${alert.score.toFixed(2)} — ${alert.message}`;
  $("feed").prepend(li);
  while ($("feed").children.length > 200) $("feed").lastChild.remove();
  if (alert.token === state.token) selectToken(alert.token);
}

function connect() {
  if (!state.key) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let url = `${scheme}://${location.host}/v1/ws?api_key=${encodeURIComponent(state.key)}`;
  if (state.lastId) url += `&last_id=${encodeURIComponent(state.lastId)}`;
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "subscribe", channels: CHANNELS }));
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "subscribed") { $("status").textContent = "live"; $("status").className = "status live"; state.retryMs = 500; }
    if (message.type === "alert") { state.lastId = message.id; sessionStorage.setItem("kades.lastId", message.id); showAlert(message); }
    if (message.type === "error") $("status").textContent = `error ${message.data.code}: ${message.data.message}`;
  };
  ws.onclose = () => {
    $("status").className = "status";
    if ($("status").textContent === "live") $("status").textContent = "reconnecting…";
    setTimeout(connect, state.retryMs);  // replay by last id covers the gap
    state.retryMs = Math.min(10000, state.retryMs * 2);
  };
  setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: "ping" })), 20000);
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = $("api-key").value.trim();
  localStorage.setItem("kades.apiKey", state.key);
  if (state.ws) state.ws.close();
  start();
});

$("track-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await api("/v1/token/track", { method: "POST", body: JSON.stringify({
    token_address: $("track-address").value.trim(),
    tracking_parameters: { alert_threshold: Number($("track-threshold").value) } }) });
  loadTokens();
});

function start() {
  loadTokens().catch((error) => { $("status").textContent = error.message; });
  connect();
  setInterval(() => loadTokens().catch(() => {}), 10000);
}

$("api-key").value = state.key;
if (state.key) start();
