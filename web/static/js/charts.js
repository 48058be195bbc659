// Line charts on uPlot for the run and compare pages: several series with their own steps, a log
// scale toggle, EMA smoothing that keeps the raw line faint, optional mean ± std bands, a hover
// legend with values, a "downsampled" note, a size that follows the page, and drag-to-zoom on
// the x axis that charts sharing a `syncKey` follow together (double-click or "Reset zoom" undoes).
// An x axis of seconds (`xTime`) reads as elapsed time: 45s, 12m30s, 1h05m, 2d03h.
"use strict";

const segtrackCharts = (() => {
  const { el } = segtrack;
  const registry = new Map();
  const HEIGHT = 230;
  const Y_AXIS_PX = 60;
  const MIN_POINTS = 5;
  // Steps and epochs are integers: ticks never fall between two of them.
  const STEP_INCREMENTS = [1, 2, 5].flatMap((base) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8].map((scale) => base * scale)).sort((a, b) => a - b);
  // Seconds: ticks fall on whole seconds, minutes, hours and days.
  const MINUTE = 60;
  const HOUR = 3600;
  const DAY = 86400;
  const TIME_INCREMENTS = [1, 2, 5, 10, 15, 30, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
    HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 5 * DAY, 10 * DAY, 20 * DAY, 50 * DAY, 100 * DAY];
  const TIME_UNITS = [["d", DAY], ["h", HOUR], ["m", MINUTE], ["s", 1]];
  // uPlot's cursor sync replays these on every chart of the group, each zooming to the range under
  // its own pixels; zoomTo shares the one exact range instead, and keeps it across new data.
  const UNSYNCED_EVENTS = new Set(["mousedown", "mouseup", "dblclick"]);

  function formatValue(value) {
    if (value === null || value === undefined || !Number.isFinite(value)) return "–";
    const size = Math.abs(value);
    if (size !== 0 && (size < 1e-3 || size >= 1e5)) return value.toExponential(2);
    return String(Number(value.toPrecision(4)));
  }

  /**
   * Seconds as elapsed time from the largest unit down to the last one that is not zero, later
   * units two digits wide: 0, 45s, 1m30s, 1h05m, 1h00m03s, 2d03h.
   */
  function formatElapsed(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
    let rest = Math.round(Math.abs(seconds));
    if (rest === 0) return "0";
    const parts = [];
    for (const [name, size] of TIME_UNITS) {
      const count = Math.floor(rest / size);
      rest -= count * size;
      if (parts.length) parts.push(`${String(count).padStart(2, "0")}${name}`);
      else if (count) parts.push(`${count}${name}`);
      if (parts.length && rest === 0) break;
    }
    return `${seconds < 0 ? "-" : ""}${parts.join("")}`;
  }

  function withAlpha(color, alpha) {
    const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
    if (!match) return color;
    const [r, g, b] = match.slice(1).map((part) => parseInt(part, 16));
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }

  // Exponential moving average with TensorBoard's debiasing, so the first points are not pulled
  // towards zero; gaps (null) stay gaps.
  function smooth(values, factor) {
    const out = new Array(values.length);
    let average = 0;
    let weight = 0;
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (value === null || value === undefined) { out[i] = null; continue; }
      average = factor * average + (1 - factor) * value;
      weight = factor * weight + (1 - factor);
      out[i] = average / weight;
    }
    return out;
  }

  // First index whose step is >= step (steps ascending).
  function lowerBound(steps, step) {
    let lo = 0;
    let hi = steps.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (steps[mid] < step) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  // Axis tick labels with as few digits as tell them apart: plain decimals, or powers of ten for
  // very small or large values (learning rates, log scales).
  function tickLabels(u, ticks) {
    const finite = ticks.filter((tick) => Number.isFinite(tick));
    if (!finite.length) return ticks.map(() => "");
    const largest = Math.max(...finite.map(Math.abs));
    const nonZero = finite.filter((tick) => tick !== 0).map(Math.abs);
    const smallest = nonZero.length ? Math.min(...nonZero) : 1;
    const exact = (format) => finite.every((tick) => Math.abs(Number(format(tick)) - tick) <= 1e-9 * Math.max(largest, 1e-300));
    if (largest >= 1e5 || smallest < 1e-3) {
      let digits = 0;
      while (digits < 4 && !exact((tick) => tick.toExponential(digits))) digits++;
      return ticks.map((tick) => (tick === 0 ? "0" : Number.isFinite(tick) ? tick.toExponential(digits) : ""));
    }
    let digits = 0;
    while (digits < 8 && !exact((tick) => tick.toFixed(digits))) digits++;
    return ticks.map((tick) => (Number.isFinite(tick) ? tick.toFixed(digits) : ""));
  }

  // Hover legend: the value under the cursor, or the series' latest value when it is off the chart.
  function legendValue(u, value, seriesIndex, dataIndex) {
    if (dataIndex === null || dataIndex === undefined) {
      const column = u.data[seriesIndex] || [];
      const last = lastIndex(column);
      return last === null ? "–" : `${formatValue(column[last])} (last)`;
    }
    return formatValue(value);
  }

  // A mean's legend value with its ± half band width (the band's upper and lower series).
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

  function lastIndex(column) {
    for (let i = column.length - 1; i >= 0; i--) if (column[i] !== null && column[i] !== undefined) return i;
    return null;
  }

  // The charts that zoom together: those with the same syncKey, or the chart alone.
  function zoomGroup(chart) {
    const key = chart.options.syncKey;
    if (!key) return [chart];
    return [...registry.values()].filter((other) => other.options.syncKey === key);
  }

  let uid = 0;

  class Chart {
    /**
     * @param {HTMLElement} container where the chart's figure goes
     * @param {object} options id, title, xLabel, xTime (x is seconds, shown as elapsed time),
     *   height, emptyText, syncKey (charts with the same key share the hover cursor and the
     *   zoomed x range: give them the same x axis),
     *   onWidthChange(width) (debounced), bands: [[upperKey, lowerKey, color]]
     */
    constructor(container, options) {
      this.options = { height: HEIGHT, xLabel: "epoch", emptyText: "No points yet", ...options };
      this.id = this.options.id || `chart-${++uid}`;
      this.series = [];
      this.points = new Map();
      this.log = false;
      this.smoothing = 0;
      this.plot = null;
      this.rebuild = true;
      this.frame = 0;
      this.resizeTimer = 0;
      this.lastWidth = 0;
      this.renderedWidth = 0;
      this.zoom = null;
      this.build(container);
      registry.set(this.id, this);
      const zoomed = zoomGroup(this).find((other) => other.zoom);
      if (zoomed) this.showRange(zoomed.zoom);
    }

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
     */
    setSeries(definitions) {
      this.series = definitions.map((definition) => ({ ...definition }));
      const keys = new Set(definitions.map((definition) => definition.key));
      for (const key of [...this.points.keys()]) if (!keys.has(key)) this.points.delete(key);
      this.rebuild = true;
      this.schedule();
    }

    hasSeries(key) {
      return this.series.some((series) => series.key === key);
    }

    addSeries(definition) {
      if (this.hasSeries(definition.key)) return;
      this.series.push({ ...definition });
      this.rebuild = true;
      this.schedule();
    }

    setColor(key, color) {
      const series = this.series.find((item) => item.key === key);
      if (!series || series.color === color) return;
      series.color = color;
      this.rebuild = true;
      this.schedule();
    }

    setBands(bands) {
      this.options.bands = bands;
      this.rebuild = true;
      this.schedule();
    }

    /** Replace one series' points; `meta` is {downsampled, count} from the metrics API. */
    setPoints(key, steps, values, meta = {}) {
      this.points.set(key, {
        steps: Array.from(steps), values: Array.from(values),
        downsampled: Boolean(meta.downsampled), count: meta.count ?? steps.length,
      });
      this.schedule();
    }

    /** Add (or replace, for a replayed step) one point of a series. */
    append(key, step, value) {
      let entry = this.points.get(key);
      if (!entry) {
        entry = { steps: [], values: [], downsampled: false, count: 0 };
        this.points.set(key, entry);
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
      this.schedule();
    }

    lastStep(key) {
      const entry = this.points.get(key);
      return entry && entry.steps.length ? entry.steps[entry.steps.length - 1] : null;
    }

    /** Points per series the browser holds (the longest series). */
    pointCount() {
      let most = 0;
      for (const entry of this.points.values()) most = Math.max(most, entry.steps.length);
      return most;
    }

    isDownsampled() {
      for (const entry of this.points.values()) if (entry.downsampled) return true;
      return false;
    }

    /** Show x from range.min to range.max (null: all of it) here and on the charts zoomed with it. */
    zoomTo(range) {
      for (const chart of zoomGroup(this)) chart.showRange(range);
    }

    resetZoom() {
      this.zoomTo(null);
    }

    showRange(range) {
      this.zoom = range ? { min: range.min, max: range.max } : null;
      this.resetButton.hidden = !this.zoom;
      this.figure.toggleAttribute("data-zoomed", Boolean(this.zoom));
      if (!this.plot) return;
      if (this.zoom) this.plot.setScale("x", this.zoom);
      else this.plot.setData(this.plot.data); // fits the scales to the data again
    }

    // uPlot calls setSelect when a drag-select ends, just before it zooms this chart to the
    // selection (posToVal of its edges): the same range goes to the charts zoomed with this one.
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

    // One shared x array (the union of every series' steps) with null where a series has no
    // point, as uPlot wants; smoothing adds a smoothed copy after each raw series.
    aligned() {
      const stepSet = new Set();
      for (const series of this.series) {
        const entry = this.points.get(series.key);
        if (entry) for (const step of entry.steps) stepSet.add(step);
      }
      const xs = Float64Array.from(stepSet).sort();
      const position = new Map();
      xs.forEach((step, index) => position.set(step, index));
      const columns = [Array.from(xs)];
      for (const series of this.series) {
        const column = new Array(xs.length).fill(null);
        const entry = this.points.get(series.key);
        if (entry) {
          for (let i = 0; i < entry.steps.length; i++) {
            const value = entry.values[i];
            column[position.get(entry.steps[i])] = this.log && !(value > 0) ? null : value;
          }
        }
        if (this.smoothing > 0 && !series.faint) columns.push(column, smooth(column, this.smoothing));
        else columns.push(this.smoothing > 0 ? smooth(column, this.smoothing) : column);
      }
      return columns;
    }

    uplotOptions() {
      const smoothing = this.smoothing > 0;
      const { xTime } = this.options;
      const xValue = (u, v) => (v === null || v === undefined ? "–" : xTime ? formatElapsed(v) : String(v));
      const uSeries = [{ label: this.options.xLabel, value: xValue }];
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
          points: { show: (u, seriesIndex) => u.data[0].length < 3 && !series.faint },
        });
      }
      const bands = (this.options.bands || [])
        .filter(([upper, lower]) => index.has(upper) && index.has(lower))
        .map(([upper, lower, color]) => ({ series: [index.get(upper), index.get(lower)], fill: withAlpha(color, 0.15) }));
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
            incrs: xTime ? TIME_INCREMENTS : STEP_INCREMENTS,
            // Only when set: an undefined `values` would replace uPlot's default formatter.
            ...(xTime ? { values: (u, ticks) => ticks.map(formatElapsed) } : {}),
          },
          { size: Y_AXIS_PX, stroke: "#5f6b7a", grid: { stroke: "#eef0f3" }, values: tickLabels },
        ],
        legend: { live: true },
        cursor: {
          sync: { key: this.options.syncKey || null, filters: { pub: (type) => !UNSYNCED_EVENTS.has(type) } },
          // Double-click resets every chart zoomed with this one, not only this one.
          bind: { dblclick: () => () => this.resetZoom() },
        },
        hooks: { setSelect: [(u) => this.selected(u)] },
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
      const thinned = [...this.points.values()].filter((entry) => entry.downsampled);
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

  function create(container, options) {
    return new Chart(container, options);
  }

  function get(id) {
    return registry.get(id);
  }

  return { create, get, registry, formatValue, formatElapsed };
})();
