// The compare page's first reads, sent as soon as this module and the page's styles are in: a
// small module of its own (web/templates/compare.html loads it `async`, after the page's
// content), so the runs and the first chart's series are on their way while charts.js, uPlot and
// the rest of the page's modules arrive. compare.js imports it too and picks up what it asked
// for (one module instance per page).

import { byId, el } from "./dom.js";
import { api } from "./http.js";
import { zoomSteps } from "./pure/chart_axes.js";
import { parseIds } from "./pure/compare_state.js";

export const MIN_RUNS = 2;
/** As many as GET /api/v1/metrics/series and /api/v1/compare/runs take in one call. */
export const MAX_RUNS = 50;
export const DEFAULT_KEYS = ["val/iou", "val/loss", "train/loss", "lr"];
/** The fewest points the series endpoint downsamples to. */
const MIN_SERIES_POINTS = 5;
/** Pixels of a chart slot that are not plot: the y axis and the figure's padding. */
const CHART_CHROME_PX = 90;

/** @type {Map<string, number>} the points per run last asked for, by metric key */
export const askedPoints = new Map();

/**
 * Ask for one key's series of `ids`, at most `maxPoints` per run: of every step, or of the
 * steps of a zoomed x range.
 * @param {number[]} ids
 * @param {string} key
 * @param {number} maxPoints
 * @param {{min: number, max: number} | null} [zoom]
 */
export function fetchSeries(ids, key, maxPoints, zoom = null) {
  askedPoints.set(key, maxPoints);
  const query = new URLSearchParams({
    run_ids: ids.join(","), keys: key, max_points: String(maxPoints), ...(zoom ? zoomSteps(zoom) : {}),
  });
  return api(`/api/v1/metrics/series?${query}`);
}

// A chart's plot width before there is a chart: an empty slot of the chart grid, less the y
// axis and the figure's padding (rather under than over: at most a point per pixel).
function plotWidthGuess() {
  const probe = el("div", { class: "chart-slot" });
  byId("compare-charts").append(probe);
  const width = probe.clientWidth;
  probe.remove();
  return Math.max(MIN_SERIES_POINTS, Math.floor(width) - CHART_CHROME_PX);
}

/**
 * @typedef {object} EarlyReads
 * @property {number} asked how many runs the address names
 * @property {number[]} ids the runs compared: the first MAX_RUNS of them
 * @property {Promise<{items: any[], missing: number[]}> | null} runs null for fewer than MIN_RUNS
 * @property {Map<string, Promise<any>>} series the first chart's series by key (null: failed)
 * @property {Promise<unknown>} first settles once the first chart's series has come or failed
 */

// An async module does not wait for the page's style sheets, and the width guess needs them.
function stylesLoaded() {
  const pending = [...document.querySelectorAll('link[rel="stylesheet"]')]
    .filter((link) => !/** @type {HTMLLinkElement} */ (link).sheet);
  return Promise.all(pending.map((link) => new Promise((resolve) => {
    link.addEventListener("load", resolve, { once: true });
    link.addEventListener("error", resolve, { once: true });
  })));
}

/** @returns {EarlyReads} */
function readEarly() {
  const params = new URLSearchParams(window.location.search);
  const wanted = parseIds(params.get("ids"));
  const ids = wanted.slice(0, MAX_RUNS);
  /** @type {Map<string, Promise<any>>} */
  const series = new Map();
  if (ids.length < MIN_RUNS) return { asked: wanted.length, ids, runs: null, series, first: Promise.resolve(null) };
  const runs = api(`/api/v1/compare/runs?run_ids=${ids.join(",")}`);
  // The first chart's series alone: compare.js asks for the others' (those the runs have) once
  // it has come, so that it is drawn without waiting for them; what fails (a run that is gone)
  // is asked again once the runs are known.
  const [key] = (params.get("keys") || DEFAULT_KEYS.join(",")).split(",").filter(Boolean);
  const first = key
    ? stylesLoaded().then(() => fetchSeries(ids, key, plotWidthGuess())).catch(() => null)
    : Promise.resolve(null);
  if (key) series.set(key, first);
  // Handled where it is awaited; this keeps a failure from being reported twice meanwhile.
  runs.catch(() => null);
  return { asked: wanted.length, ids, runs, series, first };
}

export const early = readEarly();
