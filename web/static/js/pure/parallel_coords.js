// Parallel coordinates of a sweep, DOM-free: one axis per swept key and one for the metric, each
// run's place on every axis, and the brushes (an interval of one axis each) that filter the runs:
// a run passes when it lies inside every brush (several brushes AND).

import { scaleFor } from "./plot_scales.js";

/**
 * @typedef {object} AxisSpec
 * @property {string} key a swept config key, or the metric's name
 * @property {boolean} metric whether this is the metric's axis
 * @property {string} [distribution] the parameter's distribution in the spec
 * @property {unknown[]} [order] the parameter's `values` in the spec's order
 */

/**
 * @typedef {object} Axis
 * @property {string} key
 * @property {boolean} metric
 * @property {import("./plot_scales.js").Scale} scale
 */

/** @typedef {{id: number, params: Record<string, unknown>, value: number | null}} PlottedRun */

/** A brush: the interval [low, high] of fractions along one axis (0 bottom, 1 top). @typedef {[number, number]} Brush */

/**
 * The axes of a sweep spec: its swept `parameters` (constants left out), then the metric.
 * @param {Record<string, any>} parameters the spec's `parameters`
 * @param {string} metric
 * @returns {AxisSpec[]}
 */
export function axisSpecs(parameters, metric) {
  /** @type {AxisSpec[]} */
  const specs = [];
  for (const [key, raw] of Object.entries(parameters || {})) {
    const described = raw && typeof raw === "object" ? raw : {};
    if ("value" in described || described.distribution === "constant") continue;
    specs.push({ key, metric: false, distribution: described.distribution, order: Array.isArray(described.values) ? described.values : undefined });
  }
  specs.push({ key: metric, metric: true });
  return specs;
}

/**
 * The value a run shows on an axis.
 * @param {PlottedRun} run
 * @param {AxisSpec | Axis} axis
 */
export function valueOn(run, axis) {
  return axis.metric ? run.value : run.params[axis.key];
}

/**
 * Scales over the runs' values and each run's places (null where it has no value).
 * @param {PlottedRun[]} runs
 * @param {AxisSpec[]} specs
 * @returns {{axes: Axis[], places: Array<Array<number | null>>}}
 */
export function layout(runs, specs) {
  const axes = specs.map((spec) => ({
    key: spec.key, metric: spec.metric,
    scale: scaleFor(runs.map((run) => valueOn(run, spec)), { distribution: spec.distribution, order: spec.order }),
  }));
  const places = runs.map((run) => axes.map((axis) => axis.scale.place(valueOn(run, axis))));
  return { axes, places };
}

/**
 * A brush from where a drag started to where it is now (fractions, in any order), kept in [0, 1].
 * @param {number} from
 * @param {number} to
 * @returns {Brush}
 */
export function brushBetween(from, to) {
  const clamp = (/** @type {number} */ x) => Math.min(1, Math.max(0, x));
  return [clamp(Math.min(from, to)), clamp(Math.max(from, to))];
}

/**
 * The fraction along a vertical axis of a pixel row: 1 at `top`, 0 at `top + height`.
 * @param {number} y
 * @param {number} top
 * @param {number} height
 */
export function fractionAt(y, top, height) {
  return height > 0 ? Math.min(1, Math.max(0, 1 - (y - top) / height)) : 0;
}

/**
 * Whether a run's places lie inside every brush (by axis index); a run without a value on a
 * brushed axis does not.
 * @param {Array<number | null>} places
 * @param {Map<number, Brush>} brushes
 */
export function insideBrushes(places, brushes) {
  for (const [index, [low, high]] of brushes) {
    const place = places[index];
    if (place === null || place === undefined || place < low - 1e-9 || place > high + 1e-9) return false;
  }
  return true;
}

/**
 * The ids of the runs inside every brush, brushes keyed by axis key (axes no longer shown are
 * ignored).
 * @param {PlottedRun[]} runs
 * @param {{axes: Axis[], places: Array<Array<number | null>>}} plotted
 * @param {Map<string, Brush>} brushes
 * @returns {Set<number>}
 */
export function selectedIds(runs, plotted, brushes) {
  /** @type {Map<number, Brush>} */
  const byIndex = new Map();
  plotted.axes.forEach((axis, index) => {
    const brush = brushes.get(axis.key);
    if (brush) byIndex.set(index, brush);
  });
  const ids = new Set();
  runs.forEach((run, i) => { if (insideBrushes(plotted.places[i], byIndex)) ids.add(run.id); });
  return ids;
}
