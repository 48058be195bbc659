// The compare page's predictions side by side: the same validation images of every run at the
// chosen epoch (or each run's nearest with previews), as image, truth, prediction, overlay or
// errors, in one class palette. compare.js imports it once the charts are drawn, so that its
// modules (masks, palettes) are not fetched on the way to them.

import { legend } from "./class_legend.js";
import { Palette, paletteForRun } from "./class_palette.js";
import { byId, el } from "./dom.js";
import { api } from "./http.js";
import { errorLegend, tile } from "./mask_tiles.js";

const $ = byId;

/**
 * @typedef {object} SamplesContext
 * @property {any[]} runs the runs compared, in their order
 * @property {(run: any) => string} colorOf a run's colour
 * @property {string} mode the view the address asks for ("prediction", "overlay", ...)
 * @property {(mode: string) => void} onModeChange after the user chose another view
 * @property {(error: unknown) => void} reportError
 */

/** @typedef {{show: (epoch: number | null) => Promise<void>}} Samples */

/** @type {Map<string, Promise<any>>} the runs' previews by the epoch asked for ("null": latest) */
const answers = new Map();
/** @type {Palette} */
let palette = null;
/** @type {import("./mask_tiles.js").TileView} */
let view = null;
/** @type {import("./mask_tiles.js").Tile[]} */
let tiles = [];
let previewToken = 0;
let mode = "prediction";

/**
 * Every run's previews at the epoch it shows for `wanted` (that epoch, else its latest before
 * it, else its first after it), in one read.
 * @param {any[]} runs
 * @param {number | null} wanted null: each run's latest
 * @returns {Promise<{items: any[]}>}
 */
function previewsNear(runs, wanted) {
  const key = String(wanted);
  if (!answers.has(key)) {
    const query = new URLSearchParams({ run_ids: runs.map((run) => run.id).join(",") });
    if (wanted !== null) query.set("epoch", String(wanted));
    answers.set(key, api(`/api/v1/compare/previews?${query}`));
  }
  return answers.get(key);
}

/**
 * Show each run's previews at `wanted` (or at its nearest epoch with previews).
 * @param {SamplesContext} context
 * @param {number | null} wanted
 */
async function refreshPreviews(context, wanted) {
  const { runs, colorOf } = context;
  const token = ++previewToken;
  const body = await previewsNear(runs, wanted);
  const byRun = new Map(body.items.map((item) => [item.run_id, item]));
  const perRun = runs.map((run) => {
    const item = byRun.get(run.id);
    /** @type {number | null} */
    const epoch = item ? item.epoch : null;
    const samples = new Map(item ? item.samples.map((sample) => [sample.name, sample]) : []);
    return { run, epoch, samples };
  });
  if (token !== previewToken) return;
  const names = [];
  for (const entry of perRun) for (const name of entry.samples.keys()) if (!names.includes(name)) names.push(name);
  const container = $("compare-samples");
  for (const id of ["preview-controls", "class-legend", "error-legend"]) $(id).hidden = !names.length;
  if (!names.length) {
    tiles = [];
    container.replaceChildren(el("p", { class: "muted" }, "None of these runs has mask previews."));
    return;
  }
  const columns = 2 + perRun.length;
  const style = `grid-template-columns: repeat(${columns}, minmax(0, 1fr)); max-width: ${columns * 230}px`;
  const header = el("div", { class: "sample-grid sample-head", style },
    el("strong", {}, "Image"), el("strong", {}, "Truth"),
    ...perRun.map(({ run, epoch }) => el("strong", { "data-run-id": run.id },
      el("span", { class: "run-swatch", style: `background: ${colorOf(run)}` }), " ", run.name,
      el("span", { class: "muted" }, epoch === null ? " (no previews)" : epoch === wanted ? "" : ` (epoch ${epoch})`))));
  const nextTiles = [];
  const rows = names.map((name) => {
    const first = perRun.find((entry) => entry.samples.has(name)).samples.get(name);
    const cells = [tile("image", first, view, name), tile("truth", first, view, "truth")];
    nextTiles.push(...cells);
    const runCells = perRun.map(({ run, samples }) => {
      const sample = samples.get(name);
      if (!sample) return el("div", { class: "missing-tile" }, `${run.name} has no preview of ${name}`);
      const runTile = tile(mode, sample, view, run.name);
      runTile.element.dataset.runId = String(run.id);
      nextTiles.push(runTile);
      return runTile.element;
    });
    return el("div", { class: "sample-grid", style, "data-sample": name }, ...cells.map((tile) => tile.element), ...runCells);
  });
  await Promise.all(nextTiles.map((tile) => tile.ready));
  if (token !== previewToken) return;
  tiles = nextTiles;
  container.dataset.epoch = String(wanted);
  container.replaceChildren(header, ...rows);
}

/**
 * @param {SamplesContext} context
 * @param {() => void} refresh
 */
function bindPreviews(context, refresh) {
  view = { palette, opacity: Number($("overlay-opacity", HTMLInputElement).value) };
  $("class-legend").replaceChildren(legend(palette));
  $("error-legend").replaceChildren(el("h3", {}, "Error view"), errorLegend());
  palette.onChange(() => { for (const tile of tiles) tile.repaint(); });
  $("overlay-opacity", HTMLInputElement).addEventListener("input", () => {
    view.opacity = Number($("overlay-opacity", HTMLInputElement).value);
    $("opacity-value").textContent = view.opacity.toFixed(2);
    for (const tile of tiles) if (tile.kind === "overlay") tile.repaint();
  });
  const modeSelect = $("preview-mode", HTMLSelectElement);
  modeSelect.value = context.mode;
  modeSelect.addEventListener("change", () => {
    mode = modeSelect.value;
    context.onModeChange(mode);
    refresh();
  });
}

/**
 * The panel's palette (of the first run with a dataset) and controls; `show(epoch)` fills it.
 * @param {SamplesContext} context
 * @returns {Promise<Samples>}
 */
export async function startSamples(context) {
  mode = context.mode;
  const withDataset = context.runs.find((run) => run.dataset_id !== null) || context.runs[0];
  try {
    palette = await paletteForRun(withDataset);
  } catch (error) {
    context.reportError(error);
    palette = new Palette({ names: [], colors: [], storageKey: "segtrack:class-colors:compare" });
  }
  let shown = null;
  bindPreviews(context, () => { refreshPreviews(context, shown).catch(context.reportError); });
  return {
    show: (epoch) => {
      shown = epoch;
      return refreshPreviews(context, epoch);
    },
  };
}
