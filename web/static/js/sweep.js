// A sweep's page (/sweeps/{id}): progress, the best run so far with its config, parameter
// importance, a parallel-coordinates plot whose brushes filter the runs table (and the scatter),
// the metric against a chosen key, the best-so-far curve, the top runs' curves overlaid, and
// pause / resume / cancel / max_runs controls. The server puts the sweep in the page; it is read
// again when the event stream says it changed: the sweep's own `sweep` events (runs queued or
// pruned, status, settings) and its runs' status and metrics events, at most every RELOAD_MS.
// The page marks "sweep-ready" (performance mark) once its first data is drawn and painted, then
// fills the runs table and sets `data-ready`.

import * as charts from "./charts.js";
import { byId, el, say } from "./dom.js";
import { api, messageOf } from "./http.js";
import { show } from "./pure/config_text.js";
import { formatNumber, formatValue } from "./pure/format.js";
import { axisSpecs } from "./pure/parallel_coords.js";
import { bestSoFarColumns, concernsSweep, importanceBars, isLive, topRuns } from "./pure/sweep_results.js";
import { ParallelPlot } from "./sweep_parallel.js";
import { progressLegend, progressParts, progressText } from "./sweep_progress.js";
import { drawScatter } from "./sweep_scatter.js";
import { streamOpened, subscribe } from "./live.js";
import { confirmAction, debounce, statusBadge } from "./widgets.js";

const $ = byId;
const RELOAD_MS = 2000;
const TOP_RUNS = 5;
const TABLE_ROWS = 100;
const TOP_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];
const pageEl = $("sweep-page");
const sweepId = Number(pageEl.dataset.sweepId);
// Pause, resume, cancel and max_runs only for users the API lets change the sweep.
const canChange = pageEl.dataset.canChange === "true";
const message = $("sweep-message");

/** @type {any} the sweep as last read */
let sweep = null;
/** @type {import("./pure/parallel_coords.js").AxisSpec[]} */
let specs = [];
/** @type {Set<number>} runs inside the brushes */
let selected = new Set();
let brushed = false;
/** @type {any[]} the runs, best score first */
let ordered = [];
let showAllRows = false;
let topKey = "";
/** @type {charts.Chart | null} */
let bestChart = null;
/** @type {charts.Chart | null} */
let topChart = null;

const parallel = new ParallelPlot($("parallel"), (ids, isBrushed) => {
  selected = ids;
  brushed = isBrushed;
  filterTable();
  drawScatterNow();
  $("clear-brushes").hidden = !isBrushed;
});

// --- header, progress, best run, importance -------------------------------------------------

function renderHead() {
  $("sweep-name").textContent = sweep.name;
  $("sweep-status").replaceChildren(statusBadge(sweep.status));
  $("sweep-facts").textContent = `#${sweep.id} · ${sweep.method} · ${sweep.goal} ${sweep.metric} · ${sweep.parallel} at once`;
  document.title = `${sweep.name} · segtrack`;
  $("sweep-pause").hidden = !canChange || sweep.status !== "running";
  $("sweep-resume").hidden = !canChange || sweep.status !== "paused";
  $("sweep-cancel").hidden = !canChange || sweep.status === "finished" || sweep.status === "cancelled";
  $("max-runs-form").hidden = !canChange || sweep.status === "cancelled";
  const input = $("max-runs-input", HTMLInputElement);
  if (document.activeElement !== input) input.value = String(sweep.max_runs);
  const text = progressText(sweep.counts, sweep.max_runs);
  const bar = $("sweep-progress");
  bar.replaceChildren(...progressParts(sweep.counts, sweep.max_runs));
  bar.setAttribute("aria-label", text.long);
  $("progress-legend").replaceChildren(...progressLegend(sweep.counts), el("li", { class: "muted" }, text.short));
  const note = $("sweep-note");
  note.textContent = sweep.note || "";
  note.hidden = !sweep.note;
}

