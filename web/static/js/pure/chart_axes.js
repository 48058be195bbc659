// Chart axes: where ticks may fall (whole steps; whole seconds, minutes, hours and days), tick
// labels with as few digits as tell them apart, and the steps a zoomed x axis shows.

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86400;

/** Steps and epochs are integers: ticks never fall between two of them. */
export const STEP_INCREMENTS = Object.freeze([1, 2, 5]
  .flatMap((base) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8].map((scale) => base * scale))
  .sort((a, b) => a - b));

/** Seconds: ticks fall on whole seconds, minutes, hours and days. */
export const TIME_INCREMENTS = Object.freeze([1, 2, 5, 10, 15, 30, MINUTE, 2 * MINUTE, 5 * MINUTE,
  10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY,
  5 * DAY, 10 * DAY, 20 * DAY, 50 * DAY, 100 * DAY]);

/**
 * Axis tick labels with as few digits as tell them apart: plain decimals, or powers of ten for
 * very small or large values (learning rates, log scales). Ticks that are not finite get "".
 * @param {number[]} ticks
 * @returns {string[]}
 */
export function tickLabels(ticks) {
  const finite = ticks.filter((tick) => Number.isFinite(tick));
  if (!finite.length) return ticks.map(() => "");
  const largest = Math.max(...finite.map(Math.abs));
  const nonZero = finite.filter((tick) => tick !== 0).map(Math.abs);
  const smallest = nonZero.length ? Math.min(...nonZero) : 1;
  /** @param {(tick: number) => string} format */
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

/**
 * The steps a chart zoomed to x from `range.min` to `range.max` asks the series API for:
 * every whole step it shows (x is the step), none below 0.
 * @param {{min: number, max: number}} range
 * @returns {{min_step: string, max_step: string}}
 */
export function zoomSteps(range) {
  const first = Math.max(0, Math.floor(range.min));
  return { min_step: String(first), max_step: String(Math.max(first, Math.ceil(range.max))) };
}
