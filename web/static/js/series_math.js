// Series arithmetic for comparing runs: mean ± standard deviation of several runs' series whose
// steps need not match (each run is interpolated onto the union of steps inside its own range).
"use strict";

const segtrackSeriesMath = (() => {
  /** Value of a step-sorted series at `step` by linear interpolation; null outside its range. */
  function interpolate(steps, values, step) {
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
   * Mean and standard deviation (n - 1; 0 for a single run) per step over several series.
   * @param {Array<{steps: number[], values: number[]}>} series
   * @returns {{steps: number[], mean: number[], std: number[], count: number[]}} only steps where
   *   at least one series has a value
   */
  function meanStd(series) {
    const stepSet = new Set();
    for (const item of series) for (const step of item.steps) stepSet.add(step);
    const steps = [...stepSet].sort((a, b) => a - b);
    const out = { steps: [], mean: [], std: [], count: [] };
    for (const step of steps) {
      const values = series.map((item) => interpolate(item.steps, item.values, step)).filter((value) => value !== null);
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

  return { interpolate, meanStd };
})();
