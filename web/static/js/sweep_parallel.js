// The sweep page's parallel-coordinates plot (SVG): one vertical axis per swept key and one for
// the metric, a line per run coloured by its score. Dragging along an axis brushes an interval of
// it; the runs inside every brush stay coloured and are reported to `onSelect`; a click on an
// axis clears its brush. Brushes are kept by axis key as fractions, so they survive new data.

import { el } from "./dom.js";
import { brushBetween, fractionAt, layout, selectedIds } from "./pure/parallel_coords.js";
import { rampColor } from "./pure/plot_scales.js";

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 320;
const MARGIN = { top: 34, bottom: 18, left: 70, right: 70 };
const HIT_WIDTH = 28;
const CLICK_PX = 3;

/**
 * @param {string} tag
 * @param {Record<string, string | number>} [attributes]
 * @param {string} [text]
 */
function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export class ParallelPlot {
  /**
   * @param {HTMLElement} container
   * @param {(ids: Set<number>, brushed: boolean) => void} onSelect
   */
  constructor(container, onSelect) {
    this.container = container;
    this.onSelect = onSelect;
    /** @type {Map<string, import("./pure/parallel_coords.js").Brush>} */
    this.brushes = new Map();
    /** @type {import("./pure/parallel_coords.js").PlottedRun[]} */
    this.runs = [];
    /** @type {import("./pure/parallel_coords.js").AxisSpec[]} */
    this.specs = [];
    this.goal = "maximize";
    /** @type {ReturnType<typeof layout> | null} */
    this.plotted = null;
    /** @type {SVGPathElement[]} */
    this.lines = [];
    /** @type {Map<string, SVGRectElement>} */
    this.brushRects = new Map();
  }

  /**
   * Draw the runs over these axes (brushes on axes still there are kept).
   * @param {import("./pure/parallel_coords.js").PlottedRun[]} runs
   * @param {import("./pure/parallel_coords.js").AxisSpec[]} specs
   * @param {"maximize" | "minimize"} goal
   */
  draw(runs, specs, goal) {
    this.runs = runs;
    this.specs = specs;
    this.goal = goal;
    this.render();
  }

  clearBrushes() {
    this.brushes.clear();
    for (const rect of this.brushRects.values()) rect.setAttribute("height", "0");
    this.select();
  }

  render() {
    const width = Math.max(400, this.container.clientWidth || 900);
    const plotted = layout(this.runs, this.specs);
    this.plotted = plotted;
    const count = plotted.axes.length;
    const span = width - MARGIN.left - MARGIN.right;
    const xs = plotted.axes.map((_, i) => MARGIN.left + (count > 1 ? (span * i) / (count - 1) : span / 2));
    const top = MARGIN.top;
    const height = HEIGHT - MARGIN.top - MARGIN.bottom;
    const y = (/** @type {number} */ fraction) => top + (1 - fraction) * height;
    const root = svg("svg", { viewBox: `0 0 ${width} ${HEIGHT}`, height: HEIGHT, role: "img",
      "aria-label": `Parallel coordinates of ${this.runs.length} runs over ${plotted.axes.map((axis) => axis.key).join(", ")}` });
    const lineGroup = svg("g", { class: "lines" });
    const metricIndex = plotted.axes.findIndex((axis) => axis.metric);
    this.lines = plotted.places.map((places, r) => {
      let d = "";
      places.forEach((place, i) => {
        if (place === null) return;
        d += `${d && places[i - 1] !== null ? "L" : "M"}${xs[i].toFixed(1)},${y(place).toFixed(1)}`;
      });
      const score = metricIndex >= 0 ? places[metricIndex] : null;
      const color = rampColor(score === null ? null : this.goal === "minimize" ? 1 - score : score);
      const path = /** @type {SVGPathElement} */ (svg("path", { class: "line", d, stroke: color, "data-run-id": this.runs[r].id }));
      lineGroup.append(path);
      return path;
    });
    root.append(lineGroup);
    this.brushRects = new Map();
    plotted.axes.forEach((axis, i) => {
      const group = svg("g", { class: "axis", "data-axis": axis.key, transform: `translate(${xs[i]},0)` });
      group.append(svg("line", { x1: 0, x2: 0, y1: top, y2: top + height }));
      for (const tick of axis.scale.ticks) {
        group.append(svg("line", { x1: -4, x2: 0, y1: y(tick.at), y2: y(tick.at) }));
        group.append(svg("text", { x: -7, y: y(tick.at) + 3.5, "text-anchor": "end" }, tick.label));
      }
      group.append(svg("text", { class: "axis-title", x: 0, y: top - 14, "text-anchor": "middle" },
        `${axis.key}${axis.scale.kind === "log" ? " (log)" : ""}`));
      const brush = /** @type {SVGRectElement} */ (svg("rect", { class: "brush", x: -9, width: 18, y: top, height: 0 }));
      const hit = svg("rect", { class: "hit", x: -HIT_WIDTH / 2, width: HIT_WIDTH, y: top - 4, height: height + 8,
        "data-axis-hit": axis.key, "aria-label": `Brush ${axis.key}` });
      group.append(brush, hit);
      this.brushRects.set(axis.key, brush);
      this.showBrush(axis.key, y);
      this.listen(hit, axis.key, root, top, height, y);
      root.append(group);
    });
    this.container.replaceChildren(root);
    if (!this.runs.length) this.container.append(el("p", { class: "muted" }, "No run yet."));
    this.select();
  }

  /**
   * @param {string} key
   * @param {(fraction: number) => number} y
   */
  showBrush(key, y) {
    const rect = this.brushRects.get(key);
    const brush = this.brushes.get(key);
    if (!rect) return;
    if (!brush) { rect.setAttribute("height", "0"); return; }
    rect.setAttribute("y", String(y(brush[1])));
    rect.setAttribute("height", String(Math.max(1, y(brush[0]) - y(brush[1]))));
  }

  /**
   * Brushing one axis with the pointer.
   * @param {SVGElement} hit
   * @param {string} key
   * @param {SVGSVGElement | SVGElement} root
   * @param {number} top
   * @param {number} height
   * @param {(fraction: number) => number} y
   */
  listen(hit, key, root, top, height, y) {
    /** @param {PointerEvent} event */
    const rowOf = (event) => {
      const box = root.getBoundingClientRect();
      const scale = box.height ? HEIGHT / box.height : 1;
      return (event.clientY - box.top) * scale;
    };
    hit.addEventListener("pointerdown", (event) => {
      const start = rowOf(/** @type {PointerEvent} */ (event));
      hit.setPointerCapture(/** @type {PointerEvent} */ (event).pointerId);
      let moved = false;
      const move = (/** @type {PointerEvent} */ moveEvent) => {
        const now = rowOf(moveEvent);
        if (Math.abs(now - start) < CLICK_PX && !moved) return;
        moved = true;
        this.brushes.set(key, brushBetween(fractionAt(start, top, height), fractionAt(now, top, height)));
        this.showBrush(key, y);
        this.select();
      };
      const up = () => {
        hit.removeEventListener("pointermove", move);
        hit.removeEventListener("pointerup", up);
        if (!moved) { this.brushes.delete(key); this.showBrush(key, y); this.select(); }
      };
      hit.addEventListener("pointermove", move);
      hit.addEventListener("pointerup", up);
    });
  }

  /** Grey the lines outside the brushes and tell the page which runs are in. */
  select() {
    if (!this.plotted) return;
    const ids = selectedIds(this.runs, this.plotted, this.brushes);
    const brushed = [...this.brushes.keys()].some((key) => this.plotted.axes.some((axis) => axis.key === key));
    for (const line of this.lines) {
      const inside = ids.has(Number(line.dataset.runId));
      line.classList.toggle("out", !inside);
      // The selected lines are drawn last, over the greyed ones.
      if (inside && brushed) line.parentNode.append(line);
    }
    this.onSelect(ids, brushed);
  }
}
