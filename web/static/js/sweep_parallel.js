// The sweep page's parallel-coordinates plot: one vertical axis per swept key and one for the
// metric (SVG, over a canvas), a line per run coloured by its score (drawn on the canvas: a
// thousand SVG paths cost more to paint than the rest of the page). Dragging along an axis
// brushes an interval of it; the runs inside every brush stay coloured and are reported to
// `onSelect`; a click on an axis clears its brush. Brushes are kept by axis key as fractions, so
// they survive new data. The canvas says how many lines it drew (`data-lines`) and how many are
// inside the brushes (`data-selected`).

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
    /** @type {Array<{id: number, points: Array<[number, number] | null>, color: string}>} */
    this.lines = [];
    this.width = 0;
    /** @type {HTMLCanvasElement | null} */
    this.canvas = null;
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
    const root = svg("svg", { viewBox: `0 0 ${width} ${HEIGHT}`, width, height: HEIGHT, role: "img", class: "parallel-axes",
      "aria-label": `Parallel coordinates of ${this.runs.length} runs over ${plotted.axes.map((axis) => axis.key).join(", ")}` });
    const metricIndex = plotted.axes.findIndex((axis) => axis.metric);
    this.lines = plotted.places.map((places, r) => {
      const score = metricIndex >= 0 ? places[metricIndex] : null;
      return {
        id: this.runs[r].id,
        points: places.map((place, i) => (place === null ? null : /** @type {[number, number]} */ ([xs[i], y(place)]))),
        color: rampColor(score === null ? null : this.goal === "minimize" ? 1 - score : score),
      };
    });
    this.width = width;
    this.canvas = el("canvas", { class: "parallel-lines", "aria-hidden": "true" });
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(HEIGHT * ratio);
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${HEIGHT}px`;
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
    this.container.replaceChildren(el("div", { class: "parallel-stack", style: `height:${HEIGHT}px` }, this.canvas, root));
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

  /** Grey the lines outside the brushes, draw those inside over them, and tell the page. */
  select() {
    if (!this.plotted) return;
    const ids = selectedIds(this.runs, this.plotted, this.brushes);
    const brushed = [...this.brushes.keys()].some((key) => this.plotted.axes.some((axis) => axis.key === key));
    this.paint(ids, brushed);
    this.onSelect(ids, brushed);
  }

  /**
   * @param {Set<number>} ids the runs inside the brushes
   * @param {boolean} brushed
   */
  paint(ids, brushed) {
    const canvas = this.canvas;
    if (!canvas) return;
    const context = canvas.getContext("2d");
    const ratio = canvas.width / Math.max(1, this.width);
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, this.width, HEIGHT);
    context.lineWidth = 1;
    /** @param {Array<[number, number] | null>} points */
    const trace = (points) => {
      context.beginPath();
      let open = false;
      for (const point of points) {
        if (point === null) { open = false; continue; }
        if (open) context.lineTo(point[0], point[1]); else context.moveTo(point[0], point[1]);
        open = true;
      }
      context.stroke();
    };
    let drawn = 0;
    let inside = 0;
    if (brushed) {
      context.strokeStyle = "rgba(203, 213, 225, 0.45)";
      for (const line of this.lines) if (!ids.has(line.id)) { trace(line.points); drawn++; }
    }
    for (const line of this.lines) {
      if (brushed && !ids.has(line.id)) continue;
      context.strokeStyle = line.color;
      trace(line.points);
      drawn++;
      inside++;
    }
    canvas.dataset.lines = String(drawn);
    canvas.dataset.selected = String(inside);
  }
}
