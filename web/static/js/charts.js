// Line charts on uPlot for the run and compare pages: several series with their own steps, a log
// scale toggle, EMA smoothing that keeps the raw line faint, optional mean ± std bands, a hover
// legend with values, a "downsampled" note, a size that follows the page, and drag-to-zoom on
// the x axis that charts sharing a `syncKey` follow together (double-click or "Reset zoom" undoes).
// A zoomed chart may be handed the range's own points (read at full resolution there): it draws
// them while zoomed and its overview again once zoomed out.
// An x axis of seconds (`xTime`) reads as elapsed time: 45s, 12m30s, 1h05m, 2d03h.

import { el } from "./dom.js";
import { STEP_INCREMENTS, TIME_INCREMENTS, tickLabels } from "./pure/chart_axes.js";
import { withAlpha } from "./pure/colors.js";
import { formatElapsed, formatValue } from "./pure/format.js";
import { align, lowerBound, smooth } from "./pure/series_math.js";
import uPlot from "../vendor/uplot/uPlot.esm.js";

/** Every chart of the page by id. @type {Map<string, Chart>} */
export const registry = new Map();
const HEIGHT = 230;
const Y_AXIS_PX = 60;
const MIN_POINTS = 5;
// uPlot's cursor sync replays these on every chart of the group, each zooming to the range under
// its own pixels; zoomTo shares the one exact range instead, and keeps it across new data.
const UNSYNCED_EVENTS = new Set(["mousedown", "mouseup", "dblclick"]);

/**
 * Hover legend: the value under the cursor, or the series' latest value when it is off the chart.
 * @param {uPlot} u
 * @param {number | null} value
 * @param {number} seriesIndex
 * @param {number | null} dataIndex
 */
function legendValue(u, value, seriesIndex, dataIndex) {
  if (dataIndex === null || dataIndex === undefined) {
    const column = u.data[seriesIndex] || [];
    const last = lastIndex(column);
    return last === null ? "–" : `${formatValue(column[last])} (last)`;
  }
  return formatValue(value);
}

/**
 * A mean's legend value with its ± half band width (the band's upper and lower series).
 * @param {Map<string, number>} index uPlot series index by key
 * @param {[string, string]} band the keys of its upper and lower series
 */
function spreadValue(index, [upperKey, lowerKey]) {
  return (u, value, seriesIndex, dataIndex) => {
    const text = legendValue(u, value, seriesIndex, dataIndex);
    const at = dataIndex ?? lastIndex(u.data[seriesIndex] || []);
    const upper = (u.data[index.get(upperKey)] || [])[at];
    const lower = (u.data[index.get(lowerKey)] || [])[at];
    if (at === null || upper === null || upper === undefined || lower === null || lower === undefined) return text;
    return `${text} ± ${formatValue((upper - lower) / 2)}`;
  };
}

/**
 * Index of the last non-null value; null when there is none.
 * @param {ArrayLike<number | null | undefined>} column
 */
function lastIndex(column) {
  for (let i = column.length - 1; i >= 0; i--) if (column[i] !== null && column[i] !== undefined) return i;
  return null;
}

/**
 * The charts that zoom together: those with the same syncKey, or the chart alone.
 * @param {Chart} chart
 */
function zoomGroup(chart) {
  const key = chart.options.syncKey;
  if (!key) return [chart];
  return [...registry.values()].filter((other) => other.options.syncKey === key);
}

let uid = 0;

/** A band between two series: [upperKey, lowerKey, color]. @typedef {[string, string, string]} Band */

/**
 * @typedef {object} ChartOptions
 * @property {string} [id] registry key (default: a fresh one)
 * @property {string} title
 * @property {string} [xLabel] "epoch" by default
 * @property {boolean} [xTime] x is seconds, shown as elapsed time
 * @property {number} [height]
 * @property {string} [emptyText]
 * @property {string | null} [syncKey] charts with the same key share the hover cursor and the
 *   zoomed x range: give them the same x axis
 * @property {(width: number) => void} [onWidthChange] after the plot's width changed (debounced)
 * @property {(range: Range | null) => void} [onZoom] after the shown x range changed (null: all
 *   of it), by this chart or one zoomed with it; the page may fetch that range's points
 * @property {Band[]} [bands]
 */

/**
 * One series as drawn: `faint` draws a thin line left out of the legend (band edges),
 * `spread: [upperKey, lowerKey]` adds ± half that band's width to the series' legend value.
 * @typedef {{key: string, label: string, color: string, faint?: boolean, dash?: number[], spread?: [string, string]}} SeriesDefinition
 */

