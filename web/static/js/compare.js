// The compare page (/compare?ids=1,2,3, up to 50 runs): the config keys that differ first (and a
// warning when the runs used different datasets or class sets), overlaid curves with one colour
// per run (or one mean ± std band per group), each asked of the server downsampled to the chart's
// width in pixels, metrics at a chosen epoch and at each run's best (key:value tags as columns),
// and the same validation images' predictions side by side. System series (`sys/...`) compare
// like any metric, against the time since each run started.

import * as charts from "./charts.js";
import { DEFAULT_KEYS, MAX_RUNS, MIN_RUNS, askedPoints, early, fetchSeries } from "./compare_early.js";
import { byId, el } from "./dom.js";
import { api, messageOf } from "./http.js";
import { runColors } from "./pure/colors.js";
import { compareQuery, dataWarnings, groupRuns, widthChanged } from "./pure/compare_state.js";
import { differingKeys, show } from "./pure/config_text.js";
import { formatNumber, formatValue } from "./pure/format.js";
import { tagKeys, tagValue } from "./pure/run_columns.js";
import { meanStd } from "./pure/series_math.js";

const $ = byId;
const TABLE_KEYS = ["val/iou", "val/dice", "val/miou", "val/pixel_acc", "val/loss", "train/loss"];
const STEP_ONLY_KEYS = ["train/loss_step"];
const SYSTEM_PREFIX = "sys/";
/** @param {string} key */
const isSystem = (key) => key.startsWith(SYSTEM_PREFIX);

const params = new URLSearchParams(window.location.search);
const state = {
  /** @type {any[]} the runs compared, in the order the address lists them */
  runs: [],
  /** @type {string[]} their colours, in the same order */
  colors: [],
  /** @type {string[]} keys of key:value tags shown as columns of the epoch tables */
  tagColumns: (params.get("tags") || "").split(",").filter(Boolean),
  /** @type {Array<Record<string, unknown>>} their configs (or parameters), in the same order */
  configs: [],
  /** @type {string[]} config keys whose values differ */
  differing: [],
  /** @type {string[]} metrics charted */
  keys: [],
  groupKey: params.get("group") || "", groupMode: params.get("mode") || "value",
  /** @type {number | null} */
  epoch: null,
  previewMode: params.get("view") || "prediction",
};
/** @type {Map<string, charts.Chart>} by metric key */
const chartsByKey = new Map();
/** @type {Map<string, any[]>} the series answer's items by metric key, as drawn */
const seriesByKey = new Map();
/** @type {Map<string, any[]>} the items of every step (the chart unzoomed), by metric key */
const overviewByKey = new Map();
/** @type {Map<string, number>} the latest read of each key's series: older answers are dropped */
const readsByKey = new Map();
/** @type {Map<string, Promise<any>>} series asked for while the runs were still being read */
const earlySeries = early.series;
let epochTimer = 0;
/** @type {import("./compare_samples.js").Samples | null} set once the charts are drawn */
let samples = null;

function showMessage(text) {
  const message = $("page-message");
  message.textContent = text;
  message.hidden = !text;
}

/** @param {unknown} error */
function reportError(error) {
  showMessage(messageOf(error));
}

function colorOf(run) {
  return state.colors[state.runs.indexOf(run)];
}

function saveUrl() {
  const next = compareQuery({ ...state, ids: state.runs.map((run) => run.id) });
  window.history.replaceState(null, "", `/compare?${next}`);
}

// --- runs legend and config diff ------------------------------------------------------------

function renderLegend() {
  $("run-legend").replaceChildren(...state.runs.map((run) => el("li", { "data-run-id": run.id },
    el("span", { class: "run-swatch", style: `background: ${colorOf(run)}` }),
    el("a", { href: `/runs/${run.id}` }, run.name),
    el("span", { class: "muted" }, `#${run.id}`),
    el("span", { class: `status status-${run.status}` }, run.status),
    el("span", { class: "muted" }, run.best_val_iou !== null ? `best val/iou ${formatNumber(run.best_val_iou, 4)} (epoch ${run.best_epoch})` : ""))));
}

