// The sweep page's scatter (SVG): the metric against one chosen key, a dot per run with a score,
// coloured by it; runs outside the parallel-coordinates brushes are greyed.

import { scaleFor, rampColor } from "./pure/plot_scales.js";

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 260;
const MARGIN = { top: 12, right: 16, bottom: 36, left: 64 };

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

/**
 * Draw `metric` against `axis` for the runs.
 * @param {HTMLElement} container
 * @param {import("./pure/parallel_coords.js").PlottedRun[]} runs
 * @param {import("./pure/parallel_coords.js").AxisSpec} axis the key on x (its spec hints the scale)
 * @param {string} metric
 * @param {"maximize" | "minimize"} goal
 * @param {Set<number>} selected the runs inside the brushes
 */
export function drawScatter(container, runs, axis, metric, goal, selected) {
  const width = Math.max(320, container.clientWidth || 600);
  const scored = runs.filter((run) => run.value !== null);
  const xScale = scaleFor(runs.map((run) => run.params[axis.key]), { distribution: axis.distribution, order: axis.order });
  const yScale = scaleFor(scored.map((run) => run.value));
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const px = (/** @type {number} */ f) => MARGIN.left + f * plotWidth;
  const py = (/** @type {number} */ f) => MARGIN.top + (1 - f) * plotHeight;
  const root = svg("svg", { viewBox: `0 0 ${width} ${HEIGHT}`, height: HEIGHT, role: "img",
    "aria-label": `${metric} against ${axis.key}, ${scored.length} runs` });
  const grid = svg("g", { class: "grid" });
  for (const tick of xScale.ticks) {
    grid.append(svg("line", { x1: px(tick.at), x2: px(tick.at), y1: MARGIN.top, y2: MARGIN.top + plotHeight }));
    root.append(svg("text", { x: px(tick.at), y: HEIGHT - MARGIN.bottom + 14, "text-anchor": "middle" }, tick.label));
  }
  for (const tick of yScale.ticks) {
    grid.append(svg("line", { x1: MARGIN.left, x2: MARGIN.left + plotWidth, y1: py(tick.at), y2: py(tick.at) }));
    root.append(svg("text", { x: MARGIN.left - 6, y: py(tick.at) + 3.5, "text-anchor": "end" }, tick.label));
  }
  root.prepend(grid);
  root.append(svg("text", { x: MARGIN.left + plotWidth / 2, y: HEIGHT - 4, "text-anchor": "middle" },
    `${axis.key}${xScale.kind === "log" ? " (log)" : ""}`));
  root.append(svg("text", { x: 12, y: MARGIN.top + plotHeight / 2, "text-anchor": "middle",
    transform: `rotate(-90 12 ${MARGIN.top + plotHeight / 2})` }, metric));
  const dots = svg("g", { class: "dots" });
  const greyed = [];
  for (const run of scored) {
    const fx = xScale.place(run.params[axis.key]);
    const fy = yScale.place(run.value);
    if (fx === null || fy === null) continue;
    const inside = selected.has(run.id);
    const dot = svg("circle", { class: "dot", cx: px(fx).toFixed(1), cy: py(fy).toFixed(1), r: inside ? 3.5 : 2.5,
      fill: inside ? rampColor(goal === "minimize" ? 1 - fy : fy) : "#d1d5db", "data-run-id": run.id });
    if (inside) dots.append(dot); else greyed.push(dot);
  }
  dots.prepend(...greyed);
  root.append(dots);
  container.replaceChildren(root);
}
