// Series arithmetic for the charts: lookups in step-sorted series, EMA smoothing, aligning
// several series on one x axis, and the mean ± standard deviation of several runs' series whose
// steps need not match (each run is interpolated onto the union of steps inside its own range).

/** A value that may be missing (a gap in a chart). @typedef {number | null | undefined} Gap */

/**
 * First index whose step is >= `step` (steps ascending); `steps.length` when none is.
 * @param {ArrayLike<number>} steps
 * @param {number} step
 */
export function lowerBound(steps, step) {
  let lo = 0;
  let hi = steps.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (steps[mid] < step) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/**
 * Value of a step-sorted series at `step` by linear interpolation; null outside its range.
 * @param {ArrayLike<number>} steps
 * @param {ArrayLike<number>} values
 * @param {number} step
 * @returns {number | null}
 */
export function interpolate(steps, values, step) {
  if (!steps.length || step < steps[0] || step > steps[steps.length - 1]) return null;
  let lo = 0;
  let hi = steps.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (steps[mid] <= step) lo = mid; else hi = mid;
  }
  if (steps[lo] === step) return values[lo];
  if (steps[hi] === step) return values[hi];
  const t = (step - steps[lo]) / (steps[hi] - steps[lo]);
  return values[lo] + t * (values[hi] - values[lo]);
}

/**
 * Exponential moving average with TensorBoard's debiasing, so the first points are not pulled
 * towards zero; gaps (null) stay gaps.
 * @param {ArrayLike<Gap>} values
 * @param {number} factor 0 (no smoothing) to below 1
 * @returns {Array<number | null>}
 */
export function smooth(values, factor) {
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

/** @typedef {{steps: ArrayLike<number>, values: ArrayLike<number>}} Series */

/**
 * Several series on one shared x array (the union of their steps, ascending) with null where a
 * series has no point, as uPlot wants. `positiveOnly` (a log scale) turns values <= 0 into gaps.
 * @param {Array<Series | undefined>} series one entry per column; undefined: an empty column
 * @param {{positiveOnly?: boolean}} [options]
 * @returns {{xs: number[], columns: Array<Array<number | null>>}}
 */
export function align(series, { positiveOnly = false } = {}) {
  /** @type {Set<number>} */
  const stepSet = new Set();
  for (const entry of series) if (entry) for (let i = 0; i < entry.steps.length; i++) stepSet.add(entry.steps[i]);
  const xs = Array.from(Float64Array.from(stepSet).sort());
  /** @type {Map<number, number>} */
  const position = new Map();
  xs.forEach((step, index) => position.set(step, index));
  const columns = series.map((entry) => {
    /** @type {Array<number | null>} */
    const column = new Array(xs.length).fill(null);
    if (entry) {
      for (let i = 0; i < entry.steps.length; i++) {
        const value = entry.values[i];
        column[/** @type {number} */ (position.get(entry.steps[i]))] = positiveOnly && !(value > 0) ? null : value;
      }
    }
    return column;
  });
  return { xs, columns };
}

/**
 * Mean and standard deviation (n - 1; 0 for a single run) per step over several series, at
 * only the steps where at least one series has a value.
 * @param {Series[]} series
 * @returns {{steps: number[], mean: number[], std: number[], count: number[]}}
 */
export function meanStd(series) {
  /** @type {Set<number>} */
  const stepSet = new Set();
  for (const item of series) for (let i = 0; i < item.steps.length; i++) stepSet.add(item.steps[i]);
  const steps = [...stepSet].sort((a, b) => a - b);
  /** @type {{steps: number[], mean: number[], std: number[], count: number[]}} */
  const out = { steps: [], mean: [], std: [], count: [] };
  for (const step of steps) {
    const values = /** @type {number[]} */ (series
      .map((item) => interpolate(item.steps, item.values, step))
      .filter((value) => value !== null));
    if (!values.length) continue;
    const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
    const variance = values.length > 1
      ? values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (values.length - 1)
      : 0;
    out.steps.push(step);
    out.mean.push(mean);
    out.std.push(Math.sqrt(variance));
    out.count.push(values.length);
  }
  return out;
}
