// KADES dashboard charts: a time series on a canvas with labelled time and value axes.
"use strict";
const MARGIN = { left: 56, right: 10, top: 16, bottom: 26 };
const MINUTE = 60000;
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * MINUTE);

// Round steps (1, 2, 5 × 10^n) so that about `count` ticks cover [lo, hi].
// A step chosen from the span alone can leave 2 ticks once they are aligned (a 27-minute
// span on 10-minute steps): take the next smaller step until there are at least 3.
const MIN_TICKS = 3;

function ticksEvery(lo, hi, step) {
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(v);
  return ticks;
}

function valueTicks(lo, hi, count = 4) {
  const raw = (hi - lo) / count, magnitude = 10 ** Math.floor(Math.log10(raw));
  const steps = [0.2, 0.5, 1, 2, 5, 10].map((m) => m * magnitude);
  let i = steps.findIndex((s) => s >= raw);
  while (i > 0 && ticksEvery(lo, hi, steps[i]).length < MIN_TICKS) i -= 1;
  return ticksEvery(lo, hi, steps[i]);
}

function timeTicks(t0, t1, count = 5) {
  let i = TIME_STEPS.findIndex((s) => (t1 - t0) / s <= count);
  if (i < 0) i = TIME_STEPS.length - 1;
  while (i > 0 && ticksEvery(t0, t1, TIME_STEPS[i]).length < MIN_TICKS) i -= 1;
  return ticksEvery(t0, t1, TIME_STEPS[i]);
}

function formatValue(v) {
  return Math.abs(v) >= 1000 ? v.toFixed(0) : String(Number(v.toPrecision(3)));
}

function formatTime(t, spanMs) {  // UTC, as the axis title says
  const iso = new Date(t).toISOString();
  return spanMs > 2 * 1440 * MINUTE ? iso.slice(5, 10) : iso.slice(11, 16);
}

// Draws `points` ([[iso time, value], …]) with axes titled `valueTitle` and "time (UTC)";
// `markers` (objects with `time`) sit on the line. Returns the markers drawn. The tick labels
// are kept on the canvas's dataset (what the browser test reads: pixels say nothing).
function drawSeries(canvas, points, { markers = [], min = null, max = null, color = "#58a6ff", valueTitle = "value" } = {}) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  canvas.dataset.xTicks = canvas.dataset.yTicks = "";
  if (!points.length) return [];
  const times = points.map((p) => Date.parse(p[0])), values = points.map((p) => p[1]);
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + MINUTE);
  let lo = min ?? Math.min(...values), hi = max ?? Math.max(...values);
  if (hi - lo <= Math.abs(hi) * 1e-9) { const pad = Math.abs(lo) * 0.05 || 1; lo -= pad; hi += pad; }
  const width = canvas.width - MARGIN.left - MARGIN.right, height = canvas.height - MARGIN.top - MARGIN.bottom;
  const x = (t) => MARGIN.left + width * (t - t0) / (t1 - t0);
  const y = (v) => MARGIN.top + height - height * (v - lo) / (hi - lo);
  drawAxes(ctx, canvas, { t0, t1, lo, hi, x, y, valueTitle });
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
    // the marker sits on the line at the nearest point in time
    let nearest = 0;
    times.forEach((ti, i) => { if (Math.abs(ti - t) < Math.abs(times[nearest] - t)) nearest = i; });
    ctx.beginPath(); ctx.arc(x(t), y(values[nearest]), 4, 0, 2 * Math.PI); ctx.fill();
    drawn.push(marker);
  }
  return drawn;
}

function drawAxes(ctx, canvas, { t0, t1, lo, hi, x, y, valueTitle }) {
  const bottom = canvas.height - MARGIN.bottom, right = canvas.width - MARGIN.right;
  ctx.strokeStyle = "#30363d"; ctx.fillStyle = "#8a96a3"; ctx.lineWidth = 1; ctx.font = "11px system-ui, sans-serif";
  ctx.beginPath(); ctx.moveTo(MARGIN.left, MARGIN.top); ctx.lineTo(MARGIN.left, bottom); ctx.lineTo(right, bottom); ctx.stroke();
  const yLabels = [], xLabels = [];
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const v of valueTicks(lo, hi)) {
    const label = formatValue(v);
    ctx.fillText(label, MARGIN.left - 5, y(v));
    ctx.beginPath(); ctx.moveTo(MARGIN.left - 3, y(v)); ctx.lineTo(right, y(v)); ctx.globalAlpha = 0.3; ctx.stroke(); ctx.globalAlpha = 1;
    yLabels.push(label);
  }
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (const t of timeTicks(t0, t1)) {
    const label = formatTime(t, t1 - t0);
    ctx.fillText(label, x(t), bottom + 4);
    ctx.beginPath(); ctx.moveTo(x(t), bottom); ctx.lineTo(x(t), bottom + 3); ctx.stroke();
    xLabels.push(label);
  }
  ctx.textAlign = "left"; ctx.fillText(valueTitle, MARGIN.left + 4, 2);  // clear of the tick labels
  ctx.textAlign = "right"; ctx.textBaseline = "bottom"; ctx.fillText("time (UTC)", right, canvas.height);
  canvas.dataset.yTicks = yLabels.join("|");
  canvas.dataset.xTicks = xLabels.join("|");
  canvas.dataset.axes = `${valueTitle}|time (UTC)`;
}