/** @typedef {{steps: number[], values: number[], downsampled: boolean, count: number}} SeriesPoints */

/** @typedef {{min: number, max: number}} Range */

/** A vertical marker at x (the best epoch), labelled. @typedef {{x: number, label: string}} Marker */

const MARKER_COLOR = "#b45309";

/**
 * Draw `marker` as a dashed vertical line with its label, when x is on the chart.
 * @param {uPlot} u
 * @param {Marker | null} marker
 */
function drawMarker(u, marker) {
  if (!marker || !u.data[0].length) return;
  const { min, max } = u.scales.x;
  if (min === undefined || max === undefined || marker.x < min || marker.x > max) return;
  const x = Math.round(u.valToPos(marker.x, "x", true));
  const { top, height } = u.bbox;
  const { ctx } = u;
  const ratio = devicePixelRatio || 1;
  ctx.save();
  ctx.strokeStyle = MARKER_COLOR;
  ctx.lineWidth = ratio;
  ctx.setLineDash([4 * ratio, 3 * ratio]);
  ctx.beginPath();
  ctx.moveTo(x, top);
  ctx.lineTo(x, top + height);
  ctx.stroke();
  ctx.fillStyle = MARKER_COLOR;
  ctx.font = `${11 * ratio}px sans-serif`;
  // uPlot leaves the context centred from drawing its axes.
  ctx.textAlign = "left";
  ctx.textBaseline = "alphabetic";
  const width = ctx.measureText(marker.label).width;
  // The label sits right of the line unless that runs off the plot.
  const textX = x + 4 * ratio + width > u.bbox.left + u.bbox.width ? x - 4 * ratio - width : x + 4 * ratio;
  ctx.fillText(marker.label, textX, top + 12 * ratio);
  ctx.restore();
}

/**
 * @param {ArrayLike<number>} steps
 * @param {ArrayLike<number>} values
 * @param {{downsampled?: boolean, count?: number}} meta
 * @returns {SeriesPoints}
 */
function pointsOf(steps, values, meta) {
  return {
    steps: Array.from(steps), values: Array.from(values),
    downsampled: Boolean(meta.downsampled), count: meta.count ?? steps.length,
  };
}

/**
 * Add (or replace, for a replayed step) one point of a series in `points`.
 * @param {Map<string, SeriesPoints>} points
 * @param {string} key
 * @param {number} step
 * @param {number} value
 */
function insertPoint(points, key, step, value) {
  let entry = points.get(key);
  if (!entry) {
    entry = { steps: [], values: [], downsampled: false, count: 0 };
    points.set(key, entry);
  }
  const { steps, values } = entry;
  if (!steps.length || step > steps[steps.length - 1]) {
    steps.push(step);
    values.push(value);
    entry.count += 1;
  } else {
    const index = lowerBound(steps, step);
    if (steps[index] === step) values[index] = value;
    else { steps.splice(index, 0, step); values.splice(index, 0, value); entry.count += 1; }
  }
}

export class Chart {
  /**
   * @param {HTMLElement} container where the chart's figure goes
   * @param {ChartOptions} options
   */
  constructor(container, options) {
    /** @type {ChartOptions & {height: number, xLabel: string, emptyText: string}} */
    this.options = { height: HEIGHT, xLabel: "epoch", emptyText: "No points yet", ...options };
    this.id = this.options.id || `chart-${++uid}`;
    /** @type {SeriesDefinition[]} */
    this.series = [];
    /** @type {Map<string, SeriesPoints>} the overview: every step, as read and appended */
    this.points = new Map();
    /** @type {Map<string, SeriesPoints> | null} the zoomed range's own points, when handed some */
    this.zoomPoints = null;
    this.log = false;
    this.smoothing = 0;
    /** @type {uPlot | null} */
    this.plot = null;
    this.rebuild = true;
    this.frame = 0;
    this.resizeTimer = 0;
    this.lastWidth = 0;
    this.renderedWidth = 0;
    /** @type {Range | null} */
    this.zoom = null;
    /** @type {Marker | null} */
    this.marker = null;
    this.build(container);
    registry.set(this.id, this);
    const zoomed = zoomGroup(this).find((other) => other.zoom);
    if (zoomed) this.showRange(zoomed.zoom, { quiet: true });
  }

