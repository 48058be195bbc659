// Colours: the class palette the trainer uses, '#rrggbb' parsing, colours with transparency, and
// the colours of runs compared on one chart.

/** An [r, g, b] triple, 0 to 255 each. @typedef {[number, number, number]} Rgb */

/** The trainer's default palette (trainer/colors.py), for runs without a registered dataset. */
export const FIRST_COLORS = Object.freeze(["#000000", "#e6194b", "#3cb44b", "#0082c8", "#ffe119", "#f58230",
  "#911eb4", "#46f0f0", "#f032e6", "#d2f53c", "#fabed4", "#008080"]);

const HEX = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i;

/**
 * '#rrggbb' (any case) as [r, g, b]; null for anything else.
 * @param {string | null | undefined} color
 * @returns {Rgb | null}
 */
export function parseHex(color) {
  const match = HEX.exec(color || "");
  if (!match) return null;
  return [parseInt(match[1], 16), parseInt(match[2], 16), parseInt(match[3], 16)];
}

/**
 * Whether `color` is a '#rrggbb' colour.
 * @param {unknown} color
 */
export function isHex(color) {
  return typeof color === "string" && HEX.test(color);
}

/**
 * Only '#rrggbb' reaches a style attribute: anything else becomes grey.
 * @param {string | null | undefined} color
 */
export function safeColor(color) {
  return color && isHex(color) ? color : "#808080";
}

/**
 * A colour of h, s, v in 0..1 as '#rrggbb'.
 * @param {number} h
 * @param {number} s
 * @param {number} v
 */
export function hsvToHex(h, s, v) {
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  /** @type {Rgb[]} */
  const sectors = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]];
  return `#${sectors[i % 6].map((c) => Math.round(c * 255).toString(16).padStart(2, "0")).join("")}`;
}

/**
 * `count` distinct colours: the trainer's first ones, then hues a golden angle apart.
 * @param {number} count
 * @returns {string[]}
 */
export function defaultPalette(count) {
  const colors = FIRST_COLORS.slice(0, count);
  let hue = 0;
  while (colors.length < count) {
    hue = (hue + 0.618033988749895) % 1;
    colors.push(hsvToHex(hue, 0.75, 0.95));
  }
  return colors;
}

/**
 * '#rrggbb' as 'rgba(r, g, b, alpha)'; any other colour is returned as it is.
 * @param {string} color
 * @param {number} alpha
 */
export function withAlpha(color, alpha) {
  const rgb = parseHex(color);
  return rgb ? `rgba(${rgb[0]}, ${rgb[1]}, ${rgb[2]}, ${alpha})` : color;
}

/** Colours of compared runs, first the Tableau 10 ones. */
const RUN_COLORS = Object.freeze(["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]);

/**
 * `count` distinct colours for runs on one chart: Tableau 10, then hues a golden angle apart at
 * alternating brightness (50 compared runs stay told apart).
 * @param {number} count
 * @returns {string[]}
 */
export function runColors(count) {
  const colors = RUN_COLORS.slice(0, count);
  let hue = 0.07;
  while (colors.length < count) {
    hue = (hue + 0.618033988749895) % 1;
    colors.push(hsvToHex(hue, 0.8, colors.length % 2 ? 0.62 : 0.88));
  }
  return colors;
}
