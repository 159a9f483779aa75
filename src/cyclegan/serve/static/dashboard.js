// Training dashboard: polls /api/runs/<id> every few seconds and draws progress, loss curves and samples.
"use strict";
const POLL_MS = Number(new URLSearchParams(location.search).get("every") || 3) * 1000;
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];
const el = (tag, props, ...children) => {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  e.append(...children);
  return e;
};

function fmt(v, digits) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(digits || 4);
  return String(v);
}

function ago(s) {
  if (s === null || s === undefined) return "–";
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

function movingAverage(ys, w) {
  const out = []; let total = 0, count = 0;
  for (let i = 0; i < ys.length; i++) {
    if (ys[i] !== null) { total += ys[i]; count++; }
    if (i >= w && ys[i - w] !== null) { total -= ys[i - w]; count--; }
    out.push(count ? total / count : null);
  }
  return out;
}

// Loss curves on a canvas: log y when every value is positive; smoothed when there are many points.
function drawLosses(canvas, legend, losses) {
  const dpr = window.devicePixelRatio || 1, W = canvas.clientWidth || 700, H = 300;
  canvas.width = W * dpr; canvas.height = H * dpr; canvas.style.height = H + "px";
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, W, H);
  const xs = losses.step, names = Object.keys(losses.series);
  legend.replaceChildren();
  if (!xs.length || !names.length) {
    ctx.fillStyle = "#666"; ctx.font = "14px system-ui"; ctx.fillText("No losses logged yet.", 20, 30); return;
  }
  const smooth = xs.length > 100;
  const series = names.map((n) => smooth ? movingAverage(losses.series[n], Math.max(2, Math.floor(xs.length / 100)))
                                        : losses.series[n]);
  const all = series.flat().filter((v) => v !== null);
  const log = all.every((v) => v > 0);
  const ty = (v) => log ? Math.log10(v) : v;
  let ylo = Math.min(...all.map(ty)), yhi = Math.max(...all.map(ty));
  if (yhi === ylo) { ylo -= 0.5; yhi += 0.5; }
  let xlo = xs[0], xhi = xs[xs.length - 1];
  if (xhi === xlo) { xlo -= 1; xhi += 1; }
  const L = 56, R = 10, T = 10, B = 30, pw = W - L - R, ph = H - T - B;
  const px = (x) => L + (x - xlo) / (xhi - xlo) * pw, py = (v) => T + (1 - (ty(v) - ylo) / (yhi - ylo)) * ph;
  ctx.font = "11px system-ui"; ctx.strokeStyle = "#e5e5e5"; ctx.fillStyle = "#444"; ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const gy = T + i * ph / 4, value = yhi - i * (yhi - ylo) / 4;
    ctx.beginPath(); ctx.moveTo(L, gy); ctx.lineTo(L + pw, gy); ctx.stroke();
    ctx.textAlign = "right"; ctx.fillText((log ? 10 ** value : value).toPrecision(3), L - 4, gy + 4);
    ctx.textAlign = "center"; ctx.fillText(String(Math.round(xlo + i * (xhi - xlo) / 4)), L + i * pw / 4, T + ph + 14);
  }
  ctx.fillText("step", L + pw / 2, H - 3);
  ctx.strokeStyle = "#bbb"; ctx.strokeRect(L, T, pw, ph);
  series.forEach((ys, k) => {
    const color = PALETTE[k % PALETTE.length];
    ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 1.5; ctx.beginPath();
    let drawn = 0;
    ys.forEach((v, i) => {
      if (v === null) return;
      if (drawn++ === 0) ctx.moveTo(px(xs[i]), py(v)); else ctx.lineTo(px(xs[i]), py(v));
    });
    ctx.stroke();
    if (drawn === 1) { const i = ys.findIndex((v) => v !== null); ctx.beginPath(); ctx.arc(px(xs[i]), py(ys[i]), 3, 0, 7); ctx.fill(); }
    const swatch = el("i"); swatch.style.background = color;
    legend.append(el("span", {}, swatch, names[k]));
  });
  legend.append(el("span", { className: "muted", textContent: `(${log ? "log" : "linear"} scale${smooth ? ", moving average" : ""})` }));
}

