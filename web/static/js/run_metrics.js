// The run page's metric charts and per-class table: panels per metric family, first loaded at
// the chart's pixel width, then extended with only the new points of each `metrics` event.
// System series (`sys/...`, keyed by seconds since the run started) go to their own "System"
// group after the others, on an elapsed-time axis that zooms apart from the epoch charts.
// A zoomed chart whose overview is downsampled reads the zoomed steps at its width; new points
// extend the overview meanwhile and leave the zoomed range where the user put it.

import * as charts from "./charts.js";
import { el } from "./dom.js";
import { api } from "./http.js";
import { zoomSteps } from "./pure/chart_axes.js";
import { formatNumber } from "./pure/format.js";
import {
  KEY_COLORS, OTHER_COLORS, PANELS, PER_CLASS_IOU, SYSTEM_PANELS, panelOf, standardIndex, systemSeriesOf,
} from "./pure/metric_panels.js";

const SYSTEM_X_LABEL = "time since start";
const RELOAD_FACTOR = 2;

/** @typedef {import("./pure/metric_panels.js").Panel} Panel */

export class RunMetrics {
  /**
   * @param {{runId: number, container: HTMLElement, systemContainer?: HTMLElement,
   *   classTable: HTMLTableElement, palette: import("./class_palette.js").Palette, xLabel: string,
   *   withDefaults: boolean, emptyText: string, onError: (error: unknown) => void}} options
   *   `container`: the chart grid; `systemContainer`: the System group's grid (by default
   *   #system-charts; its <section> is shown with its first chart); `xLabel`: "epoch" or
   *   "step"; `withDefaults`: the standard panels and their series before any point arrives
   */
  constructor(options) {
    this.options = options;
    this.runId = options.runId;
    /** @type {Map<string, {panel: Panel, chart: charts.Chart}>} by panel id */
    this.panels = new Map();
    this.order = 0;
    this.tableTimer = 0;
    this.run = null;
    /** @type {import("./charts.js").Marker | null} the best epoch, marked on epoch charts */
    this.best = null;
    options.palette.onChange(() => this.recolourClasses());
    if (options.withDefaults) for (const panel of PANELS.filter((item) => item.always)) this.chartFor(panel);
  }

  classColor(key) {
    const { palette } = this.options;
    const index = palette.names.indexOf(key.slice(PER_CLASS_IOU.length));
    return index >= 0 ? palette.colors[index] : OTHER_COLORS[this.panels.size % OTHER_COLORS.length];
  }

  colorOf(key, panel) {
    if (panel.id === "per-class") return this.classColor(key);
    const gpu = panel.system ? systemSeriesOf(panel, key).gpu : undefined;
    if (gpu !== undefined) return OTHER_COLORS[gpu % OTHER_COLORS.length];
    if (KEY_COLORS[key]) return KEY_COLORS[key];
    return OTHER_COLORS[[...this.panels.keys()].indexOf(panel.id) % OTHER_COLORS.length];
  }

  /** The System group's chart grid, shown once it has a chart (the metrics grid without one). */
  systemGrid() {
    const grid = this.options.systemContainer || document.getElementById("system-charts");
    if (!grid) return this.options.container;
    const group = grid.closest("section");
    if (group) group.hidden = false;
    return grid;
  }

  chartFor(panel) {
    let entry = this.panels.get(panel.id);
    if (entry) return entry.chart;
    const slot = el("div", { class: "chart-slot", style: `order: ${this.indexOf(panel)}` });
    (panel.system ? this.systemGrid() : this.options.container).append(slot);
    const chart = charts.create(slot, {
      id: panel.id,
      title: panel.title,
      xLabel: panel.system ? SYSTEM_X_LABEL : panel.x || this.options.xLabel,
      xTime: Boolean(panel.system),
      // Charts on one x axis zoom together: epochs, or the system group's seconds.
      syncKey: panel.system ? `run-${this.runId}-time` : panel.x ? null : `run-${this.runId}`,
      emptyText: this.options.emptyText,
      onWidthChange: () => {
        if (!chart.isDownsampled()) return;
        this.reload(panel.id).catch(this.options.onError);
        if (chart.zoom) this.readZoom(panel.id, chart.zoom).catch(this.options.onError);
      },
      // Zoomed out, the chart draws its overview again by itself.
      onZoom: (range) => { if (range) this.readZoom(panel.id, range).catch(this.options.onError); },
    });
    entry = { panel, chart };
    this.panels.set(panel.id, entry);
    if (this.marks(panel)) chart.setMarker(this.best);
    if (panel.id === "per-class") {
      for (const name of this.options.palette.names) {
        const key = `${PER_CLASS_IOU}${name}`;
        chart.addSeries({ key, label: name, color: this.classColor(key) });
      }
    } else if (panel.keys && this.options.withDefaults) {
      for (const key of panel.keys) chart.addSeries({ key, label: key, color: this.colorOf(key, panel) });
    }
    return chart;
  }