function renderBest() {
  const best = sweep.best_run;
  if (!best) {
    $("best-run").replaceChildren(el("p", { class: "muted" }, "No run has a score yet."));
    return;
  }
  const config = { ...(sweep.spec.config || {}), ...best.params };
  const swept = new Set(Object.keys(best.params));
  $("best-run").replaceChildren(
    el("p", {}, el("a", { href: `/runs/${best.id}`, id: "best-run-link" }, best.name), el("span", { class: "muted" }, ` #${best.id} · trial ${best.trial_number} · `),
      el("strong", {}, `${sweep.metric} ${formatNumber(best.value, 4)}`)),
    el("table", { class: "best-config", "aria-label": "Its config" },
      el("tbody", {}, Object.keys(config).sort().map((key) => el("tr", { class: swept.has(key) ? "swept" : "" },
        el("th", { scope: "row" }, key, swept.has(key) ? el("span", { class: "muted" }, " (swept)") : ""),
        el("td", {}, swept.has(key) ? el("strong", {}, show(config[key])) : show(config[key])))))));
}

function renderImportance() {
  const bars = importanceBars(sweep.importance);
  if (!bars.length) {
    $("importance").replaceChildren(el("p", { class: "muted" }, "Shown once two runs have a score."));
    return;
  }
  $("importance").replaceChildren(el("ul", { class: "importance-bars" }, bars.map((bar) => el("li", { "data-key": bar.key },
    el("code", {}, bar.key),
    el("span", { class: "bar", style: `width:${(bar.share * 100).toFixed(1)}%` }),
    el("span", { class: "num" }, formatNumber(bar.value, 3))))),
  el("p", { class: "muted" }, "Optuna's PED-ANOVA importance of each key to the metric."));
}

// --- plots -----------------------------------------------------------------------------------

function renderScatterPicker() {
  const picker = $("scatter-key", HTMLSelectElement);
  const keys = specs.filter((spec) => !spec.metric).map((spec) => spec.key);
  const current = picker.value || keys[0] || "";
  if ([...picker.options].map((option) => option.value).join() !== keys.join()) {
    picker.replaceChildren(...keys.map((key) => el("option", { value: key }, key)));
  }
  picker.value = keys.includes(current) ? current : keys[0] || "";
  $("scatter-title").textContent = `${sweep.metric} against`;
}

function drawScatterNow() {
  if (!sweep) return;
  const key = $("scatter-key", HTMLSelectElement).value;
  const axis = specs.find((spec) => spec.key === key && !spec.metric);
  if (!axis) { $("scatter").replaceChildren(el("p", { class: "muted" }, "No swept key.")); return; }
  drawScatter($("scatter"), sweep.runs, axis, sweep.metric, sweep.goal, selected);
}

function renderBestSoFar() {
  if (!bestChart) {
    bestChart = charts.create($("best-so-far"), { id: "sweep:best", title: `Best ${sweep.metric} so far`, xLabel: "trial", emptyText: "No finished trial yet" });
    bestChart.setSeries([
      { key: "best", label: "best so far", color: "#16a34a" },
      { key: "score", label: "trial's score", color: "#94a3b8", dash: [2, 3] },
    ]);
  }
  const columns = bestSoFarColumns(sweep.best_so_far);
  bestChart.setPoints("best", columns.steps, columns.best);
  bestChart.setPoints("score", columns.steps, columns.values);
}

/** The top runs' curves of the metric, read again when they change or while they train. */
async function renderTopCurves() {
  /** @type {any[]} */
  const top = topRuns(/** @type {any[]} */ (sweep.runs), sweep.goal, TOP_RUNS);
  const key = top.map((run) => `${run.id}:${run.status}:${run.epochs_done}`).join(",");
  if (key === topKey) return;
  topKey = key;
  if (!topChart) {
    topChart = charts.create($("top-curves"), { id: "sweep:top", title: sweep.metric, emptyText: "No run has a score yet" });
  }
  topChart.setSeries(top.map((run, i) => ({ key: `run-${run.id}`, label: `${run.name} #${run.id}`, color: TOP_COLORS[i] })));
  if (!top.length) return;
  const query = new URLSearchParams({ run_ids: top.map((run) => run.id).join(","), keys: sweep.metric, max_points: String(topChart.pixelWidth()) });
  const body = await api(`/api/v1/metrics/series?${query}`);
  for (const item of body.items) {
    const series = item.series[sweep.metric];
    if (series) topChart.setPoints(`run-${item.run_id}`, series.step, series.value, series);
  }
}