function table(rows) {
  return el("table", { className: "data" }, ...rows.map(([k, v]) => el("tr", {}, el("td", { textContent: k }),
    el("td", { className: "num", textContent: v }))));
}

const views = {};

function view(run) {
  if (views[run.id]) return views[run.id];
  const v = {
    progress: el("div"), canvas: el("canvas", { className: "losses" }), legend: el("div", { className: "legend" }),
    samples: el("div", { className: "samples" }), evals: el("div"), config: el("pre"),
    warnings: el("div", { className: "warnings" }),
  };
  v.canvas.style.width = "100%";
  const section = el("section", { className: "run", id: `run-${run.id}` },
    el("h2", { textContent: run.label }),
    v.warnings,
    el("div", { className: "top" }, v.progress),
    el("h3", { textContent: "Losses" }), v.canvas, v.legend,
    el("h3", { textContent: "Latest samples" }),
    el("p", { className: "muted", textContent: "Each grid: real A | G(A) | F(G(A)) over real B | F(B) | G(F(B))." }),
    v.samples, v.evals,
    el("details", {}, el("summary", { textContent: "config.yaml" }), v.config));
  $runs.append(section);
  views[run.id] = v;
  return v;
}

const $runs = document.getElementById("runs"), $status = document.getElementById("status");

function render(run, s) {
  const v = view(run), p = s.progress;
  const epoch = p.epoch === null || p.epoch === undefined ? "–" :
    p.epochs_planned ? `${p.epoch} of ${p.epochs_planned}` : String(p.epoch);
  v.progress.replaceChildren(table([
    ["step", fmt(p.step)], ["epoch", epoch], ["learning rate", fmt(p.lr, 3)],
    ["speed", p.it_per_s ? `${p.it_per_s.toPrecision(3)} it/s (${p.sec_per_step.toPrecision(3)} s/step)` : "–"],
    ["last log line", ago(p.log_age_s)], ["checkpoint", ago(p.checkpoint_age_s)], ["log lines", fmt(p.log_lines)],
  ]));
  drawLosses(v.canvas, v.legend, s.losses);
  const warnings = s.warnings || [];
  v.warnings.replaceChildren(...(warnings.length ? [el("h3", { textContent: "Warnings (latest evaluation)" }),
    el("ul", {}, ...warnings.map((w) => el("li", { className: "warning", textContent: w })))] : []));
  const have = [...v.samples.querySelectorAll("img")].map((i) => i.dataset.step).join(",");
  if (have !== s.samples.map((x) => String(x.step)).join(",")) {
    v.samples.replaceChildren(...s.samples.map((x) => {
      const img = el("img", { src: x.url, alt: `samples at step ${x.step}` });
      img.dataset.step = x.step;
      return el("figure", {}, img, el("figcaption", { textContent: `step ${x.step}` }));
    }));
    if (!s.samples.length) v.samples.append(el("p", { className: "muted", textContent: "No sample grids yet." }));
  }
  if (s.evals.length) {
    const cols = [...new Set(s.evals.flatMap((r) => Object.keys(r)))].filter((k) => k !== "metric" && k !== "best");
    v.evals.replaceChildren(el("h3", { textContent: "Evaluations" }), el("table", { className: "data" },
      el("tr", {}, ...cols.map((c) => el("th", { textContent: c }))),
      ...s.evals.map((r) => el("tr", {}, ...cols.map((c) => el("td", { className: "num", textContent: fmt(r[c]) }))))));
  }
  if (v.config.textContent !== (s.config || "")) v.config.textContent = s.config || "(no config.yaml)";
}

async function poll() {
  try {
    const runs = await (await fetch("/api/runs")).json();
    if (!runs.length) $status.textContent = "No run dirs: start the server with one (cyclegan serve runs/NAME).";
    for (const run of runs) {
      const r = await fetch(`/api/runs/${encodeURIComponent(run.id)}`);
      if (r.ok) render(run, await r.json());
    }
    if (runs.length) $status.textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every ${POLL_MS / 1000} s`;
  } catch (e) {
    $status.textContent = `Cannot update (${e}); retrying…`;
  }
  setTimeout(poll, POLL_MS);
}
poll();