  /**
   * Whether `panel`'s x axis is the run's epochs (system series and panels of their own x are
   * not).
   * @param {Panel} panel
   */
  marks(panel) {
    return !panel.system && !panel.x && this.options.xLabel === "epoch";
  }

  /**
   * Mark the best epoch (by the run's monitor) on every epoch chart; null clears the marks.
   * @param {number | null} epoch
   * @param {string} [monitor]
   */
  setBestEpoch(epoch, monitor = "val/iou") {
    this.best = epoch === null || epoch === undefined ? null : { x: epoch, label: `best ${monitor} (epoch ${epoch})` };
    for (const { panel, chart } of this.panels.values()) if (this.marks(panel)) chart.setMarker(this.best);
  }

  /** @param {Panel} panel */
  indexOf(panel) {
    const fixed = standardIndex(panel);
    return fixed >= 0 ? fixed : (panel.system ? SYSTEM_PANELS : PANELS).length + this.order++;
  }

  /** The chart that shows `key` (created, with its series, when new); null for table-only keys. */
  chartOfKey(key) {
    const panel = panelOf(key);
    if (!panel) return null;
    const chart = this.chartFor(panel);
    if (!chart.hasSeries(key)) {
      const { label, dash } = panel.system ? systemSeriesOf(panel, key)
        : { label: panel.id === "per-class" ? key.slice(PER_CLASS_IOU.length) : key };
      chart.addSeries({ key, label, color: this.colorOf(key, panel), dash });
    }
    return chart;
  }

  keysOf(panelId) {
    return this.panels.get(panelId).chart.series.map((series) => series.key);
  }

  /**
   * The run's series of `keys`, at most a point per pixel of `chart`.
   * @param {charts.Chart} chart
   * @param {string[]} keys
   * @param {Record<string, string>} [more] further query parameters
   */
  read(chart, keys, more = {}) {
    const params = new URLSearchParams({ keys: keys.join(","), max_points: String(chart.pixelWidth()), ...more });
    return api(`/api/v1/runs/${this.runId}/metrics?${params}`);
  }

  async fetchInto(chart, keys, afterStep = null) {
    const body = await this.read(chart, keys, afterStep === null ? {} : { after_step: String(afterStep) });
    for (const [key, series] of Object.entries(body.series)) {
      if (afterStep === null) {
        chart.setPoints(key, series.step, series.value, series);
      } else {
        for (let i = 0; i < series.step.length; i++) chart.append(key, series.step[i], series.value[i]);
      }
    }
    return body;
  }

  /** Load every known key, one request per chart at that chart's width. */
  async load(keys) {
    for (const key of keys) this.chartOfKey(key);
    await Promise.all([...this.panels.keys()].map((id) => this.reload(id)));
    this.scheduleTable(0);
  }

  async reload(panelId) {
    const { chart } = this.panels.get(panelId);
    const keys = this.keysOf(panelId);
    if (keys.length) await this.fetchInto(chart, keys);
  }

  /**
   * Hand a zoomed chart the points of the steps it shows, when its overview has fewer.
   * @param {string} panelId
   * @param {import("./charts.js").Range} range
   */
  async readZoom(panelId, range) {
    const { chart } = this.panels.get(panelId);
    const keys = this.keysOf(panelId);
    if (!keys.length || !chart.isDownsampled()) return;
    const body = await this.read(chart, keys, zoomSteps(range));
    chart.setZoomPoints(range, body.series);
  }