function renderDiff() {
  const showAll = $("show-all-keys", HTMLInputElement).checked;
  const allKeys = [...new Set(state.configs.flatMap((config) => Object.keys(config)))].sort();
  const keys = showAll ? allKeys : state.differing;
  const head = el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Key"),
    ...state.runs.map((run) => el("th", { scope: "col" },
      el("span", { class: "run-swatch", style: `background: ${colorOf(run)}` }), " ", run.name))));
  const rows = keys.map((key) => el("tr", { class: state.differing.includes(key) ? "differs" : "", "data-key": key },
    el("th", { scope: "row" }, key),
    ...state.configs.map((config) => el("td", {}, key in config ? show(config[key]) : "–"))));
  const empty = el("tr", {}, el("td", { colspan: String(state.runs.length + 1), class: "muted" },
    "The runs have the same config.", showAll ? "" : " Tick “Show all keys” to see it."));
  $("config-diff").replaceChildren(head, el("tbody", {}, ...(rows.length ? rows : [empty])));
}

// --- curves ---------------------------------------------------------------------------------

function groups() {
  return groupRuns(state.runs, state.configs, state.groupKey, state.groupMode, state.differing);
}

function draw(key) {
  const chart = chartsByKey.get(key);
  const items = seriesByKey.get(key);
  if (!chart || !items) return;
  const byRun = new Map(items.map((item) => [item.run_id, item.series[key]]));
  if (!state.groupKey) {
    chart.setBands([]);
    chart.setSeries(state.runs.map((run) => ({ key: `run-${run.id}`, label: run.name, color: colorOf(run) })));
    for (const run of state.runs) {
      const series = byRun.get(run.id);
      chart.setPoints(`run-${run.id}`, series ? series.step : [], series ? series.value : [], series || {});
    }
    return;
  }
  const definitions = [];
  const bands = [];
  const grouped = groups();
  const colors = runColors(grouped.length);
  const computed = grouped.map((group, index) => {
    const color = colors[index];
    const members = group.runs.map((run) => byRun.get(run.id)).filter(Boolean);
    const stats = meanStd(members.map((series) => ({ steps: series.step, values: series.value })));
    const id = `group-${index}`;
    definitions.push(
      { key: `${id}-mean`, label: `${group.label} (n=${group.runs.length})`, color, spread: [`${id}-hi`, `${id}-lo`] },
      { key: `${id}-hi`, label: "+1 std", color, faint: true },
      { key: `${id}-lo`, label: "−1 std", color, faint: true });
    bands.push([`${id}-hi`, `${id}-lo`, color]);
    return { id, stats, downsampled: members.some((series) => series.downsampled) };
  });
  chart.setSeries(definitions);
  chart.setBands(bands);
  for (const { id, stats, downsampled } of computed) {
    chart.setPoints(`${id}-mean`, stats.steps, stats.mean, { downsampled });
    chart.setPoints(`${id}-hi`, stats.steps, stats.mean.map((mean, i) => mean + stats.std[i]));
    chart.setPoints(`${id}-lo`, stats.steps, stats.mean.map((mean, i) => mean - stats.std[i]));
  }
}

/**
 * @param {string} key
 * @param {any[]} items
 */
const downsampled = (key, items) => items.some((item) => item.series[key]?.downsampled);

/**
 * Read `key`'s series at the chart's width and draw them: of every step, or, when the chart
 * is zoomed and the overview was downsampled, of the zoomed steps (at full resolution there).
 * @param {string} key
 */