  /** @param {HTMLElement} container */
  build(container) {
    const domId = `chart-${this.id.replace(/[^A-Za-z0-9_-]/g, "-")}`;
    this.logInput = el("input", { type: "checkbox", id: `${domId}-log` });
    this.smoothInput = el("input", {
      type: "range", id: `${domId}-smooth`, min: "0", max: "0.99", step: "0.01", value: "0",
    });
    this.smoothOutput = el("output", { for: `${domId}-smooth`, class: "smooth-value" }, "0.00");
    this.note = el("span", { class: "chart-note", hidden: true });
    this.resetButton = el("button", { type: "button", class: "chart-reset", hidden: true }, "Reset zoom");
    this.empty = el("div", { class: "chart-empty" }, this.options.emptyText);
    this.area = el("div", { class: "chart-area" }, this.empty);
    this.figure = el("figure", { class: "chart", id: domId, "data-chart": this.id },
      el("figcaption", { class: "chart-head" },
        el("h3", {}, this.options.title),
        this.note,
        el("span", { class: "chart-controls" },
          this.resetButton,
          el("label", { for: `${domId}-log` }, this.logInput, " log"),
          el("label", { for: `${domId}-smooth` }, "smooth"),
          this.smoothInput,
          this.smoothOutput)),
      this.area);
    container.append(this.figure);
    this.resetButton.addEventListener("click", () => this.resetZoom());
    this.logInput.addEventListener("change", () => {
      this.log = this.logInput.checked;
      this.rebuild = true;
      this.schedule();
    });
    this.smoothInput.addEventListener("input", () => {
      const value = Number(this.smoothInput.value);
      this.smoothOutput.textContent = value.toFixed(2);
      if ((value > 0) !== (this.smoothing > 0)) this.rebuild = true;
      this.smoothing = value;
      this.schedule();
    });
    this.observer = new ResizeObserver(() => this.resized());
    this.observer.observe(this.area);
  }

  /** Plot width in pixels: the most points worth asking the server for. */
  pixelWidth() {
    return Math.max(MIN_POINTS, Math.floor((this.area.clientWidth || 600) - Y_AXIS_PX));
  }

  /**
   * Replace the series, in drawing order: [{key, label, color, faint?, spread?}]; `faint` draws
   * a thin line left out of the legend (band edges), `spread: [upperKey, lowerKey]` adds ± half
   * that band's width to the series' legend value.
   * @param {SeriesDefinition[]} definitions
   */
  setSeries(definitions) {
    this.series = definitions.map((definition) => ({ ...definition }));
    const keys = new Set(definitions.map((definition) => definition.key));
    for (const key of [...this.points.keys()]) if (!keys.has(key)) this.points.delete(key);
    this.rebuild = true;
    this.schedule();
  }

  /** @param {string} key */
  hasSeries(key) {
    return this.series.some((series) => series.key === key);
  }

  /** @param {SeriesDefinition} definition */
  addSeries(definition) {
    if (this.hasSeries(definition.key)) return;
    this.series.push({ ...definition });
    this.rebuild = true;
    this.schedule();
  }

  /**
   * @param {string} key
   * @param {string} color
   */
  setColor(key, color) {
    const series = this.series.find((item) => item.key === key);
    if (!series || series.color === color) return;
    series.color = color;
    this.rebuild = true;
    this.schedule();
  }

  /**
   * Mark x (the best epoch) with a labelled vertical line; null removes it.
   * @param {Marker | null} marker
   */
  setMarker(marker) {
    const same = marker && this.marker && marker.x === this.marker.x && marker.label === this.marker.label;
    if (same || (!marker && !this.marker)) return;
    this.marker = marker;
    this.figure.dataset.marker = marker ? String(marker.x) : "";
    if (this.plot) this.plot.redraw(false);
  }

  /** @param {Band[]} bands */
  setBands(bands) {
    this.options.bands = bands;
    this.rebuild = true;
    this.schedule();
  }

  /**
   * Replace one series' points; `meta` is {downsampled, count} from the metrics API.
   * @param {string} key
   * @param {ArrayLike<number>} steps
   * @param {ArrayLike<number>} values
   * @param {{downsampled?: boolean, count?: number}} [meta]
   */
  setPoints(key, steps, values, meta = {}) {
    this.points.set(key, pointsOf(steps, values, meta));
    this.schedule();
  }

  /**
   * Add (or replace, for a replayed step) one point of a series.
   * @param {string} key
   * @param {number} step
   * @param {number} value
   */
  append(key, step, value) {
    insertPoint(this.points, key, step, value);
    // The zoomed view keeps its range: a point inside it joins it, one past it waits in the
    // overview.
    if (this.zoomPoints && this.zoom && step >= this.zoom.min && step <= this.zoom.max) {
      insertPoint(this.zoomPoints, key, step, value);
    }
    this.schedule();
  }