// --- runs table ------------------------------------------------------------------------------

function renderTable() {
  const sign = sweep.goal === "minimize" ? 1 : -1;
  ordered = [...sweep.runs].sort((a, b) => {
    if (a.value === null || b.value === null) return a.value === null ? (b.value === null ? a.trial_number - b.trial_number : 1) : -1;
    return sign * (a.value - b.value) || a.trial_number - b.trial_number;
  });
  const keys = specs.filter((spec) => !spec.metric).map((spec) => spec.key);
  const head = el("thead", {}, el("tr", {},
    el("th", { class: "num" }, "Trial"), el("th", {}, "Run"), el("th", {}, "Status"),
    keys.map((key) => el("th", {}, key)), el("th", { class: "num" }, sweep.metric), el("th", { class: "num" }, "Epochs")));
  $("trials-table").replaceChildren(head, el("tbody"));
  filterTable();
}

/**
 * A swept value as the table shows it: fractions to four significant digits (the full value is
 * the cell's tooltip), anything else as the config has it.
 * @param {unknown} value
 */
function shortValue(value) {
  return typeof value === "number" && !Number.isInteger(value) ? formatValue(value) : show(value);
}

/** @param {any} run */
function tableRow(run) {
  const keys = specs.filter((spec) => !spec.metric).map((spec) => spec.key);
  const bestId = sweep.best_run ? sweep.best_run.id : null;
  return el("tr", { "data-run-id": run.id, class: run.id === bestId ? "best-row" : "" },
    el("td", { class: "num" }, String(run.trial_number)),
    el("td", {}, el("a", { href: `/runs/${run.id}` }, run.name), el("span", { class: "muted" }, ` #${run.id}`)),
    el("td", { title: run.failure_reason || "" }, statusBadge(run.status),
      run.trial_status && run.trial_status !== run.status
        ? el("span", { class: "muted", title: "Resumed outside the sweep, which keeps its trial as it ended" }, ` (${run.trial_status} trial)`) : null),
    keys.map((key) => el("td", { "data-key": key, title: show(run.params[key]) }, shortValue(run.params[key]))),
    el("td", { class: "num" }, run.value === null ? "–" : formatNumber(run.value, 4)),
    el("td", { class: "num" }, String(run.epochs_done)));
}

/** The runs inside the brushes, best first; the first TABLE_ROWS of them unless all are asked for. */
function filterTable() {
  const inside = brushed ? ordered.filter((run) => selected.has(run.id)) : ordered;
  const shown = showAllRows ? inside : inside.slice(0, TABLE_ROWS);
  const body = $("trials-table").querySelector("tbody");
  if (body) body.replaceChildren(...shown.map(tableRow));
  const of = brushed ? `${inside.length} of ${ordered.length} inside the brushes` : `${ordered.length}`;
  $("trials-count").textContent = of;
  $("trials-table").dataset.shown = String(inside.length);
  const more = $("trials-more", HTMLButtonElement);
  more.hidden = shown.length === inside.length;
  more.textContent = `Show all ${inside.length} (the best ${TABLE_ROWS} are shown)`;
}

// --- data ------------------------------------------------------------------------------------

/**
 * Draw the sweep: as the server put it in the page the first time, then as the API gives it.
 * @param {boolean} [fromPage]
 */
async function load(fromPage = false) {
  const inPage = document.getElementById("sweep-data");
  sweep = fromPage && inPage ? JSON.parse(inPage.textContent) : await api(`/api/v1/sweeps/${sweepId}`);
  performance.mark("sweep-data");
  specs = axisSpecs(sweep.spec.parameters || {}, sweep.metric);
  // The top runs' curves are read while the rest is drawn.
  const curves = renderTopCurves();
  renderHead();
  renderBest();
  renderImportance();
  renderScatterPicker();
  parallel.draw(sweep.runs, specs, sweep.goal);
  renderBestSoFar();
  // The first time, the runs table is filled once the plots are on screen (it costs as much to
  // lay out as they do); afterwards with them.
  if (!fromPage) renderTable();
  performance.mark("sweep-drawn");
  await curves;
  performance.mark("sweep-curves");
}