async function loadKey(key) {
  const chart = chartsByKey.get(key);
  const read = (readsByKey.get(key) ?? 0) + 1;
  readsByKey.set(key, read);
  const ids = state.runs.map((run) => run.id);
  let overview = overviewByKey.get(key);
  if (!overview) {
    const sent = earlySeries.get(key);
    earlySeries.delete(key);
    // The first chart's series first: the others' are asked for once it has come.
    const body = (sent && await sent) || await early.first.then(() => fetchSeries(ids, key, chart.pixelWidth()));
    overview = body.items;
    overviewByKey.set(key, overview);
  }
  const items = chart.zoom && downsampled(key, overview)
    ? (await fetchSeries(ids, key, chart.pixelWidth(), chart.zoom)).items : overview;
  if (readsByKey.get(key) !== read || chartsByKey.get(key) !== chart) return;
  seriesByKey.set(key, items);
  draw(key);
}

/**
 * A chart for `key`; resolves once its series are loaded and handed to it.
 * @param {string} key
 * @returns {Promise<void>}
 */
function addChart(key) {
  if (chartsByKey.has(key)) return Promise.resolve();
  const slot = el("div", { class: "chart-slot", "data-key": key });
  $("compare-charts").append(slot);
  const system = isSystem(key);
  const xLabel = system ? "time since start"
    : state.runs.some((run) => run.epochs_done > 0) && !key.endsWith("_step") ? "epoch" : "step";
  // Charts on the same x axis share the cursor and the zoomed range; epoch 5 is not step 5,
  // nor 5 seconds.
  const chart = charts.create(slot, {
    id: `cmp:${key}`, title: key, xLabel, xTime: system,
    syncKey: `compare-${system ? "time" : xLabel}`, emptyText: "No run has this metric",
    // A few pixels more or less (the first guess of the width, a scrollbar) are not worth
    // reading every run's series again.
    onWidthChange: (width) => {
      if (!chart.isDownsampled() || !widthChanged(askedPoints.get(key) ?? 0, width)) return;
      overviewByKey.delete(key);
      loadKey(key).catch(reportError);
    },
    // Zoomed in: that range's points at the chart's width; zoomed out: the overview again.
    onZoom: () => { loadKey(key).catch(reportError); },
  });
  chartsByKey.set(key, chart);
  return loadKey(key).catch(reportError);
}

function removeChart(key) {
  const chart = chartsByKey.get(key);
  if (!chart) return;
  chart.destroy();
  chartsByKey.delete(key);
  seriesByKey.delete(key);
  overviewByKey.delete(key);
  const slot = document.querySelector(`#compare-charts .chart-slot[data-key="${CSS.escape(key)}"]`);
  if (slot) slot.remove();
}

function renderPicker(allKeys) {
  const picker = $("metric-picker");
  const rest = allKeys.filter((key) => !DEFAULT_KEYS.includes(key));
  const ordered = [...DEFAULT_KEYS.filter((key) => allKeys.includes(key)),
    ...rest.filter((key) => !isSystem(key)), ...rest.filter(isSystem)];
  ordered.forEach((key, index) => {
    const input = el("input", { type: "checkbox", id: `metric-${index}`, value: key, checked: state.keys.includes(key) });
    input.addEventListener("change", () => {
      if (input.checked) { state.keys.push(key); addChart(key); } else { state.keys = state.keys.filter((item) => item !== key); removeChart(key); }
      saveUrl();
      refreshTables().catch(reportError);
    });
    picker.append(el("label", { for: `metric-${index}` }, input, ` ${key}`));
  });
}

function renderGrouping() {
  const select = $("group-key", HTMLSelectElement);
  for (const key of state.differing) select.append(el("option", { value: key }, key));
  if (!state.differing.includes(state.groupKey)) state.groupKey = "";
  select.value = state.groupKey;
  $("group-mode", HTMLSelectElement).value = state.groupMode === "others" ? "others" : "value";
  const update = () => {
    state.groupKey = select.value;
    state.groupMode = $("group-mode", HTMLSelectElement).value;
    $("group-mode", HTMLSelectElement).disabled = !state.groupKey;
    const note = state.groupKey ? `${groups().length} groups: ${groups().map((group) => `${group.label} (${group.runs.length})`).join("; ")}` : "";
    $("group-note").textContent = note;
    for (const key of chartsByKey.keys()) draw(key);
    saveUrl();
  };
  select.addEventListener("change", update);
  $("group-mode", HTMLSelectElement).addEventListener("change", update);
  update();
}