  /**
   * Draw these points (by series key, as the metrics API gives them) while the chart shows
   * `range`; ignored when it has moved on to another range (a late answer).
   * @param {Range} range the zoomed range they were read for
   * @param {Record<string, {step: ArrayLike<number>, value: ArrayLike<number>, downsampled?: boolean, count?: number}>} series
   */
  setZoomPoints(range, series) {
    if (!this.zoom || this.zoom.min !== range.min || this.zoom.max !== range.max) return;
    this.zoomPoints = new Map(Object.entries(series).map(([key, points]) => [key, pointsOf(points.step, points.value, points)]));
    this.schedule();
  }

  /** The points drawn: the zoomed range's own when it has them, else the overview. */
  shown() {
    return this.zoom && this.zoomPoints ? this.zoomPoints : this.points;
  }

  /** @param {string} key */
  lastStep(key) {
    const entry = this.points.get(key);
    return entry && entry.steps.length ? entry.steps[entry.steps.length - 1] : null;
  }

  /** Points per series the overview holds (the longest series). */
  pointCount() {
    let most = 0;
    for (const entry of this.points.values()) most = Math.max(most, entry.steps.length);
    return most;
  }

  /** Whether the overview holds fewer points than the server has. */
  isDownsampled() {
    for (const entry of this.points.values()) if (entry.downsampled) return true;
    return false;
  }

  /**
   * Show x from range.min to range.max (null: all of it) here and on the charts zoomed with it.
   * @param {Range | null} range
   */
  zoomTo(range) {
    for (const chart of zoomGroup(this)) chart.showRange(range);
  }

  resetZoom() {
    this.zoomTo(null);
  }

  /**
   * @param {Range | null} range
   * @param {{quiet?: boolean}} [options] quiet: leave out onZoom (a chart joining its group)
   */
  showRange(range, { quiet = false } = {}) {
    const before = this.zoom;
    this.zoom = range ? { min: range.min, max: range.max } : null;
    const changed = (before?.min ?? null) !== (this.zoom?.min ?? null) || (before?.max ?? null) !== (this.zoom?.max ?? null);
    if (changed) this.zoomPoints = null;
    if (changed && !quiet && this.options.onZoom) this.options.onZoom(this.zoom);
    this.resetButton.hidden = !this.zoom;
    this.figure.toggleAttribute("data-zoomed", Boolean(this.zoom));
    if (!this.plot) return;
    if (!this.zoom) {
      this.render(); // the overview again, its scales fitted to it
      return;
    }
    this.plot.setScale("x", this.zoom);
    // The overview over the new range, until (or instead of) the range's own points.
    if (changed) this.schedule();
  }