/** @param {string} action */
async function control(action) {
  try {
    sweep = await api(`/api/v1/sweeps/${sweepId}/${action}`, { method: "POST" });
    say(message, `Sweep ${action === "cancel" ? "cancelled" : action === "pause" ? "paused" : "resumed"}.`, "ok");
    await load();
  } catch (error) {
    say(message, messageOf(error), "error");
  }
}

async function setMaxRuns(event) {
  event.preventDefault();
  const value = Number($("max-runs-input", HTMLInputElement).value);
  try {
    await api(`/api/v1/sweeps/${sweepId}`, { method: "PATCH", json: { max_runs: value } });
    say(message, `The sweep makes up to ${value} runs.`, "ok");
    await load();
  } catch (error) {
    say(message, `max_runs: ${messageOf(error)}`, "error");
  }
}

/** Resolves just after the next frame is painted. */
function painted() {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

async function start() {
  $("sweep-pause").addEventListener("click", () => control("pause"));
  $("sweep-resume").addEventListener("click", () => control("resume"));
  $("sweep-cancel").addEventListener("click", async () => {
    const yes = await confirmAction({ title: "Cancel this sweep?", danger: true, confirmLabel: "Cancel sweep", dismissLabel: "Keep it",
      body: "It queues no more runs, and its queued and training runs are cancelled." });
    if (yes) control("cancel");
  });
  $("max-runs-form").addEventListener("submit", setMaxRuns);
  $("scatter-key").addEventListener("change", drawScatterNow);
  $("clear-brushes").addEventListener("click", () => parallel.clearBrushes());
  $("trials-more").addEventListener("click", () => { showAllRows = true; filterTable(); });
  window.addEventListener("resize", debounce(() => { if (sweep) { parallel.render(); drawScatterNow(); } }, 200));
  try {
    await load(true);
  } catch (error) {
    say(message, `Cannot read sweep ${sweepId}: ${messageOf(error)}`, "error");
  }
  await painted();
  performance.mark("sweep-ready");
  if (sweep) renderTable();
  performance.mark("sweep-table");
  pageEl.dataset.ready = "true";
  if (missed || (openedEarly && sweep && isLive(sweep))) reloadSoon();
}

// --- live ------------------------------------------------------------------------------------

let reloading = false;
let again = false;
let lastLoad = 0;
/** An event came before the page was ready: read the sweep once it is. */
let missed = false;
/** The stream opened before the page was ready. */
let openedEarly = false;

/** Read the sweep again, at most once per RELOAD_MS, and once more if asked meanwhile. */
function reloadSoon() {
  if (!pageEl.dataset.ready) { missed = true; return; }
  if (reloading) { again = true; return; }
  reloading = true;
  setTimeout(async () => {
    try { await load(); } catch (error) { say(message, messageOf(error), "error"); }
    lastLoad = performance.now();
    reloading = false;
    if (again) { again = false; reloadSoon(); }
  }, Math.max(0, lastLoad + RELOAD_MS - performance.now()));
}

/** @param {any} event */
function onEvent(event) {
  const runIds = new Set(sweep ? sweep.runs.map((/** @type {any} */ run) => run.id) : []);
  if (concernsSweep(event, sweepId, runIds)) reloadSoon();
}

// Subscribed before the page reads anything, so no change after the page was rendered is missed
// (one that came before the stream opened is read by one GET once it has).
streamOpened(subscribe("/api/v1/events?kind=sweep&kind=status&kind=metrics", onEvent), 3000).then((how) => {
  if (how !== "open") return;
  if (!pageEl.dataset.ready) openedEarly = true;
  else if (sweep && isLive(sweep)) reloadSoon();
});

start();