// --- metrics at an epoch --------------------------------------------------------------------

function tableKeys() {
  const union = new Set(state.runs.flatMap((run) => Object.keys(run.metrics)));
  // Values at an epoch: system series have none (the server leaves them out).
  return [...new Set([...TABLE_KEYS, ...state.keys])]
    .filter((key) => union.has(key) && !STEP_ONLY_KEYS.includes(key) && !isSystem(key));
}

function renderWarnings() {
  const box = $("data-warnings");
  const warnings = dataWarnings(state.runs);
  box.replaceChildren(...warnings.map((text) => el("p", {}, text)));
  box.hidden = !warnings.length;
}

function renderTagPicker() {
  const keys = tagKeys(state.runs.map((run) => run.tags));
  state.tagColumns = state.tagColumns.filter((key) => keys.includes(key));
  const picker = $("tag-columns");
  picker.hidden = !keys.length;
  keys.forEach((key, index) => {
    const input = el("input", { type: "checkbox", id: `tag-column-${index}`, value: key, checked: state.tagColumns.includes(key) });
    input.addEventListener("change", () => {
      state.tagColumns = keys.filter((item) => item === key ? input.checked : state.tagColumns.includes(item));
      saveUrl();
      refreshTables().catch(reportError);
    });
    picker.append(el("label", { for: `tag-column-${index}` }, input, ` ${key}`));
  });
}

function renderValues(table, items, keys) {
  const better = (key) => (key.endsWith("loss") ? Math.min : Math.max);
  const bestOf = Object.fromEntries(keys.map((key) => {
    const values = items.map((item) => item.values[key]).filter((value) => value !== undefined);
    return [key, values.length > 1 ? better(key)(...values) : null];
  }));
  table.replaceChildren(
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Run"), el("th", { scope: "col", class: "num" }, "Epoch"),
      ...state.tagColumns.map((key) => el("th", { scope: "col", "data-tag": key }, `tag ${key}`)),
      ...keys.map((key) => el("th", { scope: "col", class: "num" }, key)))),
    el("tbody", {}, ...items.map((item) => {
      const run = state.runs.find((candidate) => candidate.id === item.run_id);
      return el("tr", { "data-run-id": item.run_id },
        el("th", { scope: "row" }, el("span", { class: "run-swatch", style: `background: ${colorOf(run)}` }), " ", run.name),
        el("td", { class: "num" }, item.epoch === null ? "–" : String(item.epoch)),
        ...state.tagColumns.map((key) => el("td", { "data-tag": key }, tagValue(run.tags, key) ?? "–")),
        ...keys.map((key) => {
          const value = item.values[key];
          const best = value !== undefined && value === bestOf[key];
          return el("td", { class: best ? "num best-value" : "num" }, value === undefined ? "–" : formatValue(value));
        }));
    })));
}

async function refreshTables() {
  const keys = tableKeys();
  const runIds = state.runs.map((run) => run.id).join(",");
  const query = (epoch) => api(`/api/v1/metrics/at?run_ids=${runIds}&epoch=${epoch}&keys=${encodeURIComponent(keys.join(","))}`);
  const [atEpoch, atBest] = await Promise.all([state.epoch === null ? null : query(state.epoch), query("best")]);
  if (atEpoch) renderValues($("at-epoch"), atEpoch.items, keys);
  renderValues($("at-best"), atBest.items, keys);
}

// --- epoch control --------------------------------------------------------------------------

function setEpoch(epoch, { immediate = false } = {}) {
  state.epoch = epoch;
  $("compare-epoch", HTMLInputElement).value = String(epoch);
  $("compare-epoch-slider", HTMLInputElement).value = String(epoch);
  saveUrl();
  clearTimeout(epochTimer);
  epochTimer = setTimeout(() => {
    refreshTables().catch(reportError);
    if (samples) samples.show(epoch).catch(reportError);
  }, immediate ? 0 : 250);
}

