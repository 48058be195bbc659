// Plot scales of the sweep page: a value's place on an axis as a fraction from 0 (bottom or left)
// to 1, for linear and log numeric axes and for categorical axes (one point per value), with the
// ticks each shows. An axis is log when its parameter's distribution is, or when its values are
// positive and span three decades or more.

import { tickLabels } from "./chart_axes.js";

const LOG_DISTRIBUTIONS = new Set(["log_uniform", "log_uniform_values", "q_log_uniform_values"]);
const LOG_SPAN = 1000;
const NICE_STEPS = [1, 2, 2.5, 5, 10];

/**
 * @typedef {object} Scale
 * @property {"linear" | "log" | "category"} kind
 * @property {(value: unknown) => number | null} place the value's fraction along the axis, null
 *   for a value the axis cannot show (missing, or not positive on a log axis)
 * @property {Array<{at: number, label: string}>} ticks
 */

/**
 * The text a categorical value is shown (and told apart) by.
 * @param {unknown} value
 */
export function categoryLabel(value) {
  if (value === null || value === undefined) return "–";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/**
 * @param {unknown} value
 * @returns {value is number}
 */
const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/**
 * About `count` round ticks between low and high.
 * @param {number} low
 * @param {number} high
 * @param {number} count
 */
export function linearTicks(low, high, count = 5) {
  if (!(high > low)) return [low];
  const raw = (high - low) / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = (NICE_STEPS.find((nice) => nice * magnitude >= raw) || 10) * magnitude;
  const ticks = [];
  for (let tick = Math.ceil(low / step) * step; tick <= high + step * 1e-9; tick += step) {
    ticks.push(Math.abs(tick) < step * 1e-9 ? 0 : Number(tick.toPrecision(12)));
  }
  return ticks;
}

/**
 * The powers of ten between low and high (both > 0); low and high themselves when there are
 * fewer than two.
 * @param {number} low
 * @param {number} high
 */
export function logTicks(low, high) {
  const ticks = [];
  for (let power = Math.ceil(Math.log10(low) - 1e-9); power <= Math.floor(Math.log10(high) + 1e-9); power++) ticks.push(Number(`1e${power}`));
  return ticks.length >= 2 ? ticks : [low, high];
}

/**
 * A scale for `values` (one per run; missing ones null). Numbers make a numeric axis over their
 * range; anything else a categorical one with the values in `order` first (a spec's `values`),
 * then the others as they come.
 * @param {unknown[]} values
 * @param {{distribution?: string, order?: unknown[]}} [hint] the swept parameter's spec
 * @returns {Scale}
 */
export function scaleFor(values, hint = {}) {
  const present = values.filter((value) => value !== null && value !== undefined);
  const numeric = present.length > 0 && present.every(isNumber);
  if (!numeric) return categoryScale([...(hint.order || []), ...present]);
  const numbers = /** @type {number[]} */ (present);
  let low = Infinity;
  let high = -Infinity;
  for (const number of numbers) {
    if (number < low) low = number;
    if (number > high) high = number;
  }
  const log = low > 0 && (LOG_DISTRIBUTIONS.has(hint.distribution || "") || high / low >= LOG_SPAN);
  return log ? logScale(low, high) : linearScale(low, high);
}

/**
 * @param {number} low
 * @param {number} high
 * @returns {Scale}
 */
export function linearScale(low, high) {
  const span = high - low;
  const ticks = linearTicks(low, high);
  // One value alone: its label with as many digits as a table shows, not all of them.
  const labels = span > 0 ? tickLabels(ticks) : [String(Number(low.toPrecision(4)))];
  return {
    kind: "linear",
    place: (value) => (isNumber(value) ? (span > 0 ? (value - low) / span : 0.5) : null),
    ticks: ticks.map((tick, index) => ({ at: span > 0 ? (tick - low) / span : 0.5, label: labels[index] })),
  };
}

/**
 * @param {number} low above 0
 * @param {number} high
 * @returns {Scale}
 */
export function logScale(low, high) {
  const bottom = Math.log10(low);
  const span = Math.log10(high) - bottom;
  /** @param {number} value */
  const at = (value) => (span > 0 ? (Math.log10(value) - bottom) / span : 0.5);
  const ticks = logTicks(low, high);
  const labels = tickLabels(ticks);
  return {
    kind: "log",
    place: (value) => (isNumber(value) && value > 0 ? at(value) : null),
    ticks: ticks.map((tick, index) => ({ at: at(tick), label: labels[index] })),
  };
}

/**
 * One evenly spaced point per distinct value (by its label), in the order first seen.
 * @param {unknown[]} values
 * @returns {Scale}
 */
export function categoryScale(values) {
  /** @type {Map<string, number>} */
  const index = new Map();
  for (const value of values) {
    const label = categoryLabel(value);
    if (!index.has(label)) index.set(label, index.size);
  }
  const count = index.size;
  /** @param {number} i */
  const at = (i) => (count > 1 ? i / (count - 1) : 0.5);
  return {
    kind: "category",
    place: (value) => {
      if (value === null || value === undefined) return null;
      const i = index.get(categoryLabel(value));
      return i === undefined ? null : at(i);
    },
    ticks: [...index.keys()].map((label, i) => ({ at: at(i), label })),
  };
}

/** The colour ramp of scores, from worst to best (viridis-like stops). */
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

/**
 * The ramp's colour at `t` (0 worst, 1 best) as #rrggbb; outside [0, 1] clamped, null grey.
 * @param {number | null} t
 */
export function rampColor(t) {
  if (t === null || !Number.isFinite(t)) return "#9ca3af";
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const channel = (/** @type {number} */ c) => Math.round(RAMP[i][c] + (RAMP[i + 1][c] - RAMP[i][c]) * f).toString(16).padStart(2, "0");
  return `#${channel(0)}${channel(1)}${channel(2)}`;
}