  // uPlot calls setSelect when a drag-select ends, just before it zooms this chart to the
  // selection (posToVal of its edges): the same range goes to the charts zoomed with this one.
  /** @param {uPlot} u */
  selected(u) {
    const { left, width } = u.select;
    if (width <= 0) return;
    this.zoomTo({ min: u.posToVal(left, "x"), max: u.posToVal(left + width, "x") });
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  resized() {
    const width = this.area.clientWidth;
    if (!width || width === this.lastWidth) return;
    this.lastWidth = width;
    if (this.plot) this.plot.setSize({ width, height: this.options.height });
    clearTimeout(this.resizeTimer);
    this.resizeTimer = setTimeout(() => {
      const previous = this.renderedWidth;
      this.renderedWidth = width;
      if (previous && this.options.onWidthChange) this.options.onWidthChange(this.pixelWidth());
    }, 300);
  }

  /**
   * One shared x array (the union of every series' steps) with null where a series has no
   * point, as uPlot wants; smoothing adds a smoothed copy after each raw series.
   * @returns {uPlot.AlignedData}
   */
  aligned() {
    const shown = this.shown();
    const { xs, columns } = align(this.series.map((series) => shown.get(series.key)), { positiveOnly: this.log });
    /** @type {Array<Array<number | null>>} */
    const data = [xs];
    this.series.forEach((series, i) => {
      const column = columns[i];
      if (this.smoothing > 0 && !series.faint) data.push(column, smooth(column, this.smoothing));
      else data.push(this.smoothing > 0 ? smooth(column, this.smoothing) : column);
    });
    // uPlot takes null for a missing point, though its types only say numbers.
    return /** @type {uPlot.AlignedData} */ (/** @type {unknown} */ (data));
  }

  /** @returns {uPlot.Options} */
  uplotOptions() {
    const smoothing = this.smoothing > 0;
    const { xTime } = this.options;
    /** @type {(u: uPlot, v: number | null) => string} */
    const xValue = (u, v) => (v === null || v === undefined ? "–" : xTime ? formatElapsed(v) : String(v));
    /** @type {uPlot.Series[]} */
    const uSeries = [{ label: this.options.xLabel, value: xValue }];
    /** @type {Map<string, number>} */
    const index = new Map();
    for (const series of this.series) {
      const common = { spanGaps: true, points: { show: false } };
      if (smoothing && !series.faint) {
        uSeries.push({
          ...common, label: `${series.label} (raw)`, stroke: withAlpha(series.color, 0.25),
          width: 1, value: legendValue, class: "raw",
        });
      }
      index.set(series.key, uSeries.length);
      uSeries.push({
        ...common,
        label: series.label,
        stroke: series.faint ? withAlpha(series.color, 0.45) : series.color,
        width: series.faint ? 1 : 2,
        dash: series.dash,
        class: series.faint ? "band-edge" : undefined,
        value: series.spread ? spreadValue(index, series.spread) : legendValue,
        points: { show: (u) => u.data[0].length < 3 && !series.faint },
      });
    }
    const bands = (this.options.bands || [])
      .filter(([upper, lower]) => index.has(upper) && index.has(lower))
      .map(([upper, lower, color]) => /** @type {uPlot.Band} */ ({ series: [index.get(upper), index.get(lower)], fill: withAlpha(color, 0.15) }));
    return {
      width: this.area.clientWidth || 600,
      height: this.options.height,
      scales: {
        x: { time: false },
        y: this.log ? { distr: 3, log: 10 } : { auto: true },
      },
      series: uSeries,
      bands,
      axes: [
        {
          label: this.options.xLabel, labelSize: 18, size: 36, stroke: "#5f6b7a", grid: { stroke: "#eef0f3" },
          incrs: [...(xTime ? TIME_INCREMENTS : STEP_INCREMENTS)],
          // Only when set: an undefined `values` would replace uPlot's default formatter.
          ...(xTime ? { values: (u, ticks) => ticks.map(formatElapsed) } : {}),
        },
        { size: Y_AXIS_PX, stroke: "#5f6b7a", grid: { stroke: "#eef0f3" }, values: (u, ticks) => tickLabels(ticks) },
      ],
      legend: { live: true },
      cursor: {
        sync: { key: this.options.syncKey || null, filters: { pub: (type) => !UNSYNCED_EVENTS.has(type) } },
        // Double-click resets every chart zoomed with this one, not only this one.
        bind: { dblclick: () => () => { this.resetZoom(); return null; } },
      },
      hooks: { setSelect: [(u) => this.selected(u)], draw: [(u) => drawMarker(u, this.marker)] },
    };
  }

  render() {
    const data = this.aligned();
    const empty = data[0].length === 0;
    this.empty.hidden = !empty;
    if (this.rebuild || !this.plot) {
      if (this.plot) this.plot.destroy();
      this.plot = new uPlot(this.uplotOptions(), data, this.area);
      this.rebuild = false;
      if (!this.renderedWidth) this.renderedWidth = this.area.clientWidth;
    } else {
      this.plot.setData(data);
    }
    // New data (or a rebuilt plot) fits x to the points again: keep the range the user chose.
    if (this.zoom) this.plot.setScale("x", this.zoom);
    this.figure.dataset.points = String(data[0].length);
    const thinned = [...this.shown().values()].filter((entry) => entry.downsampled);
    this.note.hidden = thinned.length === 0;
    if (thinned.length) {
      const total = Math.max(...thinned.map((entry) => entry.count));
      this.note.textContent = `downsampled: ${data[0].length} of ${total} points`;
      this.note.title = "The server keeps the min, max and last point per pixel column";
    }
  }

  destroy() {
    this.observer.disconnect();
    if (this.plot) this.plot.destroy();
    if (this.frame) cancelAnimationFrame(this.frame);
    this.figure.remove();
    registry.delete(this.id);
  }
}

/**
 * A chart in `container` (see Chart's options); registered by its id until destroyed.
 * @param {HTMLElement} container
 * @param {ChartOptions} options
 */
export function create(container, options) {
  return new Chart(container, options);
}

/**
 * The page's chart with this id (the browser tests read charts through it).
 * @param {string} id
 */
export function get(id) {
  return registry.get(id);
}

