// The confusion heatmap's maths: a K x K matrix (rows truth, columns prediction) as counts or
// normalised by true class, each cell's share of the colour scale, the scale's colours (one
// sequential ramp that stays readable from 2 to 30 classes), the text colour on a cell and the
// cell size for K classes in a given width.

/** @typedef {"counts" | "true"} Normalisation */

/**
 * The heatmap's stops, light to dark (a perceptually even blue ramp, as in ColorBrewer's
 * "Blues" with a darker end): pale cells stay distinguishable from empty ones.
 * @type {ReadonlyArray<[number, number, number]>}
 */
export const RAMP = Object.freeze([
  [247, 251, 255], [222, 235, 247], [198, 219, 239], [158, 202, 225], [107, 174, 214],
  [66, 146, 198], [33, 113, 181], [8, 81, 156], [8, 48, 107], [4, 26, 64],
]);

/** Colour of a cell with no pixels at all (not part of the ramp). */
export const EMPTY_COLOR = "#ffffff";

/**
 * The matrix as shown: counts as they are, or each row divided by its sum (the share of that
 * true class's pixels predicted as each class; a class absent from the truth has a row of null).
 * @param {number[][]} matrix
 * @param {Normalisation} mode
 * @returns {(number | null)[][]}
 */
export function normalise(matrix, mode) {
  if (mode === "counts") return matrix.map((row) => row.slice());
  return matrix.map((row) => {
    const total = row.reduce((sum, value) => sum + value, 0);
    return row.map((value) => (total > 0 ? value / total : null));
  });
}

/**
 * Each cell's position on the colour scale, 0 to 1 (null: nothing to show). Counts use a log
 * scale, since background pixels outnumber a small class's by orders of magnitude and a linear
 * scale would leave every off-diagonal cell white; shares of a row are linear.
 * @param {(number | null)[][]} values from `normalise`
 * @param {Normalisation} mode
 * @returns {(number | null)[][]}
 */
export function scalePositions(values, mode) {
  if (mode === "true") return values.map((row) => row.map((value) => (value === null ? null : clamp01(value))));
  let max = 0;
  for (const row of values) for (const value of row) if (value !== null && value > max) max = value;
  const top = Math.log1p(max);
  return values.map((row) => row.map((value) => {
    if (value === null || value <= 0) return value === null ? null : 0;
    return top > 0 ? Math.log1p(value) / top : 0;
  }));
}

/** @param {number} value */
function clamp01(value) {
  return Math.min(1, Math.max(0, value));
}

/**
 * The ramp's colour at `position` (0 to 1), interpolated between stops, as '#rrggbb'.
 * @param {number} position
 */
export function rampColor(position) {
  const t = clamp01(Number.isFinite(position) ? position : 0) * (RAMP.length - 1);
  const low = Math.floor(t);
  const high = Math.min(RAMP.length - 1, low + 1);
  const f = t - low;
  const rgb = RAMP[low].map((c, i) => Math.round(c + (RAMP[high][i] - c) * f));
  return `#${rgb.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * A cell's background: the ramp's colour, white for a cell with nothing to show.
 * @param {number | null} position
 */
export function cellColor(position) {
  return position === null ? EMPTY_COLOR : rampColor(position);
}

/**
 * Black or white, whichever reads better on `hex` (by relative luminance, WCAG's formula).
 * @param {string} hex '#rrggbb'
 */
export function textColor(hex) {
  const channels = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  const luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
  // Contrast with black (L + 0.05) / 0.05 against white 1.05 / (L + 0.05): equal at L ~ 0.179.
  return luminance > 0.179 ? "#000000" : "#ffffff";
}

/**
 * The side of one square cell for `classes` classes in `width` pixels, between 14 and 64, and
 * whether a cell is big enough to print its value (else it only has a tooltip).
 * @param {number} classes
 * @param {number} width
 */
export function cellLayout(classes, width) {
  const side = Math.max(14, Math.min(64, Math.floor(width / Math.max(1, classes))));
  return { side, labelled: side >= 40 };
}

/**
 * A cell's value as printed: a percentage of the true class, or a compact pixel count.
 * @param {number | null} value
 * @param {Normalisation} mode
 */
export function cellText(value, mode) {
  if (value === null) return "–";
  if (mode === "true") {
    const percent = value * 100;
    return percent > 0 && percent < 0.1 ? "<0.1%" : `${percent.toFixed(percent >= 10 || percent === 0 ? 0 : 1)}%`;
  }
  if (value < 1000) return String(value);
  const [divisor, suffix] = value >= 1e9 ? [1e9, "G"] : value >= 1e6 ? [1e6, "M"] : [1e3, "k"];
  const scaled = value / divisor;
  return `${scaled.toFixed(scaled >= 100 ? 0 : 1).replace(/\.0$/, "")}${suffix}`;
}

/**
 * Row and column totals and the overall pixel count.
 * @param {number[][]} matrix
 */
export function totals(matrix) {
  const rows = matrix.map((row) => row.reduce((sum, value) => sum + value, 0));
  const columns = matrix.length ? matrix[0].map((_, j) => matrix.reduce((sum, row) => sum + row[j], 0)) : [];
  return { rows, columns, all: rows.reduce((sum, value) => sum + value, 0) };
}
