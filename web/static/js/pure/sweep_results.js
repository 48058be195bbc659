// What the sweep page shows of a sweep's answer, DOM-free: progress parts, the best-so-far
// curve's points, the top runs by score, and the parameter importance bars.

/** @typedef {{done: number, running: number, queued: number, pruned: number, failed: number, cancelled?: number}} SweepCounts */

/** The progress bar's parts in the order drawn. */
export const PROGRESS_PARTS = /** @type {const} */ (["done", "pruned", "failed", "running", "queued"]);

/**
 * Each progress part's share of `max_runs` (a sweep may make fewer runs than that: the rest is
 * left blank), and how many runs have ended.
 * @param {SweepCounts} counts
 * @param {number} maxRuns
 * @returns {{parts: Array<{part: string, count: number, share: number}>, ended: number, made: number}}
 */
export function progress(counts, maxRuns) {
  const made = PROGRESS_PARTS.reduce((sum, part) => sum + (counts[part] || 0), 0) + (counts.cancelled || 0);
  const total = Math.max(maxRuns, made, 1);
  const parts = PROGRESS_PARTS.map((part) => ({ part, count: counts[part] || 0, share: (counts[part] || 0) / total }));
  const ended = (counts.done || 0) + (counts.pruned || 0) + (counts.failed || 0) + (counts.cancelled || 0);
  return { parts, ended, made };
}

/**
 * The best-so-far curve as chart columns: trial numbers, each trial's score and the best after it.
 * @param {Array<{trial_number: number, value: number, best: number}>} points
 * @returns {{steps: number[], values: number[], best: number[]}}
 */
export function bestSoFarColumns(points) {
  const sorted = [...points].sort((a, b) => a.trial_number - b.trial_number);
  return {
    steps: sorted.map((point) => point.trial_number),
    values: sorted.map((point) => point.value),
    best: sorted.map((point) => point.best),
  };
}

/**
 * The `count` runs with the best scores (largest first for `maximize`); runs without one are left out.
 * @template {{value: number | null}} R
 * @param {R[]} runs
 * @param {"maximize" | "minimize"} goal
 * @param {number} count
 * @returns {R[]}
 */
export function topRuns(runs, goal, count) {
  const sign = goal === "minimize" ? 1 : -1;
  return runs.filter((run) => run.value !== null && Number.isFinite(run.value))
    .sort((a, b) => sign * (/** @type {number} */ (a.value) - /** @type {number} */ (b.value)))
    .slice(0, count);
}

/**
 * Importance bars, most important first, each with its width as a share of the largest.
 * @param {Record<string, number> | null} importance
 * @returns {Array<{key: string, value: number, share: number}>}
 */
export function importanceBars(importance) {
  const entries = Object.entries(importance || {}).filter(([, value]) => Number.isFinite(value));
  const largest = Math.max(0, ...entries.map(([, value]) => value));
  return entries.sort((a, b) => b[1] - a[1])
    .map(([key, value]) => ({ key, value, share: largest > 0 ? value / largest : 0 }));
}

/**
 * Whether the sweep may still change (its runs still train, or it may queue more).
 * @param {{status: string, counts: SweepCounts}} sweep
 */
export function isLive(sweep) {
  return sweep.status === "running" || sweep.counts.running > 0 || sweep.counts.queued > 0;
}

/**
 * Whether an event of the stream changes what a sweep's page shows: the sweep's own `sweep`
 * events, and status and metrics events of its runs.
 * @param {{kind: string, run_id?: number | null, sweep_id?: number}} event
 * @param {number} sweepId
 * @param {Set<number>} runIds
 */
export function concernsSweep(event, sweepId, runIds) {
  if (event.kind === "sweep") return event.sweep_id === sweepId;
  if (event.kind !== "status" && event.kind !== "metrics") return false;
  return event.run_id !== null && event.run_id !== undefined && runIds.has(event.run_id);
}