function bindEpoch() {
  const lastEpochs = state.runs.map((run) => run.epochs_done || 0);
  const top = Math.max(1, ...lastEpochs);
  const slider = $("compare-epoch-slider", HTMLInputElement);
  slider.max = String(top);
  $("compare-epoch", HTMLInputElement).max = String(top);
  const fromUrl = Number(params.get("epoch"));
  const shared = Math.min(...lastEpochs) || top;
  const read = (value) => Math.max(0, Math.min(top, Math.round(Number(value) || 0)));
  $("compare-epoch", HTMLInputElement).addEventListener("change", () => setEpoch(read($("compare-epoch", HTMLInputElement).value)));
  slider.addEventListener("input", () => setEpoch(read(slider.value)));
  setEpoch(params.has("epoch") && Number.isFinite(fromUrl) ? read(fromUrl) : shared, { immediate: true });
}

async function start() {
  if (early.asked > MAX_RUNS) showMessage(`Comparing the first ${MAX_RUNS} of the ${early.asked} runs asked for.`);
  if (!early.runs) {
    showMessage(`Choose 2 to ${MAX_RUNS} runs to compare: tick them on the runs page, or open /compare?ids=1,2,3.`);
    return;
  }
  const found = await early.runs;
  state.runs = found.items;
  /** @type {number[]} */
  const missing = found.missing;
  if (missing.length) earlySeries.clear();
  if (missing.length) showMessage(`Not found: run ${missing.join(", ")}.`);
  if (state.runs.length < MIN_RUNS) return;
  state.colors = runColors(state.runs.length);
  state.configs = state.runs.map((run) => run.config || run.params || {});
  state.differing = differingKeys(state.configs);
  const allKeys = [...new Set(state.runs.flatMap((run) => Object.keys(run.metrics)))].sort();
  const fromUrl = (params.get("keys") || "").split(",").filter((key) => allKeys.includes(key));
  state.keys = fromUrl.length ? fromUrl : DEFAULT_KEYS.filter((key) => allKeys.includes(key));

  renderWarnings();
  renderLegend();
  renderDiff();
  $("show-all-keys", HTMLInputElement).addEventListener("change", renderDiff);
  renderPicker(allKeys);
  renderTagPicker();
  const loads = state.keys.map(addChart);
  renderGrouping();
  // The epoch tables and the previews (below the charts) are read once the charts are drawn:
  // asked for sooner, their reads (the previews' are one per run) slow the series down.
  await markDrawn(loads);
  // The panels below the charts bring modules of their own (masks, palettes): fetched only
  // now, they stay out of the way of the charts' reads.
  const [{ startSamples }, { renderTestResults }] = await Promise.all([
    import("./compare_samples.js"), import("./compare_tests.js")]);
  samples = await startSamples({
    runs: state.runs, colorOf, mode: state.previewMode, reportError,
    onModeChange: (mode) => { state.previewMode = mode; saveUrl(); },
  });
  bindEpoch();
  await renderTestResults(state.runs, colorOf).catch(reportError);
  document.getElementById("compare-page").dataset.ready = "1";
}

// Performance marks "compare-first-chart-drawn" and "compare-charts-drawn" (with the page's
// `data-charts-drawn`) once the first chart, then every chart shown at the start, has its
// series and has drawn them: charts render in an animation frame, which runs before a frame
// asked for after them.
/** @param {Array<Promise<unknown>>} loads */
async function markDrawn(loads) {
  const drawn = () => new Promise((resolve) => requestAnimationFrame(resolve));
  if (loads.length) {
    await loads[0];
    await drawn();
    performance.mark("compare-first-chart-drawn");
  }
  await Promise.all(loads);
  await drawn();
  performance.mark("compare-charts-drawn");
  $("compare-page").dataset.chartsDrawn = "1";
}

start().catch(reportError);