  /** Fetch what came after the newest point each chart holds (after a summary event). */
  async catchUp(keys) {
    const byPanel = new Map();
    for (const key of keys) {
      const chart = this.chartOfKey(key);
      if (!chart) continue;
      const after = chart.lastStep(key);
      const current = byPanel.get(chart.id) || { chart, keys: [], after };
      current.keys.push(key);
      current.after = after === null || current.after === null ? null : Math.min(current.after, after);
      byPanel.set(chart.id, current);
    }
    await Promise.all([...byPanel.values()].map(async ({ chart, keys: chartKeys, after }) => {
      await this.fetchInto(chart, chartKeys, after);
      if (chart.pointCount() > RELOAD_FACTOR * chart.pixelWidth()) await this.reload(chart.id);
    }));
  }

  /** A `metrics` event: its points when it carries them, else a fetch of what is new. */
  async handleEvent(event) {
    if (event.points) {
      for (const point of event.points) {
        const chart = this.chartOfKey(point.key);
        if (chart) chart.append(point.key, point.step, point.value);
      }
      for (const { chart } of this.panels.values()) {
        if (chart.pointCount() > RELOAD_FACTOR * chart.pixelWidth()) this.reload(chart.id).catch(this.options.onError);
      }
    } else if (event.keys) {
      await this.catchUp(event.keys);
    }
    this.scheduleTable();
  }

  recolourClasses() {
    const entry = this.panels.get("per-class");
    if (entry) for (const series of entry.chart.series) entry.chart.setColor(series.key, this.classColor(series.key));
    this.scheduleTable(0);
  }

  // At most one table refresh per `delay` (0: now, replacing a pending one).
  scheduleTable(delay = 800) {
    if (this.tableTimer && delay > 0) return;
    clearTimeout(this.tableTimer);
    this.tableTimer = setTimeout(() => {
      this.tableTimer = 0;
      this.renderTable().catch(this.options.onError);
    }, delay);
  }

  async renderTable() {
    const table = this.options.classTable;
    const query = (epoch) => api(`/api/v1/metrics/at?run_ids=${this.runId}&epoch=${epoch}`);
    const [best, last] = await Promise.all([query("best"), query("last")]);
    const atBest = best.items[0];
    const atLast = last.items[0];
    const { palette } = this.options;
    const names = palette.names.length ? palette.names : Object.keys(atLast.values)
      .filter((key) => key.startsWith("val/iou/")).map((key) => key.slice(8));
    const cell = (values, prefix, name) => el("td", { class: "num" }, formatNumber(values[`${prefix}${name}`], 4));
    const epochText = (item) => (item.epoch === null ? "–" : `epoch ${item.epoch}`);
    const columns = [["val/iou/", "IoU"], ["val/dice/", "Dice"], ["val/precision/", "Precision"], ["val/recall/", "Recall"]];
    const cells = (values, name) => columns.map(([prefix]) => cell(values, prefix, name));
    // The foot's means: val/iou and val/dice; precision and recall have no overall key.
    const means = (values) => ["val/iou", "val/dice", "val/precision", "val/recall"]
      .map((key) => el("td", { class: "num" }, formatNumber(values[key], 4)));
    table.replaceChildren(
      el("thead", {},
        el("tr", {}, el("th", { rowspan: "2", scope: "col" }, "Class"),
          el("th", { colspan: String(columns.length), scope: "colgroup" }, `Best (${epochText(atBest)})`),
          el("th", { colspan: String(columns.length), scope: "colgroup" }, `Last (${epochText(atLast)})`)),
        el("tr", {}, ...[...columns, ...columns].map(([, label]) => el("th", { scope: "col", class: "num" }, label)))),
      el("tbody", {}, ...names.map((name, index) => el("tr", {},
        el("th", { scope: "row" },
          el("span", { class: "swatch", style: `background: ${palette.colors[index] || "#999"}` }), name),
        ...cells(atBest.values, name), ...cells(atLast.values, name)))),
      el("tfoot", {}, el("tr", {}, el("th", { scope: "row" }, "Mean of foreground (val/iou, val/dice)"),
        ...means(atBest.values), ...means(atLast.values))));
  }
}

